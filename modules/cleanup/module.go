package cleanup

import (
	"log/slog"

	"github.com/riverqueue/river"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/logging"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// Module is the cleanup: its config, the periodic job (leader only), its
// queue and worker.
var Module = fx.Module("cleanup",
	fx.Decorate(func(l *slog.Logger) *slog.Logger { return logging.ForModule(l, "cleanup") }),
	fx.Provide(
		fx.Private,
		parseConfig,
		newMetrics,
		newWorker,
	),
	queue.AsWorkers(func(w *worker) queue.Workers {
		return func(ws *river.Workers) error { return river.AddWorkerSafely(ws, w) }
	}),
	// One run at a time per replica; Args' unique states keep it to one
	// across replicas.
	queue.AsQueue(func() queue.Queue { return queue.Queue{Name: Kind, MaxWorkers: 1} }),
	queue.AsPeriodic(newPeriodic),
)

// newPeriodic schedules the cleanup every CLEANUP_INTERVAL on the leader.
func newPeriodic(cfg Config) *river.PeriodicJob {
	return river.NewPeriodicJob(
		river.PeriodicInterval(cfg.Interval),
		func() (river.JobArgs, *river.InsertOpts) { return Args{}, nil },
		&river.PeriodicJobOpts{ID: Kind},
	)
}
