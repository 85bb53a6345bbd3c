package cleanup

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"go.uber.org/fx"
)

// minJobTimeout: a run may take longer than River's default job timeout
// when a backlog built up (every batch is committed, so a run cut short
// loses nothing).
const minJobTimeout = 10 * time.Minute

// worker is the periodic cleanup.
//
// High-water marks: a run that started from a table's lowest key walks,
// before its first delete, every index entry the previous run's deletes
// left dead, until autovacuum removes them (a run right after a big one:
// 244 ms for picker_orders' first batch). So the worker remembers, per
// table and in this process only, the highest key it has deleted with
// nothing left behind below it (its mark), and the next run starts there.
// Below a mark nothing expired was left when it was set, and rows arriving
// later almost never land there: created_at is always now() (its column
// default; neither ingest sets it), far above a cut-off 72 h back. But a
// late event can insert a picker_phones row whose expires_at lies below
// the mark (it expired long ago), and an operator's SQL could write
// anything; runs from the mark would keep such rows forever. Hence a full
// sweep from -infinity whenever there is no mark (the first run in a
// process: a restart, or the job worked by another replica after a leader
// change) and whenever the last full sweep began CLEANUP_FULL_SWEEP_INTERVAL
// ago or more; by then autovacuum has usually cleaned the dead entries it
// walks.
type worker struct {
	river.WorkerDefaults[Args]

	db      *sqlx.DB
	cfg     Config
	metrics *metrics
	logger  *slog.Logger
	// now is the clock of the full-sweep schedule (tests move it).
	now func() time.Time

	mu sync.Mutex // guards marks and lastFull; runs are serial, tests are not
	// marks is, per table, the highest key deleted with nothing expired
	// left below it.
	marks map[string]time.Time
	// lastFull is when the last completed full sweep began (zero: never).
	lastFull time.Time
}

type workerParams struct {
	fx.In

	DB      *sqlx.DB
	Config  Config
	Metrics *metrics
	Logger  *slog.Logger
}

func newWorker(p workerParams) *worker {
	return &worker{
		db: p.DB, cfg: p.Config, metrics: p.Metrics, logger: p.Logger,
		now: time.Now, marks: map[string]time.Time{},
	}
}

// Timeout lets a run with a backlog outlive River's default job timeout.
func (w *worker) Timeout(*river.Job[Args]) time.Duration {
	return max(w.cfg.Interval, minJobTimeout)
}

// Work deletes what expired, table by table, in batches.
func (w *worker) Work(ctx context.Context, _ *river.Job[Args]) error {
	_, err := w.run(ctx)
	return err
}

// tableResult is what a run did to one table.
type tableResult struct {
	Table string
	// From is the key the run started at: the table's mark, or nil for
	// -infinity (a full sweep).
	From    *time.Time
	Deleted int64
	Batches int
	// Slowest is the longest batch, its transaction included.
	Slowest time.Duration
	// Durations are every batch's duration, in order.
	Durations []time.Duration
}

// run cleans every table once and reports per table: from each table's
// mark, or from -infinity when it is time for a full sweep.
func (w *worker) run(ctx context.Context) ([]tableResult, error) {
	start := time.Now()
	began := w.now()
	cut, err := readCutoffs(ctx, w.db, w.cfg.Retention)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	full := w.lastFull.IsZero() || began.Sub(w.lastFull) >= w.cfg.FullSweepInterval
	w.mu.Unlock()
	results := make([]tableResult, 0, len(targets))
	var total int64
	for _, t := range targets {
		r, err := w.cleanTable(ctx, t, t.Cutoff(cut), full)
		results = append(results, r)
		total += r.Deleted
		if err != nil {
			// What went is logged; the rest waits for the retry.
			w.logResults(results, total, full, start, slog.LevelWarn)
			return results, err
		}
	}
	if full {
		w.mu.Lock()
		w.lastFull = began
		w.mu.Unlock()
	}
	level := slog.LevelDebug
	if total > 0 {
		level = slog.LevelInfo
	}
	w.logResults(results, total, full, start, level)
	return results, nil
}

// cleanTable deletes batch after batch from the table's mark (or from
// -infinity in a full sweep) until the index range below the cut-off is
// exhausted: a batch that found fewer rows than the limit and deleted all
// it found. A batch that deleted fewer than it found skipped rows that
// changed meanwhile; the next batch looks at the same range again (their
// new versions), so a short batch never ends the table early. A batch that
// deletes nothing ends it too, so rows changing under every batch cannot
// keep a run going. The mark moves up to where the run got.
func (w *worker) cleanTable(ctx context.Context, t target, cutoff time.Time, full bool) (tableResult, error) {
	r := tableResult{Table: t.Table}
	var from *time.Time
	w.mu.Lock()
	if mark, ok := w.marks[t.Table]; ok && !full {
		from = &mark
	}
	w.mu.Unlock()
	r.From = from
	defer func() {
		if from == nil {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if mark, ok := w.marks[t.Table]; !ok || from.After(mark) {
			w.marks[t.Table] = *from
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		began := time.Now()
		b, err := deleteBatch(ctx, w.db, t, cutoff, from, w.cfg.BatchSize)
		took := time.Since(began)
		if err != nil {
			return r, err
		}
		w.metrics.batch.WithLabelValues(t.Table).Observe(took.Seconds())
		w.metrics.deleted.WithLabelValues(t.Table).Add(float64(b.Deleted))
		r.Batches++
		r.Deleted += b.Deleted
		r.Durations = append(r.Durations, took)
		r.Slowest = max(r.Slowest, took)
		if b.Deleted == 0 || (b.Selected < int64(w.cfg.BatchSize) && b.Deleted == b.Selected) {
			if b.Deleted > 0 {
				from = b.Last
			}
			return r, nil
		}
		if b.Deleted == b.Selected {
			from = b.Last // nothing skipped: everything below Last is gone
		}
	}
}

func (w *worker) logResults(results []tableResult, total int64, full bool, start time.Time, level slog.Level) {
	attrs := []any{"deleted", total, "full_sweep", full, "took", time.Since(start)}
	for _, r := range results {
		attrs = append(attrs, slog.Group(r.Table, "deleted", r.Deleted, "batches", r.Batches, "slowest_batch", r.Slowest, "from", r.From))
	}
	w.logger.Log(context.Background(), level, "cleanup done", attrs...)
}
