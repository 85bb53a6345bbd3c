// Package queue runs the River client on the service's lib/pq pool
// (riverdatabasesql), so a worker writes its rows and completes its job in
// one transaction, with a pgx connection used only to LISTEN for inserts, so
// a job is picked up within milliseconds rather than at the next poll.
//
// Modules hand their workers, queues and periodic jobs to this package
// through fx value groups (AsWorkers, AsQueue, AsPeriodic); queue knows
// nothing about orders.
package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/migrate"
	"github.com/eats/eats-orders-tracking/platform/shutdown"
	"github.com/eats/eats-orders-tracking/platform/tracing"
)

// Client is the River client type every module uses.
type Client = river.Client[*sql.Tx]

// Driver is the River driver type, for river.JobCompleteTx[*queue.Driver]
// (workers whose volume does not call for a GroupCommit).
type Driver = riverdatabasesql.Driver

// Workers registers a module's workers on River's registry.
type Workers func(*river.Workers) error

// Queue declares a queue and how many of its jobs run at once per replica.
type Queue struct {
	Name       string
	MaxWorkers int
}

// AsWorkers provides a constructor of Workers into the group.
func AsWorkers(f any) fx.Option {
	return fx.Provide(fx.Annotate(f, fx.ResultTags(`group:"river_workers"`)))
}

// AsQueue provides a constructor of Queue into the group.
func AsQueue(f any) fx.Option {
	return fx.Provide(fx.Annotate(f, fx.ResultTags(`group:"river_queues"`)))
}

// AsPeriodic provides a constructor of *river.PeriodicJob into the group.
// River runs periodic jobs on the elected leader only, so with N replicas a
// periodic job still runs once per tick.
func AsPeriodic(f any) fx.Option {
	return fx.Provide(fx.Annotate(f, fx.ResultTags(`group:"river_periodic"`)))
}

// Tuning past River's defaults: a 100 ms fetch cooldown caps a queue near
// 1,000 jobs/s on a busy queue; LISTEN makes the poll interval a fallback.
const (
	fetchCooldown     = 5 * time.Millisecond
	fetchPollInterval = time.Second
	// Our jobs take milliseconds (a refresh at most its upstream deadline).
	jobTimeout = 30 * time.Second
	// A job left "running" by a killed replica is retried after this, not
	// after River's default hour: a crash must not stall an order that long.
	rescueStuckJobsAfter = time.Minute
)

// Params are the client's inputs.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	// Applied orders River's start after the migrations (absent in CLIs
	// that never start the client).
	Applied  migrate.Applied `optional:"true"`
	DB       *sqlx.DB
	Config   config.Platform
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Workers  []Workers                    `group:"river_workers"`
	Queues   []Queue                      `group:"river_queues"`
	Periodic []*river.PeriodicJob         `group:"river_periodic"`
	Extra    []rivertype.WorkerMiddleware `group:"river_worker_middleware"`
	// Budget is the drain deadline shared with the HTTP server.
	Budget *shutdown.Budget
	// TracerProvider, when it records (tracing on), adds River's OpenTelemetry
	// middleware to every insert and every job.
	TracerProvider trace.TracerProvider `optional:"true"`
}

// New builds the River client. Nothing connects until start.
func New(p Params) (*Client, error) {
	workers := river.NewWorkers()
	for _, register := range p.Workers {
		if err := register(workers); err != nil {
			return nil, fmt.Errorf("queue: register workers: %w", err)
		}
	}
	queues := make(map[string]river.QueueConfig, len(p.Queues))
	for _, q := range p.Queues {
		if _, dup := queues[q.Name]; dup {
			return nil, fmt.Errorf("queue: queue %q declared twice", q.Name)
		}
		queues[q.Name] = river.QueueConfig{MaxWorkers: q.MaxWorkers, FetchCooldown: fetchCooldown, FetchPollInterval: fetchPollInterval}
	}
	m, err := newMetrics(p.Registry)
	if err != nil {
		return nil, err
	}
	pgxCfg, err := pgxpool.ParseConfig(p.Config.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("queue: DATABASE_URL for the listener: %w", err)
	}
	// The listener pool only lends River one connection to hijack for LISTEN.
	pgxCfg.MinConns, pgxCfg.MaxConns = 0, 1
	listenPool, err := pgxpool.NewWithConfig(context.Background(), pgxCfg)
	if err != nil {
		return nil, fmt.Errorf("queue: listener pool: %w", err)
	}
	// River's Middleware takes worker middleware too (WorkerMiddleware is deprecated).
	var middleware []rivertype.Middleware
	if !tracing.Off(p.TracerProvider) {
		// Outermost, so the work span covers the other middleware and the
		// job's context carries it into the worker (a group commit's span
		// hangs off it).
		middleware = append(middleware, Tracing(p.TracerProvider))
	}
	middleware = append(middleware, m)
	for _, e := range p.Extra {
		middleware = append(middleware, e)
	}
	cfg := &river.Config{
		Logger:                      p.Logger.With("component", "river"),
		FetchCooldown:               fetchCooldown,
		FetchPollInterval:           fetchPollInterval,
		JobTimeout:                  jobTimeout,
		RescueStuckJobsAfter:        rescueStuckJobsAfter,
		CancelledJobRetentionPeriod: p.Config.JobRetention,
		DiscardedJobRetentionPeriod: p.Config.JobRetention,
		PeriodicJobs:                p.Periodic,
		Middleware:                  middleware,
	}
	if len(queues) > 0 {
		cfg.Queues = queues
		cfg.Workers = workers
	}
	client, err := river.NewClient(riverdatabasesql.NewWithPgxListener(p.DB.DB, listenPool), cfg)
	if err != nil {
		listenPool.Close()
		return nil, fmt.Errorf("queue: river client: %w", err)
	}
	if err := p.Registry.Register(newStateCollector(p.DB, slices.Sorted(maps.Keys(queues))...)); err != nil {
		return nil, fmt.Errorf("queue: metrics: %w", err)
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if len(queues) == 0 {
				return nil // insert-only client (e.g. a CLI); nothing to run
			}
			// River treats cancellation of the start context as a hard stop,
			// and fx cancels it once start-up is over.
			if err := client.Start(context.WithoutCancel(ctx)); err != nil {
				return fmt.Errorf("queue: start river: %w", err)
			}
			return nil
		},
		OnStop: func(ctx context.Context) error {
			defer listenPool.Close()
			if len(queues) == 0 {
				return nil
			}
			return stop(ctx, client, p.Budget, p.Logger)
		},
	})
	return client, nil
}

// Tracing is River's own OpenTelemetry middleware as this service uses it:
// an insert_many span on every insert, whose W3C trace context goes into the
// job's metadata, and a river.work/<kind> span on every job, which starts a
// new trace linked to the insert's span (a job may run long after its
// insert, so it is not a child). A producer inserting with River and this
// middleware (docs/producers.md) gets the same link. Its metrics are off:
// Prometheus has ours.
//
// The sampler decides before otelriver's Work runs, and an unsampled job
// skips it (platform/tracing/adopt.go): otelriver parses every job's
// metadata for the link and builds its attributes and metric attribute
// set whether the span records or not, a cost each of the 90% unsampled
// jobs would pay at 10% sampling (BenchmarkTracingWork).
func Tracing(tp trace.TracerProvider) *SampledFirst {
	return &SampledFirst{
		Middleware: otelriver.NewMiddleware(&otelriver.MiddlewareConfig{
			EnableTracePropagation:      true,
			EnableWorkSpanJobKindSuffix: true,
			TracerProvider:              tracing.Adopting(tp),
			MeterProvider:               metricnoop.NewMeterProvider(),
		}),
		// otelriver's own scope, so the spans look as if it had started them.
		tracer: tp.Tracer(otelriverScope),
	}
}

// otelriverScope is otelriver's instrumentation scope name (its
// unexported `name`).
const otelriverScope = "github.com/riverqueue/rivercontrib/otelriver"

// consumer is the work span's kind, as otelriver starts it.
var consumer = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}

// SampledFirst is otelriver's middleware whose Work starts the work span
// first and runs otelriver only when the span records; inserts go to
// otelriver as they are.
type SampledFirst struct {
	*otelriver.Middleware
	tracer trace.Tracer
}

// Work is otelriver's Work for a sampled job; an unsampled one runs with
// its non-recording span in the context, so what it inserts or calls
// carries the decision.
func (m *SampledFirst) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	ctx, span := m.tracer.Start(ctx, "river.work/"+job.Kind, consumer...)
	if !span.IsRecording() {
		return doInner(ctx)
	}
	return m.Middleware.Work(tracing.WithPreStarted(ctx, span), job, doInner)
}

// stop lets running jobs finish within what is left of the drain budget,
// then cancels the rest; River retries a cancelled job later, so nothing is
// lost.
func stop(ctx context.Context, client *Client, budget *shutdown.Budget, logger *slog.Logger) error {
	soft, cancel := budget.Context(ctx)
	defer cancel()
	err := client.Stop(soft)
	if err == nil {
		return nil
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("queue: stop river: %w", err)
	}
	logger.Warn("jobs still running at shutdown timeout; cancelling them", "timeout", budget.Timeout())
	hard, cancelHard := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelHard()
	if err := client.StopAndCancel(hard); err != nil {
		return fmt.Errorf("queue: cancel river jobs: %w", err)
	}
	return nil
}

// Module provides the River client and makes sure it starts: fx builds only
// what something asks for, and nothing else might ask for the client.
var Module = fx.Module("queue",
	fx.Provide(New),
	fx.Invoke(func(*Client) {}),
)
