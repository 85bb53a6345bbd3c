package cleanup

import (
	"context"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/eats/eats-orders-tracking/platform/metrics"
)

// minJobTimeout: a run may take longer than River's default job timeout
// when a backlog built up (every batch is committed, so a run cut short
// loses nothing).
const minJobTimeout = 10 * time.Minute

// worker is the periodic cleanup.
type worker struct {
	river.WorkerDefaults[Args]

	db      *sqlx.DB
	cfg     Config
	metrics *cleanupMetrics
	logger  *slog.Logger
}

type cleanupMetrics struct {
	deleted *prometheus.CounterVec
	batch   *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*cleanupMetrics, error) {
	m := &cleanupMetrics{
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "cleanup_deleted_total",
			Help: "Rows the cleanup deleted, by table.",
		}, []string{"table"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Name: "cleanup_batch_duration_seconds",
			Help:    "Duration of one cleanup DELETE batch (its whole transaction), by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"table"}),
	}
	if err := metrics.Register(reg, "cleanup", m.deleted, m.batch); err != nil {
		return nil, err
	}
	return m, nil
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
	Table   string
	Deleted int64
	Batches int
	// Slowest is the longest batch, its transaction included.
	Slowest time.Duration
	// Durations are every batch's duration, in order.
	Durations []time.Duration
}

// run cleans every table once and reports per table.
func (w *worker) run(ctx context.Context) ([]tableResult, error) {
	start := time.Now()
	cut, err := readCutoffs(ctx, w.db, w.cfg.Retention)
	if err != nil {
		return nil, err
	}
	results := make([]tableResult, 0, len(targets))
	var total int64
	for _, t := range targets {
		r, err := w.cleanTable(ctx, t, t.Cutoff(cut))
		results = append(results, r)
		total += r.Deleted
		if err != nil {
			// What went is logged; the rest waits for the retry.
			w.logResults(results, total, start, slog.LevelWarn)
			return results, err
		}
	}
	level := slog.LevelDebug
	if total > 0 {
		level = slog.LevelInfo
	}
	w.logResults(results, total, start, level)
	return results, nil
}

// cleanTable deletes batch after batch until a batch comes back short.
func (w *worker) cleanTable(ctx context.Context, t target, cutoff time.Time) (tableResult, error) {
	r := tableResult{Table: t.Table}
	var from *time.Time
	for {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		began := time.Now()
		n, last, err := deleteBatch(ctx, w.db, t, cutoff, from, w.cfg.BatchSize)
		took := time.Since(began)
		if err != nil {
			return r, err
		}
		w.metrics.batch.WithLabelValues(t.Table).Observe(took.Seconds())
		w.metrics.deleted.WithLabelValues(t.Table).Add(float64(n))
		r.Batches++
		r.Deleted += n
		r.Durations = append(r.Durations, took)
		r.Slowest = max(r.Slowest, took)
		if n < int64(w.cfg.BatchSize) || last == nil {
			return r, nil
		}
		from = last
	}
}

func (w *worker) logResults(results []tableResult, total int64, start time.Time, level slog.Level) {
	attrs := []any{"deleted", total, "took", time.Since(start)}
	for _, r := range results {
		attrs = append(attrs, slog.Group(r.Table, "deleted", r.Deleted, "batches", r.Batches, "slowest_batch", r.Slowest))
	}
	w.logger.Log(context.Background(), level, "cleanup done", attrs...)
}
