package pickerupdater

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// selectBatch is how many stale orders one selection query returns and one
// InsertManyTx enqueues.
const selectBatch = 1000

// updater is the periodic picker_orders_updater. River runs the periodic on
// the elected leader only; the job itself may be worked by any replica.
type updater struct {
	river.WorkerDefaults[UpdaterArgs]

	db      *sqlx.DB
	store   *experiments.Store
	enabled bool
	batch   int
	metrics *moduleMetrics
	logger  *slog.Logger
}

// tickResult is what one tick did.
type tickResult struct {
	// Stale is how many orders were found stale, over all statuses.
	Stale int
	// Inserted and Duplicates split Stale into refresh jobs inserted and
	// orders whose refresh was already pending.
	Inserted, Duplicates int
	// Statuses is how many statuses the experiment listed.
	Statuses int
	// Selection is the time spent selecting and enqueuing.
	Selection time.Duration
}

// Work runs one tick with the client that is working the job.
func (w *updater) Work(ctx context.Context, _ *river.Job[UpdaterArgs]) error {
	if !w.enabled {
		return nil // the module said so at start; the periodic never fires then
	}
	client := river.ClientFromContext[*sql.Tx](ctx)
	_, err := w.tick(ctx, client)
	return err
}

// tick reads the experiment in force and enqueues a refresh for every
// stale order of every listed status. Statuses not listed are never read.
func (w *updater) tick(ctx context.Context, client *queue.Client) (tickResult, error) {
	var res tickResult
	// The updater evaluates with no kwargs (DESIGN §7): only the default and
	// kwarg-free clauses apply.
	list, ok := StatusesTimeout.Get(w.store, experiments.Kwargs{})
	if !ok || len(list) == 0 {
		w.logger.Debug("no status listed in the experiment; nothing to refresh", "experiment", StatusesTimeout.Name())
		return res, nil
	}
	res.Statuses = len(list)
	start := time.Now()
	var errs []error
	for _, st := range list {
		n, err := w.enqueueStatus(ctx, client, st, &res)
		if n > 0 {
			w.metrics.stale.WithLabelValues(string(st.Status)).Add(float64(n))
		}
		if err != nil {
			if ctx.Err() != nil {
				return res, err
			}
			// One status failing must not starve the others.
			errs = append(errs, err)
		}
	}
	res.Selection = time.Since(start)
	w.metrics.selection.Observe(res.Selection.Seconds())
	w.metrics.enqueued.WithLabelValues("inserted").Add(float64(res.Inserted))
	w.metrics.enqueued.WithLabelValues("duplicate").Add(float64(res.Duplicates))
	if res.Stale > 0 {
		w.logger.Info("stale picker orders enqueued for refresh",
			"stale", res.Stale, "inserted", res.Inserted, "already_pending", res.Duplicates,
			"statuses", res.Statuses, "took", res.Selection)
	}
	return res, errors.Join(errs...)
}

// enqueueStatus pages through one status' stale orders, oldest first, and
// enqueues one refresh job per order, a page per transaction. It returns how
// many it found.
func (w *updater) enqueueStatus(ctx context.Context, client *queue.Client, st StatusTimeout, res *tickResult) (int, error) {
	timeout := time.Duration(st.Timeout) * time.Second
	var (
		after cursor
		found int
	)
	for {
		n, last, err := w.enqueuePage(ctx, client, st.Status, timeout, after, res)
		found += n
		if err != nil {
			return found, err
		}
		if n < w.batch {
			return found, nil
		}
		after = last
	}
}

// enqueuePage selects one page and enqueues it in one transaction, so a
// failed insert leaves nothing half-done.
func (w *updater) enqueuePage(ctx context.Context, client *queue.Client, status tracking.PickerStatus, timeout time.Duration, after cursor, res *tickResult) (int, cursor, error) {
	tx, err := w.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, after, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, results, err := w.enqueueIn(ctx, tx, client, status, timeout, after)
	if err != nil || len(rows) == 0 {
		return 0, after, err
	}
	if err := tx.Commit(); err != nil {
		return 0, after, fmt.Errorf("commit refresh jobs of %s: %w", status, err)
	}
	for _, r := range results {
		if r.UniqueSkippedAsDuplicate {
			res.Duplicates++
		} else {
			res.Inserted++
		}
	}
	res.Stale += len(rows)
	last := rows[len(rows)-1]
	return len(rows), cursor{UpdatedAt: last.UpdatedAt, OrderNr: last.OrderNr}, nil
}

// enqueueIn selects one page in tx and inserts a refresh job per order,
// each unique per order (a pending one is kept, the new one skipped).
func (w *updater) enqueueIn(ctx context.Context, tx *sqlx.Tx, client *queue.Client, status tracking.PickerStatus, timeout time.Duration, after cursor) ([]staleOrder, []*rivertype.JobInsertResult, error) {
	rows, err := selectStale(ctx, tx, status, timeout, after, w.batch)
	if err != nil || len(rows) == 0 {
		return nil, nil, err
	}
	params := make([]river.InsertManyParams, len(rows))
	for i, r := range rows {
		params[i] = river.InsertManyParams{Args: RefreshArgs{OrderNr: r.OrderNr, SeenUpdatedAt: &r.UpdatedAt}}
	}
	results, err := client.InsertManyTx(ctx, tx.Tx, params)
	if err != nil {
		return nil, nil, fmt.Errorf("enqueue refresh of %d picker orders in %s: %w", len(rows), status, err)
	}
	return rows, results, nil
}
