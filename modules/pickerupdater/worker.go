package pickerupdater

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// selectBatch is how many stale orders one selection query returns at most
// and one InsertManyTx enqueues.
const selectBatch = 1000

// Bounds of a tick's Timeout (see updater.Timeout).
const (
	// minTickTimeout keeps a short interval (tests, a local run) from
	// cutting an ordinary tick.
	minTickTimeout = 10 * time.Second
	// maxTickTimeout stays under River's rescue of stuck jobs (1 min in
	// platform/queue), so a tick that is still running is never rescued
	// and worked a second time.
	maxTickTimeout = 50 * time.Second
)

// updater is the periodic picker_orders_updater. River runs the periodic on
// the elected leader only; the job itself may be worked by any replica, and
// UpdaterArgs is unique until it finishes, so ticks never overlap.
type updater struct {
	river.WorkerDefaults[UpdaterArgs]

	db       *sqlx.DB
	store    *experiments.Store
	enabled  bool
	interval time.Duration
	// batch is the page size; maxEnqueue the per-tick budget of refresh
	// jobs (PICKER_UPDATER_MAX_ENQUEUE).
	batch, maxEnqueue int
	metrics           *metrics
	logger            *slog.Logger
	// ticks counts this process' ticks, to rotate the status served first.
	ticks atomic.Uint64
}

// tickResult is what one tick did.
type tickResult struct {
	// Stale is how many stale orders without a pending refresh the tick
	// took, over all statuses (at most the per-tick budget). Orders whose
	// refresh is pending are skipped by the selection and not counted.
	Stale int
	// Inserted and Duplicates split Stale into refresh jobs inserted and
	// orders whose refresh became pending between selection and insert.
	Inserted, Duplicates int
	// Statuses is how many statuses the experiment listed.
	Statuses int
	// PerStatus is Stale by status.
	PerStatus map[tracking.PickerStatus]int
	// Capped reports that the budget ran out before every status' stale
	// range did: the rest waits for the next tick.
	Capped bool
	// Selection is the time spent selecting and enqueuing.
	Selection time.Duration
}

// Timeout bounds a tick by its interval: a tick that cannot finish in one
// interval (a database in trouble) gives way to the next, which resumes
// where it stopped (every page is committed, and the orders it enqueued
// are pending, so skipped). Within [minTickTimeout, maxTickTimeout].
func (w *updater) Timeout(*river.Job[UpdaterArgs]) time.Duration {
	return min(max(w.interval, minTickTimeout), maxTickTimeout)
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

// lane is one listed status within a tick: where its next page starts and
// whether its stale range is exhausted (or failed) for this tick.
type lane struct {
	StatusTimeout
	after cursor
	done  bool
}

// tick reads the experiment in force and enqueues a refresh for the stale
// orders of every listed status, oldest first, skipping orders whose
// refresh is still pending, up to maxEnqueue jobs in all. Statuses not
// listed are never read.
//
// The budget is shared max-min fairly: in each round every status that
// still has stale orders gets an equal share of what is left; a status
// with fewer takes what it has and leaves the rest to the next round, so a
// large backlog in one status cannot starve another, whatever the order of
// the list. What the budget leaves is taken by the next ticks: the orders
// enqueued now are pending then, so skipped.
func (w *updater) tick(ctx context.Context, client *queue.Client) (tickResult, error) {
	res := tickResult{PerStatus: map[tracking.PickerStatus]int{}}
	// The updater evaluates with no kwargs (DESIGN §7): only the default and
	// kwarg-free clauses apply.
	list, ok := StatusesTimeout.Get(w.store, experiments.Kwargs{})
	if !ok || len(list) == 0 {
		w.logger.Debug("no status listed in the experiment; nothing to refresh", "experiment", StatusesTimeout.Name())
		return res, nil
	}
	res.Statuses = len(list)
	// Each tick starts the rounds at the next status, so none is always
	// served last (a budget smaller than the list, a tick cut short).
	first := int((w.ticks.Add(1) - 1) % uint64(len(list))) //nolint:gosec // the remainder is below len(list), so it fits an int
	lanes := make([]*lane, len(list))
	for i := range list {
		lanes[i] = &lane{StatusTimeout: list[(first+i)%len(list)]}
	}
	start := time.Now()
	var errs []error
	budget := w.maxEnqueue
	for budget > 0 {
		var hungry []*lane
		for _, l := range lanes {
			if !l.done {
				hungry = append(hungry, l)
			}
		}
		if len(hungry) == 0 {
			break
		}
		for i, l := range hungry {
			if budget == 0 {
				break
			}
			share := (budget + len(hungry) - i - 1) / (len(hungry) - i) // ceil: the rest over the lanes left
			n, err := w.enqueueStatus(ctx, client, l, share, &res)
			budget -= n
			res.PerStatus[l.Status] += n
			if n > 0 {
				w.metrics.stale.WithLabelValues(string(l.Status)).Add(float64(n))
			}
			if err != nil {
				if ctx.Err() != nil {
					return res, err
				}
				// One status failing must not starve the others.
				l.done = true
				errs = append(errs, err)
			}
		}
	}
	for _, l := range lanes {
		res.Capped = res.Capped || !l.done
	}
	if res.Capped {
		w.metrics.capped.Inc()
	}
	res.Selection = time.Since(start)
	w.metrics.selection.Observe(res.Selection.Seconds())
	w.metrics.enqueued.WithLabelValues("inserted").Add(float64(res.Inserted))
	w.metrics.enqueued.WithLabelValues("duplicate").Add(float64(res.Duplicates))
	if res.Stale > 0 {
		w.logger.Info("stale picker orders enqueued for refresh",
			"stale", res.Stale, "inserted", res.Inserted, "already_pending", res.Duplicates,
			"statuses", res.Statuses, "capped", res.Capped, "max_enqueue", w.maxEnqueue, "took", res.Selection)
	}
	return res, errors.Join(errs...)
}

// enqueueStatus pages through one status' stale orders from l's cursor,
// oldest first, and enqueues one refresh job per order, a page per
// transaction, until it has taken limit orders or the range is exhausted
// (then l is done). It returns how many it took.
func (w *updater) enqueueStatus(ctx context.Context, client *queue.Client, l *lane, limit int, res *tickResult) (int, error) {
	timeout := time.Duration(l.Timeout) * time.Second
	found := 0
	for found < limit {
		page := min(w.batch, limit-found)
		n, last, err := w.enqueuePage(ctx, client, l.Status, timeout, l.after, page, res)
		found += n
		if err != nil {
			return found, err
		}
		if n < page {
			l.done = true
			return found, nil
		}
		l.after = last
	}
	return found, nil
}

// enqueuePage selects one page and enqueues it in one transaction, so a
// failed insert leaves nothing half-done.
func (w *updater) enqueuePage(ctx context.Context, client *queue.Client, status tracking.PickerStatus, timeout time.Duration, after cursor, limit int, res *tickResult) (int, cursor, error) {
	tx, err := w.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, after, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, results, err := w.enqueueIn(ctx, tx, client, status, timeout, after, limit)
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

// enqueueIn selects one page of at most limit orders in tx and inserts a
// refresh job per order, each unique per order (a refresh that became
// pending since the selection is kept, the new one skipped).
func (w *updater) enqueueIn(ctx context.Context, tx *sqlx.Tx, client *queue.Client, status tracking.PickerStatus, timeout time.Duration, after cursor, limit int) ([]staleOrder, []*rivertype.JobInsertResult, error) {
	rows, err := selectStale(ctx, tx, status, timeout, after, limit)
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
