package pickeringest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/riverqueue/river"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// worker applies one picker event per job.
type worker struct {
	river.WorkerDefaults[PickerOrderArgs]
	commits *queue.GroupCommit
	applier *Applier
	metrics *metrics
	logger  *slog.Logger
	hooks   *hooks
}

// hooks let tests act inside the worker's transaction and after its commit.
type hooks struct {
	// beforeCommit runs after the upsert and the job's completion, before
	// the commit; an error rolls both back, as a crash there would.
	beforeCommit func(ctx context.Context, tx *sqlx.Tx, job *river.Job[PickerOrderArgs]) error
	// afterCommit runs once the event's rows are committed.
	afterCommit func(job *river.Job[PickerOrderArgs])
}

// Work validates the event and applies it in one transaction with the job's
// completion. Invalid input cancels the job, keeping the error on its row;
// other failures are returned for River to retry.
func (w *worker) Work(ctx context.Context, job *river.Job[PickerOrderArgs]) error {
	start := time.Now()
	raw, err := job.Args.MarshalJSON()
	if err != nil {
		return fmt.Errorf("picker event job %d: args: %w", job.ID, err)
	}
	ev, err := parse(raw, job.CreatedAt)
	if err != nil {
		return w.cancel(ctx, job, ev, err)
	}
	if !ev.Type.Applied() {
		w.metrics.count(ev.Type, outcomeIgnored)
		w.logger.DebugContext(ctx, "picker event ignored", "job_id", job.ID, "event_type", tracking.Truncate(string(ev.Type)))
		return nil
	}
	applied, err := w.applyAndComplete(ctx, job, ev)
	switch {
	case err == nil:
	case errors.Is(err, tracking.ErrInvalid) || isDataError(err):
		return w.cancel(ctx, job, ev, err)
	default:
		w.metrics.count(ev.Type, outcomeRetried)
		return err // River logs it and retries with backoff
	}
	w.metrics.applySeconds.Observe(time.Since(start).Seconds())
	if ev.CreatedAtFromJob {
		w.metrics.createdAtMissing.Inc()
	}
	outcome := outcomeDuplicate
	if applied.Changed {
		outcome = outcomeApplied
	}
	w.metrics.count(ev.Type, outcome)
	applied.AfterCommit(ctx)
	if w.hooks != nil && w.hooks.afterCommit != nil {
		w.hooks.afterCommit(job)
	}
	return nil
}

// applyAndComplete writes the event's rows and the job's completion in one
// transaction (shared with other jobs' events by the group commit): a crash
// leaves both or neither, and the retry gives the same row.
func (w *worker) applyAndComplete(ctx context.Context, job *river.Job[PickerOrderArgs], ev Event) (Applied, error) {
	var applied Applied
	u := queue.Unit{
		JobID: job.ID,
		Key:   ev.OrderNr,
		Rank:  rank(ev.Type),
		Row:   ev.PickerID, // an order's phones, one row per picker
		Apply: func(ctx context.Context, tx *sqlx.Tx) error {
			var err error
			applied, err = w.applier.Apply(ctx, tx, ev)
			return err
		},
	}
	if w.hooks != nil && w.hooks.beforeCommit != nil {
		u.BeforeCommit = func(ctx context.Context, tx *sqlx.Tx) error { return w.hooks.beforeCommit(ctx, tx, job) }
	}
	// Errors come back as Apply and the hook returned them, or naming the
	// transaction step that failed.
	if err := w.commits.Do(ctx, u); err != nil {
		return Applied{}, err
	}
	return applied, nil
}

// Ranks of a group-commit unit within its order: the table it writes, in
// the lock order every writer follows (DESIGN §3.1), so a batch holding a
// status and a phone event of one order locks picker_orders first, as
// another replica's batch and the updater's refresh do.
const (
	rankPickerOrders = 0
	rankPickerPhones = 1
)

func rank(t tracking.EventType) int {
	if t == tracking.EventPickerPhoneForwardingReady {
		return rankPickerPhones
	}
	return rankPickerOrders
}

// cancel ends a job whose input can never be applied; its row keeps err.
func (w *worker) cancel(ctx context.Context, job *river.Job[PickerOrderArgs], ev Event, err error) error {
	w.metrics.count(ev.Type, outcomeCancelled)
	w.logger.WarnContext(ctx, "picker event cancelled: invalid input",
		"job_id", job.ID, "event_type", tracking.Truncate(string(ev.Type)), "order_nr", tracking.Truncate(ev.OrderNr),
		"err", strings.ReplaceAll(err.Error(), "\n", "; "))
	return river.JobCancel(err)
}

// isDataError reports PostgreSQL errors that retrying cannot fix: data
// exceptions (class 22) and program limits such as an oversized key (54).
func isDataError(err error) bool {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) {
		return false
	}
	class := string(pqErr.Code.Class())
	return class == "22" || class == "54"
}
