package orderingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// worker applies order events.
type worker struct {
	river.WorkerDefaults[OrderArgs]
	commits *queue.GroupCommit
	logger  *slog.Logger
	metrics *metrics
}

func newWorker(commits *queue.GroupCommit, logger *slog.Logger, m *metrics) *worker {
	return &worker{commits: commits, logger: logger, metrics: m}
}

// Work validates the event, then writes the row and the job's completion in
// one transaction. Invalid input cancels the job (kept for an operator);
// any other failure is returned so River retries with backoff, and the
// retry gives the same row.
func (w *worker) Work(ctx context.Context, job *river.Job[OrderArgs]) error {
	s, err := job.Args.snapshot()
	if err != nil {
		w.metrics.events.WithLabelValues(outcomeInvalid).Inc()
		return river.JobCancel(fmt.Errorf("order event: %w", err))
	}
	res, err := w.apply(ctx, job, s)
	if err != nil {
		if errors.Is(err, tracking.ErrInvalid) { // decided by the database: a time in the future
			w.metrics.events.WithLabelValues(outcomeInvalid).Inc()
			return river.JobCancel(fmt.Errorf("order event: %w", err))
		}
		if permanent(err) {
			w.metrics.events.WithLabelValues(outcomeInvalid).Inc()
			return river.JobCancel(fmt.Errorf("%w: %w", tracking.ErrInvalid, err))
		}
		w.metrics.events.WithLabelValues(outcomeError).Inc()
		return err
	}
	w.metrics.events.WithLabelValues(string(res)).Inc()
	w.logger.DebugContext(ctx, "order event applied", "order_nr", s.OrderNr, "status", s.Payload.Status, "result", string(res), "job_id", job.ID)
	return nil
}

// apply writes the row and the job's completion in one transaction, shared
// with other jobs' events by the group commit (queue.GroupCommit).
func (w *worker) apply(ctx context.Context, job *river.Job[OrderArgs], s snapshot) (result, error) {
	var res result
	err := w.commits.Do(ctx, queue.Unit{
		JobID: job.ID,
		Key:   s.OrderNr,
		Apply: func(ctx context.Context, tx *sqlx.Tx) error {
			var err error
			if res, err = upsert(ctx, tx, s); err != nil {
				return fmt.Errorf("apply order event %s: %w", s.OrderNr, err)
			}
			return nil
		},
	})
	if err != nil {
		return "", err
	}
	return res, nil
}
