package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/metrics"
	"github.com/eats/eats-orders-tracking/platform/tracing"
)

// GroupCommit applies the work of many jobs in shared transactions, each
// committing the jobs' rows together with their completion: a crash leaves
// all of a transaction's jobs running (River rescues and retries them) and
// none of its rows.
//
// Why not river.JobCompleteTx in a transaction per job: bench:ingest
// measured half of the worker's time in it (River's completion query is a
// large CTE sent unprepared: two round trips and a fresh plan per job), and
// a commit per job pays a WAL flush and, with the change-feed triggers, the
// database-wide NOTIFY lock each time. Here a batch costs BEGIN, its units'
// statements, one prepared completion of all its jobs and one COMMIT.
//
// Units go to lanes by key, so two events of one order never sit in
// concurrent transactions (no lock waits or deadlocks between lanes); a
// lane takes whatever is waiting, up to maxBatch, while its previous
// transaction runs, so batches grow only when work queues up and a lone
// event is committed at once.
type GroupCommit struct {
	name     string
	db       *sqlx.DB
	logger   *slog.Logger
	lanes    []chan *unit
	maxBatch int
	seed     maphash.Seed

	complete *sqlx.Stmt
	tracer   trace.Tracer // nil when tracing is off
	stop     chan struct{}
	done     sync.WaitGroup

	batchSize prometheus.Observer
	fallbacks prometheus.Counter
}

// Unit is one job's share of a group commit.
type Unit struct {
	// JobID is the job completed with the unit's rows.
	JobID int64
	// Key routes the unit to a lane: units with the same key are never in
	// concurrent transactions. A batch applies its units in ascending
	// (Key, Rank, Row), so two replicas' batches lock rows in one order and never
	// deadlock each other (DESIGN §3.1's lock order: ascending order_nr).
	Key string
	// Rank orders the units of one Key within a batch: the table a unit
	// writes, in the order every writer locks them (picker_orders before
	// picker_phones).
	Rank int
	// Row orders the units of one Key and Rank: the row's key within the
	// table (a picker_id among an order's phones), so two batches writing
	// several rows of one table for one order lock them in one order too.
	Row string
	// Apply writes the job's rows inside tx. It may run more than once (a
	// batch that fails is retried unit by unit) and must be idempotent.
	Apply func(ctx context.Context, tx *sqlx.Tx) error
	// BeforeCommit, if set, runs after every unit's Apply and the jobs'
	// completion, before the commit (tests simulate crashes there).
	BeforeCommit func(ctx context.Context, tx *sqlx.Tx) error
}

// GroupCommitOptions tunes a GroupCommit.
type GroupCommitOptions struct {
	// Name labels the metrics (the queue's name).
	Name string
	// Lanes is how many transactions run at once; each holds a connection.
	Lanes int
	// MaxBatch caps the jobs in one transaction.
	MaxBatch int
	// Timeout bounds one transaction, whatever the jobs' contexts.
	Timeout time.Duration
	// TracerProvider traces each transaction (a span named
	// "queue.group_commit"); nil or a no-op provider traces nothing.
	TracerProvider trace.TracerProvider
}

type unit struct {
	Unit
	// span is the caller's span (the job's river.work span when tracing is
	// on), which the transaction's span hangs off or links to.
	span   trace.SpanContext
	result chan error
}

// unitError is a failure one unit caused (its Apply or BeforeCommit), as
// opposed to one of the transaction (BEGIN, completion, COMMIT).
type unitError struct{ err error }

func (e *unitError) Error() string { return e.err.Error() }
func (e *unitError) Unwrap() error { return e.err }

// qCompleteJobs marks the batch's running jobs completed exactly as
// river.JobCompleteTx does for the completed state (River v0.51
// JobSetStateIfRunningMany: state and finalized_at, only while running; a
// job no longer running is left as it is). TestGroupCommitCompletesLikeRiver
// compares the rows the two leave, so an upgrade that changes River's
// completion fails the tests.
const qCompleteJobs = `UPDATE river_job SET state = 'completed', finalized_at = now()
	WHERE id = ANY($1::bigint[]) AND state = 'running'`

func newGroupCommitMetrics(reg prometheus.Registerer) (*prometheus.HistogramVec, *prometheus.CounterVec, error) {
	size, err := registerShared(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metrics.Namespace, Subsystem: "queue", Name: "group_commit_jobs",
		Help:    "Jobs committed per group-commit transaction.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	}, []string{"queue"}))
	if err != nil {
		return nil, nil, err
	}
	split, err := registerShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "queue", Name: "group_commit_split_total",
		Help: "Group-commit transactions retried job by job because one job's work failed.",
	}, []string{"queue"}))
	return size, split, err
}

// registerShared registers c, or returns the collector already registered
// under its name: every module's GroupCommit shares one vector per metric.
func registerShared[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("queue: group commit metrics: %w", err)
	}
	return c, nil
}

// NewGroupCommit builds a GroupCommit whose lanes run between the app's
// start and stop. Build it before the River client (a worker's dependency
// is), so it starts before jobs arrive and stops after the last one ends.
func NewGroupCommit(lc fx.Lifecycle, db *sqlx.DB, reg prometheus.Registerer, logger *slog.Logger, opts GroupCommitOptions) (*GroupCommit, error) {
	if opts.Lanes < 1 || opts.MaxBatch < 1 || opts.Timeout <= 0 {
		return nil, fmt.Errorf("queue: group commit %s: lanes, batch and timeout must be positive (got %d, %d, %s)", opts.Name, opts.Lanes, opts.MaxBatch, opts.Timeout)
	}
	size, split, err := newGroupCommitMetrics(reg)
	if err != nil {
		return nil, err
	}
	g := &GroupCommit{
		name: opts.Name, db: db, logger: logger, maxBatch: opts.MaxBatch, seed: maphash.MakeSeed(),
		stop:      make(chan struct{}),
		batchSize: size.WithLabelValues(opts.Name),
		fallbacks: split.WithLabelValues(opts.Name),
	}
	if !tracing.Off(opts.TracerProvider) {
		g.tracer = opts.TracerProvider.Tracer("github.com/eats/eats-orders-tracking/platform/queue")
	}
	for range opts.Lanes {
		g.lanes = append(g.lanes, make(chan *unit))
	}
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			stmt, err := db.PreparexContext(ctx, qCompleteJobs)
			if err != nil {
				return fmt.Errorf("queue: group commit %s: prepare: %w", opts.Name, err)
			}
			g.complete = stmt
			for _, lane := range g.lanes {
				g.done.Add(1)
				go g.run(lane, opts.Timeout)
			}
			return nil
		},
		OnStop: func(context.Context) error {
			close(g.stop)
			g.done.Wait()
			return g.complete.Close()
		},
	})
	return g, nil
}

// GroupCommitParams are the inputs of a GroupCommit built by GroupCommitFor.
type GroupCommitParams[C any] struct {
	fx.In

	Lifecycle      fx.Lifecycle
	DB             *sqlx.DB
	Registry       prometheus.Registerer
	Logger         *slog.Logger
	Config         C
	TracerProvider trace.TracerProvider `optional:"true"`
}

// GroupCommitFor is a constructor, for fx.Provide, of a module's
// GroupCommit with options taken from the module's config C and the
// graph's tracer provider.
func GroupCommitFor[C any](opts func(C) GroupCommitOptions) func(GroupCommitParams[C]) (*GroupCommit, error) {
	return func(p GroupCommitParams[C]) (*GroupCommit, error) {
		o := opts(p.Config)
		o.TracerProvider = cmp.Or(o.TracerProvider, p.TracerProvider)
		return NewGroupCommit(p.Lifecycle, p.DB, p.Registry, p.Logger, o)
	}
}

// ErrStopped is returned for work handed in after the app began to stop;
// River retries the job.
var ErrStopped = errors.New("queue: group commit stopped")

// Do applies u and completes its job in a shared transaction, and returns
// once that transaction ended. An error means the job's rows and
// completion were rolled back; errors from u's Apply or BeforeCommit come
// back as they were returned.
func (g *GroupCommit) Do(ctx context.Context, u Unit) error {
	p := &unit{Unit: u, span: trace.SpanContextFromContext(ctx), result: make(chan error, 1)}
	lane := g.lanes[maphash.String(g.seed, u.Key)%uint64(len(g.lanes))]
	select {
	case lane <- p:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stop:
		return ErrStopped
	}
	// Wait for the transaction even if ctx ends: it is bounded by the lane's
	// timeout, and the caller must not report a job whose rows committed as
	// failed.
	return <-p.result
}

// run is one lane: it takes the first waiting unit and whatever else is
// queued behind it, and commits them together.
func (g *GroupCommit) run(lane chan *unit, timeout time.Duration) {
	defer g.done.Done()
	batch := make([]*unit, 0, g.maxBatch)
	for {
		batch = batch[:0]
		select {
		case u := <-lane:
			batch = append(batch, u)
		case <-g.stop:
			return
		}
	more:
		for len(batch) < g.maxBatch {
			select {
			case u := <-lane:
				batch = append(batch, u)
			default:
				break more
			}
		}
		g.commitBatch(batch, timeout)
	}
}

// commitBatch commits batch; if one unit's work fails, the others must not
// pay for it, so each is then committed alone and gets its own result.
func (g *GroupCommit) commitBatch(batch []*unit, timeout time.Duration) {
	err := g.commit(batch, timeout)
	var ue *unitError
	if err != nil && errors.As(err, &ue) && len(batch) > 1 {
		g.fallbacks.Inc()
		for _, u := range batch {
			g.deliver(u, g.commit([]*unit{u}, timeout))
		}
		return
	}
	for _, u := range batch {
		g.deliver(u, err)
	}
}

func (g *GroupCommit) deliver(u *unit, err error) {
	var ue *unitError
	if errors.As(err, &ue) {
		err = ue.err
	}
	u.result <- err
}

// commit runs one transaction: every unit's Apply, the completion of their
// jobs, the hooks, COMMIT.
func (g *GroupCommit) commit(batch []*unit, timeout time.Duration) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, span := g.startSpan(ctx, batch)
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "group commit failed")
		}
		span.End()
	}()
	tx, err := g.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %d jobs: begin: %w", g.name, len(batch), err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after commit
	// Arrival order is whatever the workers' timing was; the lock order
	// must not be.
	slices.SortStableFunc(batch, func(a, b *unit) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), cmp.Compare(a.Rank, b.Rank), strings.Compare(a.Row, b.Row))
	})
	ids := make(pq.Int64Array, len(batch))
	for i, u := range batch {
		if err := u.Apply(ctx, tx); err != nil {
			return &unitError{err: err}
		}
		ids[i] = u.JobID
	}
	if _, err := tx.StmtxContext(ctx, g.complete).ExecContext(ctx, ids); err != nil {
		return fmt.Errorf("%s: %d jobs: complete: %w", g.name, len(batch), err)
	}
	for _, u := range batch {
		if u.BeforeCommit != nil {
			if err := u.BeforeCommit(ctx, tx); err != nil {
				return &unitError{err: err}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %d jobs: commit: %w", g.name, len(batch), err)
	}
	g.batchSize.Observe(float64(len(batch)))
	return nil
}

// startSpan starts the transaction's span as a child of the first unit's
// span (the job that opened the batch, so a lone job's trace shows its
// commit), linked to every other unit's span: one transaction serves jobs
// from many traces. Without a traced first unit it is a root span, linked
// to whichever units are traced.
func (g *GroupCommit) startSpan(ctx context.Context, batch []*unit) (context.Context, trace.Span) {
	if g.tracer == nil {
		// Off: not even the options' allocations on the hot path.
		return ctx, trace.SpanFromContext(ctx)
	}
	var links []trace.Link
	parent := batch[0].span
	for _, u := range batch[1:] {
		if u.span.IsValid() {
			links = append(links, trace.Link{SpanContext: u.span})
		}
	}
	if parent.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, parent)
	}
	return g.tracer.Start(ctx, "queue.group_commit",
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.String("queue", g.name),
			attribute.Int("queue.group_commit.jobs", len(batch)),
		))
}
