package queue_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/queue"
	"github.com/eats/eats-orders-tracking/platform/shutdown"
)

type tracedArgs struct {
	Cancel bool `json:"cancel"`
}

func (tracedArgs) Kind() string { return "traced" }

func spansNamed(exp *tracetest.InMemoryExporter, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// startTraced starts a queue client, traced through tp, whose worker runs
// work for every tracedArgs job.
func startTraced(t *testing.T, lc *fxtest.Lifecycle, db *sqlx.DB, dsn string, reg *prometheus.Registry, tp trace.TracerProvider,
	work func(context.Context, *river.Job[tracedArgs]) error,
) *queue.Client {
	t.Helper()
	client, err := queue.New(queue.Params{
		Lifecycle: lc, DB: db, Registry: reg, Logger: slog.New(slog.DiscardHandler),
		Config: config.Platform{DatabaseURL: dsn, JobRetention: time.Hour, ShutdownTimeout: 5 * time.Second},
		Workers: []queue.Workers{func(ws *river.Workers) error {
			return river.AddWorkerSafely(ws, river.WorkFunc(work))
		}},
		Queues:         []queue.Queue{{Name: river.QueueDefault, MaxWorkers: 2}},
		Budget:         shutdown.NewBudget(5 * time.Second),
		TracerProvider: tp,
	})
	require.NoError(t, err)
	lc.RequireStart()
	t.Cleanup(lc.RequireStop)
	return client
}

// TestTracingLinksWorkToInsertAndCommitToWork: with a recording provider,
// an insert through the client gets River's insert span, its job a work
// span in a new trace linked to it, and the job's group commit a span under
// the work span; a cancelled job still gets its work span, marked.
func TestTracingLinksWorkToInsertAndCommitToWork(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	db, dsn := pgtest.Open(t)
	_, err := db.Exec(`CREATE TABLE gc_rows (k TEXT PRIMARY KEY, v INT NOT NULL)`)
	require.NoError(t, err)
	lc := fxtest.NewLifecycle(t)
	reg := prometheus.NewRegistry()
	gc, err := queue.GroupCommitFor(func(struct{}) queue.GroupCommitOptions {
		return queue.GroupCommitOptions{Name: "traced", Lanes: 1, MaxBatch: 8, Timeout: 10 * time.Second}
	})(queue.GroupCommitParams[struct{}]{Lifecycle: lc, DB: db, Registry: reg, Logger: slog.New(slog.DiscardHandler), TracerProvider: tp})
	require.NoError(t, err)
	client := startTraced(t, lc, db, dsn, reg, tp, func(ctx context.Context, job *river.Job[tracedArgs]) error {
		if job.Args.Cancel {
			return river.JobCancel(errors.New("bad input"))
		}
		return gc.Do(ctx, queue.Unit{JobID: job.ID, Key: "k", Apply: func(ctx context.Context, tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO gc_rows VALUES ('k', 1) ON CONFLICT (k) DO NOTHING`)
			return err
		}})
	})

	_, err = client.Insert(context.Background(), tracedArgs{}, nil)
	require.NoError(t, err)
	pgtest.Eventually(t, 20*time.Second, func() bool { return len(spansNamed(exp, "queue.group_commit")) == 1 }, "a commit span")
	pgtest.Eventually(t, 5*time.Second, func() bool { return len(spansNamed(exp, "river.work/traced")) == 1 }, "a work span")

	insert := spansNamed(exp, "river.insert_many")[0]
	work := spansNamed(exp, "river.work/traced")[0]
	commit := spansNamed(exp, "queue.group_commit")[0]
	require.Len(t, work.Links, 1)
	require.Equal(t, insert.SpanContext.SpanID(), work.Links[0].SpanContext.SpanID())
	require.NotEqual(t, insert.SpanContext.TraceID(), work.SpanContext.TraceID())
	require.Equal(t, work.SpanContext.SpanID(), commit.Parent.SpanID())
	require.Equal(t, trace.SpanKindInternal, commit.SpanKind)
	require.Equal(t, trace.SpanKindConsumer, work.SpanKind)
	require.Equal(t, insert.InstrumentationScope.Name, work.InstrumentationScope.Name, "the work span is otelriver's, in its scope")
	require.Contains(t, work.Attributes, attribute.String("kind", "traced"), "otelriver gave the span it adopted its attributes")

	_, err = client.Insert(context.Background(), tracedArgs{Cancel: true}, nil)
	require.NoError(t, err)
	pgtest.Eventually(t, 20*time.Second, func() bool { return len(spansNamed(exp, "river.work/traced")) == 2 }, "the cancelled job's work span")
}

// TestGroupCommitSpanLinksTheUnitsItDoesNotHangOff: units queued behind a
// running transaction share the next one; its span is a child of the
// first unit's span and links the others.
func TestGroupCommitSpanLinksTheUnitsItDoesNotHangOff(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	b := newGroupCommitTraced(t, tp)
	ids := b.runningJobs(t, 4)

	entered, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- b.gc.Do(context.Background(), queue.Unit{JobID: ids[0], Key: "x", Apply: func(context.Context, *sqlx.Tx) error {
			close(entered)
			<-release
			return nil
		}})
	}()
	<-entered // the lane is busy: the next three queue up
	var parents []trace.SpanContext
	done := make(chan error, 3)
	for i, id := range ids[1:] {
		ctx, span := tp.Tracer("test").Start(context.Background(), "work")
		parents = append(parents, span.SpanContext())
		go func() {
			defer span.End()
			done <- b.gc.Do(ctx, queue.Unit{JobID: id, Key: "x", Rank: i, Apply: insertRow("x", i)})
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the three queue behind the first (a bigger batch is all that depends on it)
	close(release)
	require.NoError(t, <-first)
	for range 3 {
		require.NoError(t, <-done)
	}
	commits := spansNamed(exp, "queue.group_commit")
	require.NotEmpty(t, commits)
	seen := map[trace.SpanID]bool{}
	for _, c := range commits {
		if c.Parent.IsValid() {
			seen[c.Parent.SpanID()] = true
		}
		for _, l := range c.Links {
			seen[l.SpanContext.SpanID()] = true
		}
	}
	for _, p := range parents {
		require.True(t, seen[p.SpanID()], "every traced unit is the parent of, or linked from, its commit's span")
	}
}

func newGroupCommitTraced(t *testing.T, tp trace.TracerProvider) gcBundle {
	t.Helper()
	db, _ := pgtest.Open(t)
	_, err := db.Exec(`CREATE TABLE gc_rows (k TEXT PRIMARY KEY, v INT NOT NULL)`)
	require.NoError(t, err)
	lc := fxtest.NewLifecycle(t)
	reg := prometheus.NewRegistry()
	gc, err := queue.NewGroupCommit(lc, db, reg, slog.New(slog.DiscardHandler), queue.GroupCommitOptions{
		Name: "test", Lanes: 1, MaxBatch: 64, Timeout: 10 * time.Second, TracerProvider: tp,
	})
	require.NoError(t, err)
	lc.RequireStart()
	t.Cleanup(lc.RequireStop)
	return gcBundle{db: db, gc: gc, reg: reg}
}

// TestTheSamplerDecidesOnceBeforeOtelriver: at a 50% ratio about half the
// jobs get a work span, one each (not a second, unrecorded, one beside
// it), and the span a sampled job's worker sees is that work span; an
// unsampled job's worker still sees a valid, unsampled span context, so
// what it inserts or calls carries the decision.
func TestTheSamplerDecidesOnceBeforeOtelriver(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.5))))
	db, dsn := pgtest.Open(t)
	lc := fxtest.NewLifecycle(t)
	seen := make(chan trace.SpanContext, 100)
	client := startTraced(t, lc, db, dsn, prometheus.NewRegistry(), tp, func(ctx context.Context, _ *river.Job[tracedArgs]) error {
		seen <- trace.SpanContextFromContext(ctx)
		return nil
	})

	const n = 60
	for range n {
		_, err := client.Insert(context.Background(), tracedArgs{}, nil)
		require.NoError(t, err)
	}
	sampled := map[trace.SpanID]bool{}
	for range n {
		select {
		case sc := <-seen:
			require.True(t, sc.IsValid(), "every job runs with a span context")
			if sc.IsSampled() {
				sampled[sc.SpanID()] = true
			}
		case <-time.After(20 * time.Second):
			t.Fatal("not every job ran")
		}
	}
	require.NotEmpty(t, sampled, "some of %d jobs sampled at 50%%", n)
	require.Less(t, len(sampled), n, "some of %d jobs not sampled at 50%%", n)
	pgtest.Eventually(t, 5*time.Second, func() bool { return len(spansNamed(exp, "river.work/traced")) >= len(sampled) }, "the sampled jobs' work spans")
	works := spansNamed(exp, "river.work/traced")
	require.Len(t, works, len(sampled), "one work span per sampled job, none for the others")
	for _, w := range works {
		require.True(t, sampled[w.SpanContext.SpanID()], "a sampled job's worker runs under its work span")
		require.False(t, w.Parent.IsValid(), "the work span begins its trace: otelriver adopted the span started before it")
		require.Contains(t, w.Attributes, attribute.String("kind", "traced"), "otelriver gave the span it adopted its attributes")
	}
}
