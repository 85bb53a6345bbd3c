package pickeringest

import (
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/logging"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// Module is picker-ingest: the worker of queue
// eats_orders_tracking_picker_orders, the internal endpoint that enqueues
// events, and the Applier and PhoneLookup other modules reuse (through
// their own interfaces, bound in modules/modules.go).
var Module = fx.Module("picker-ingest",
	fx.Decorate(func(l *slog.Logger) *slog.Logger { return logging.ForModule(l, "picker-ingest") }),
	fx.Provide(newPhoneLookup, newApplier),
	fx.Provide(fx.Private, parseConfig, newMetrics, newWorker, groupCommit),
	queue.AsWorkers(func(w *worker) queue.Workers {
		return func(ws *river.Workers) error { return river.AddWorkerSafely(ws, w) }
	}),
	queue.AsQueue(func(cfg Config) queue.Queue {
		return queue.Queue{Name: Kind, MaxWorkers: cfg.Workers}
	}),
	httpapi.AsOperations(newOperations),
)

type workerParams struct {
	fx.In

	Commits *queue.GroupCommit
	Applier *Applier
	Metrics *metrics
	Logger  *slog.Logger
	Hooks   *hooks `optional:"true"`
}

func newWorker(p workerParams) *worker {
	return &worker{commits: p.Commits, applier: p.Applier, metrics: p.Metrics, logger: p.Logger, hooks: p.Hooks}
}

// groupCommit commits the module's events; one lane's batch is at most what
// one replica works at once.
var groupCommit = queue.GroupCommitFor(func(cfg Config) queue.GroupCommitOptions {
	return queue.GroupCommitOptions{Name: Kind, Lanes: cfg.CommitLanes, MaxBatch: cfg.Workers, Timeout: 30 * time.Second}
})
