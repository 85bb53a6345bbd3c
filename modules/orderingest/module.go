package orderingest

import (
	"log/slog"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/logging"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// Module is order-ingest: the worker of the queue eats_orders_tracking_orders.
var Module = fx.Module("order-ingest",
	fx.Provide(fx.Private, parseConfig, newMetrics),
	queue.AsWorkers(func(db *sqlx.DB, logger *slog.Logger, m *ingestMetrics) queue.Workers {
		w := &worker{db: db, log: logging.ForModule(logger, "order-ingest"), metrics: m}
		return func(ws *river.Workers) error { return river.AddWorkerSafely(ws, w) }
	}),
	queue.AsQueue(func(cfg Config) queue.Queue { return queue.Queue{Name: Kind, MaxWorkers: cfg.Workers} }),
)
