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
	"github.com/eats/eats-orders-tracking/modules/widget"
	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// Module is every module of the service.
var Module = fx.Options(
	pickeringest.Module,
	orderingest.Module,
	trackingpresenter.Module,
	widget.Module,
	pickerupdater.Module,
	cleanup.Module,
	// Where modules meet: each consumer's interface bound to the type that
	// implements it. tracking-presenter looks picker phones up through
	// picker-ingest's cache; picker-updater applies eats-picker-orders'
	// answers through picker-ingest's apply function (the one edge between
	// modules in code).
	bind[*pickeringest.PhoneLookup, trackingpresenter.Phones](),
	bind[*pickeringest.Applier, pickerupdater.Applier](),
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

// bind provides I, a consumer's interface, as the graph's T (fx.As checks
// at start that T implements I).
func bind[T, I any]() fx.Option {
	return fx.Provide(fx.Annotate(func(t T) T { return t }, fx.As(new(I))))
}
