package orderingest

import (
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/logging"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// Module is order-ingest: the worker of the queue eats_orders_tracking_orders.
var Module = fx.Module("order-ingest",
	fx.Decorate(func(l *slog.Logger) *slog.Logger { return logging.ForModule(l, "order-ingest") }),
	fx.Provide(fx.Private, parseConfig, newMetrics, newWorker, groupCommit),
	queue.AsWorkers(func(w *worker) queue.Workers {
		return func(ws *river.Workers) error { return river.AddWorkerSafely(ws, w) }
	}),
	queue.AsQueue(func(cfg Config) queue.Queue { return queue.Queue{Name: Kind, MaxWorkers: cfg.Workers} }),
)

// groupCommit commits the module's events; one lane's batch is at most what
// one replica works at once.
var groupCommit = queue.GroupCommitFor(func(cfg Config) queue.GroupCommitOptions {
	return queue.GroupCommitOptions{Name: Kind, Lanes: cfg.CommitLanes, MaxBatch: cfg.Workers, Timeout: 30 * time.Second}
})
