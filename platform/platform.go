// Package platform assembles everything that knows nothing about orders
// (config, logging, metrics, tracing, PostgreSQL, migrations, Redis, River,
// the HTTP server and API, health, experiments) into one fx option. main.go composes
// it with modules.Module; tests get the same graph from pgtest.Platform.
package platform

import (
	"log/slog"
	"time"

	"go.uber.org/fx"

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
	"github.com/eats/eats-orders-tracking/platform/tracing"
)

// Module is the platform. It needs a config.Environment and a migrate.Source
// in the graph; it builds nothing until something asks for it.
var Module = fx.Options(
	config.Module,
	logging.Module,
	metrics.Module,
	postgres.Module,
	migrate.Module,
	cache.Module,
	shutdown.Module,
	tracing.Module,
	queue.Module,
	queue.UIModule,
	httpapi.Module,
	health.Module,
	experiments.Module,
	fx.Provide(func(cfg config.Platform) experiments.Path { return experiments.Path(cfg.ExperimentsFile) }),
)

// Serve is what `serve` adds to the graph: migrate on start, then run River
// and the HTTP server, in that order, so stop runs in reverse: the server
// stops taking requests before River drains its jobs.
func Serve(environ config.Environment) fx.Option {
	return fx.Options(
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
