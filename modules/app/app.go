// Package app assembles the service: every platform component and every
// module, wired by fx. main.go runs it; end-to-end tests start it on port 0
// through apptest.
package app

import (
	"log/slog"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/migrations"
	"github.com/eats/eats-orders-tracking/modules/cleanup"
	"github.com/eats/eats-orders-tracking/modules/orderingest"
	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/pickerupdater"
	"github.com/eats/eats-orders-tracking/modules/trackingpresenter"
	"github.com/eats/eats-orders-tracking/modules/webapp"
	"github.com/eats/eats-orders-tracking/platform/cache"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/health"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/logging"
	"github.com/eats/eats-orders-tracking/platform/metrics"
	"github.com/eats/eats-orders-tracking/platform/migrate"
	"github.com/eats/eats-orders-tracking/platform/postgres"
	"github.com/eats/eats-orders-tracking/platform/queue"
	"github.com/eats/eats-orders-tracking/platform/shutdown"
)

// MigrationSource is the schema embedded in the binary.
func MigrationSource() migrate.Source {
	return migrate.Source{FS: migrations.FS(), Go: migrations.Go()}
}

// Platform is everything that knows nothing about orders.
func Platform() fx.Option {
	return fx.Options(
		config.Module,
		logging.Module,
		metrics.Module,
		postgres.Module,
		migrate.Module,
		cache.Module,
		shutdown.Module,
		queue.Module,
		queue.UIModule,
		httpapi.Module,
		health.Module,
		experiments.Module,
		fx.Provide(func(cfg config.Platform) experiments.Path { return experiments.Path(cfg.ExperimentsFile) }),
	)
}

// Modules are the order-tracking capabilities.
func Modules() fx.Option {
	return fx.Options(
		pickeringest.Module,
		orderingest.Module,
		trackingpresenter.Module,
		webapp.Module,
		pickerupdater.Module,
		cleanup.Module,
	)
}

// Options is the whole graph for environ. It builds nothing until started.
func Options(environ config.Environment) fx.Option {
	return fx.Options(
		fx.Supply(environ, MigrationSource()),
		Platform(),
		Modules(),
	)
}

// Serve is Options plus what `serve` does on start: migrate, then run River
// and the HTTP server, in that order, so stop runs in reverse: the server
// stops taking requests before River drains its jobs.
func Serve(environ config.Environment) fx.Option {
	return fx.Options(
		Options(environ),
		migrate.AutoMigrate,
		fx.Invoke(func(cfg config.Platform, logger *slog.Logger) {
			logger.Info("starting", "config", cfg)
		}),
		fx.Invoke(func(migrate.Applied, *queue.Client, *httpapi.Server) {}),
		fx.StartTimeout(time.Minute),
		// The HTTP server and River share SHUTDOWN_TIMEOUT (shutdown.Budget);
		// fx must not cut them short. A bad config fails in the graph with
		// its message.
		fx.StopTimeout(shutdownTimeout(environ)+shutdown.Grace),
	)
}

func shutdownTimeout(environ config.Environment) time.Duration {
	cfg, err := config.ParsePlatform(environ)
	if err != nil {
		return 30 * time.Second
	}
	return cfg.ShutdownTimeout
}

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

// OpenAPI builds the graph only to read the API document; nothing starts.
func OpenAPI(environ config.Environment) ([]byte, error) {
	var api huma.API
	a := fx.New(Options(environ), fx.NopLogger, fx.Populate(&api))
	if err := a.Err(); err != nil {
		return nil, err
	}
	return api.OpenAPI().YAML()
}
