package pickerupdater

import (
	"context"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/logging"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// name is the module's fx name, as logs and metrics show it.
const name = "picker-updater"

// Module is the picker updater: its config and experiment, the upstream
// client, the periodic picker_orders_updater (leader only) and the
// picker_order_refresh worker on a queue of PICKER_REFRESH_CONCURRENCY.
var Module = fx.Module(name,
	fx.Decorate(func(l *slog.Logger) *slog.Logger { return logging.ForModule(l, name) }),
	experiments.AsDefinition(StatusesTimeout.Definition()),
	fx.Provide(
		fx.Private,
		parseConfig,
		newMetrics,
		newUpstreamFromConfig,
		newRefresher,
	),
	// Not private, so this package's tests can drive ticks; the type is
	// unexported, so no other package can ask for it.
	fx.Provide(newUpdater),
	queue.AsWorkers(func(u *updater, r *refresher) queue.Workers {
		return func(ws *river.Workers) error {
			if err := river.AddWorkerSafely(ws, u); err != nil {
				return err
			}
			return river.AddWorkerSafely(ws, r)
		}
	}),
	queue.AsQueue(func() queue.Queue { return queue.Queue{Name: Kind, MaxWorkers: 1} }),
	queue.AsQueue(func(cfg Config) queue.Queue {
		return queue.Queue{Name: RefreshKind, MaxWorkers: cfg.RefreshWorkers}
	}),
	queue.AsPeriodic(newPeriodic),
	fx.Invoke(announce),
)

type upstreamParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    Config
	Tuning    *tuning `optional:"true"`
	Registry  prometheus.Registerer
	Logger    *slog.Logger
	// TracerProvider spans each call to eats-picker-orders.
	TracerProvider trace.TracerProvider `optional:"true"`
}

// newUpstreamFromConfig builds the eats-picker-orders client, or nil when
// PICKER_ORDERS_URL is empty.
func newUpstreamFromConfig(p upstreamParams) (*upstream, error) {
	if !p.Config.Enabled() {
		return nil, nil
	}
	var cfg upstreamConfig
	if p.Tuning != nil {
		cfg = p.Tuning.Upstream
	}
	cfg.BaseURL = p.Config.PickerOrdersURL
	u, err := newUpstream(cfg, p.Registry, p.Logger)
	if err != nil {
		return nil, err
	}
	u.setTracing(p.TracerProvider)
	p.Lifecycle.Append(fx.StopHook(u.close))
	return u, nil
}

type updaterParams struct {
	fx.In

	DB      *sqlx.DB
	Store   *experiments.Store
	Config  Config
	Metrics *metrics
	Logger  *slog.Logger
}

func newUpdater(p updaterParams) *updater {
	return &updater{
		db:         p.DB,
		store:      p.Store,
		enabled:    p.Config.Enabled(),
		interval:   p.Config.Interval,
		batch:      selectBatch,
		maxEnqueue: p.Config.MaxEnqueue,
		metrics:    p.Metrics,
		logger:     p.Logger,
	}
}

type refresherParams struct {
	fx.In

	DB       *sqlx.DB
	Upstream *upstream `optional:"true"`
	Applier  Applier
	Metrics  *metrics
	Logger   *slog.Logger
}

func newRefresher(p refresherParams) *refresher {
	r := &refresher{
		db:      p.DB,
		applier: p.Applier,
		metrics: p.Metrics,
		logger:  p.Logger,
	}
	if p.Upstream != nil { // a nil *upstream must not become a non-nil interface
		r.up = p.Upstream
		r.snooze = breakerSnooze(p.Upstream)
	}
	return r
}

// newPeriodic schedules the updater every PICKER_UPDATER_INTERVAL on the
// leader; with PICKER_ORDERS_URL empty it never fires.
func newPeriodic(cfg Config) *river.PeriodicJob {
	schedule := river.PeriodicInterval(cfg.Interval)
	if !cfg.Enabled() {
		schedule = river.NeverSchedule()
	}
	return river.NewPeriodicJob(
		schedule,
		func() (river.JobArgs, *river.InsertOpts) { return UpdaterArgs{}, nil },
		&river.PeriodicJobOpts{ID: Kind},
	)
}

// announce logs the updater's state once, at start.
func announce(lc fx.Lifecycle, cfg Config, logger *slog.Logger) {
	lc.Append(fx.StartHook(func(context.Context) {
		if !cfg.Enabled() {
			logger.Warn("picker updater off: PICKER_ORDERS_URL is empty; stale picker orders are not refreshed")
			return
		}
		logger.Info("picker updater on", "config", cfg, "first_tick_in", cfg.Interval.Round(time.Millisecond))
	}))
}
