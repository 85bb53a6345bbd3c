// Package modules lists the order-tracking capabilities, one fx module each,
// and binds the few consumer interfaces through which they meet. Modules
// import only the vocabulary (modules/tracking) and platform/; main.go
// composes this list with platform.Module.
package modules

import (
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/cleanup"
	"github.com/eats/eats-orders-tracking/modules/orderingest"
	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/pickerupdater"
	"github.com/eats/eats-orders-tracking/modules/trackingpresenter"
	"github.com/eats/eats-orders-tracking/modules/webapp"
	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// Module is every module of the service.
var Module = fx.Options(
	pickeringest.Module,
	orderingest.Module,
	trackingpresenter.Module,
	webapp.Module,
	pickerupdater.Module,
	cleanup.Module,
	// picker-updater applies eats-picker-orders' answers through
	// picker-ingest's apply function, the one module-to-module edge.
	fx.Provide(fx.Annotate(func(a *pickeringest.Applier) *pickeringest.Applier { return a }, fx.As(new(pickerupdater.Applier)))),
)

// ExperimentDefinitions are the experiments the modules register with the
// Store (experiments.AsDefinition in their Module). They are listed here as
// plain values, not collected by building the graph, so `experiments
// validate` reads no environment: a config error unrelated to experiments
// (SHUTDOWN_TIMEOUT=banana) must not fail the config repository's CI. A
// test checks the list against what the graph collects.
func ExperimentDefinitions() []experiments.Definition {
	return []experiments.Definition{
		pickerupdater.StatusesTimeout.Definition(),
		trackingpresenter.CallPicker.Definition(),
		trackingpresenter.ContactUs.Definition(),
	}
}
