package pickerupdater

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/eats/eats-orders-tracking/modules/tracking"
)

// staleOrder is one row the updater found quiet for too long; updated_at
// and order_nr are also the keyset cursor of the next page.
type staleOrder struct {
	OrderNr   string    `db:"order_nr"`
	UpdatedAt time.Time `db:"updated_at"`
}

// cursor is where the next page of a status starts: strictly after
// (UpdatedAt, OrderNr). The zero cursor starts at the beginning.
type cursor struct {
	UpdatedAt time.Time
	OrderNr   string
}

// qSelectStale is one page of one status' stale orders that have no
// refresh job pending; the benchmark (bench:updater) explains it as is.
//
// It reads only the range (status, -inf .. now()-timeout] of the index
// picker_orders_status_updated_at_idx: the row comparison becomes the index
// condition updated_at >= $3 (rechecked for ties on order_nr), and the
// index order serves ORDER BY updated_at with an incremental sort on
// order_nr within equal times.
//
// An order whose refresh is still pending (available, scheduled, retryable
// or running) is skipped here, so a tick neither re-inserts it nor spends
// its enqueue budget on it. The anti-join probes River's own unique index
// (river_job_unique_idx: unique_key, partial on "the job's state is one of
// its unique states"), one btree lookup per stale row read: the same test
// River's unique insert would make. OFFSET 0 keeps it a filter on the
// ordered index scan (PostgreSQL does not turn such an EXISTS into a join),
// so a page still stops after LIMIT rows instead of a hash anti-join
// reading the status' whole stale range and sorting it.
//
// River's unique key is sha256("&kind=<kind>&args=" + {"order_nr":<JSON>}):
// $6 is refreshUniquePrefix, and order_nr is JSON-encoded as encoding/json
// does (to_json plus its HTML-safe escapes of <, >, & and U+2028/9).
// TestSelectStaleSkipsPendingRefreshes holds this to what River stores; if
// a River upgrade changes the key, pending orders are merely re-inserted
// and skipped as duplicates by InsertManyTx, as before this filter.
const qSelectStale = `
SELECT p.order_nr, p.updated_at
FROM picker_orders p
WHERE p.status = $1
  AND p.updated_at <= now() - make_interval(secs => $2)
  AND (p.updated_at, p.order_nr) > ($3::timestamptz, $4::text)
  AND NOT EXISTS (
      SELECT FROM river_job j
      WHERE j.unique_key = sha256(convert_to($6::text
                || replace(replace(replace(replace(replace(to_json(p.order_nr)::text,
                       '<', '\u003c'), '>', '\u003e'), '&', '\u0026'),
                       U&'\2028', '\u2028'), U&'\2029', '\u2029')
                || '}', 'UTF8'))
        AND j.unique_key IS NOT NULL
        AND j.unique_states IS NOT NULL
        AND river_job_state_in_bitmask(j.unique_states, j.state)
      OFFSET 0)
ORDER BY p.updated_at, p.order_nr
LIMIT $5`

// refreshUniquePrefix is River's unique key string of a RefreshArgs up to
// the order_nr's JSON value (RefreshArgs is unique by kind and order_nr).
const refreshUniquePrefix = `&kind=` + RefreshKind + `&args={"order_nr":`

// selectStale returns up to limit picker orders in status whose updated_at
// is at least timeout old and whose refresh is not pending, after c,
// oldest first.
func selectStale(ctx context.Context, q sqlx.QueryerContext, status tracking.PickerStatus, timeout time.Duration, c cursor, limit int) ([]staleOrder, error) {
	after := any(c.UpdatedAt)
	if c.UpdatedAt.IsZero() {
		after = "-infinity" // before every timestamp
	}
	var rows []staleOrder
	if err := sqlx.SelectContext(ctx, q, &rows, qSelectStale, string(status), timeout.Seconds(), after, c.OrderNr, limit, refreshUniquePrefix); err != nil {
		return nil, fmt.Errorf("select stale picker orders in %s: %w", status, err)
	}
	return rows, nil
}

// movedSince reports whether the picker order's updated_at is past seen,
// and whether the row exists at all.
func movedSince(ctx context.Context, db sqlx.QueryerContext, orderNr string, seen time.Time) (moved, exists bool, err error) {
	const q = `SELECT updated_at > $2 FROM picker_orders WHERE order_nr = $1`
	err = sqlx.GetContext(ctx, db, &moved, q, orderNr, seen)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("check picker order %s: %w", orderNr, err)
	}
	return moved, true, nil
}

// lockOrder locks the picker order's row for the refresh's transaction and
// returns its stored picker_id ("" when none), and whether statusAt is more
// than tracking.MaxFutureSkew after the database's clock (DESIGN §3.1: the
// one clock every replica shares, read in the same round trip). exists is
// false when the row is gone (cleanup deleted it since the tick), and then
// nothing is locked. picker_orders is locked before anything touches
// picker_phones, the lock order every writer follows.
func lockOrder(ctx context.Context, tx *sqlx.Tx, orderNr string, statusAt time.Time) (pickerID string, future, exists bool, err error) {
	const q = `
SELECT coalesce(payload->>'picker_id', '') AS picker_id,
       $2::timestamptz > now() + make_interval(secs => $3) AS future
FROM picker_orders
WHERE order_nr = $1
FOR UPDATE`
	var r struct {
		PickerID string `db:"picker_id"`
		Future   bool   `db:"future"`
	}
	err = tx.GetContext(ctx, &r, q, orderNr, statusAt, tracking.MaxFutureSkew.Seconds())
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, false, nil
	}
	if err != nil {
		return "", false, false, fmt.Errorf("lock picker order %s: %w", orderNr, err)
	}
	return r.PickerID, r.Future, true, nil
}

// touch moves updated_at to the transaction's time, so an order whose
// refresh completed is not asked again until its timeout passes anew. A
// row that is gone is no error.
func touch(ctx context.Context, tx *sqlx.Tx, orderNr string) error {
	const q = `UPDATE picker_orders SET updated_at = now() WHERE order_nr = $1`
	if _, err := tx.ExecContext(ctx, q, orderNr); err != nil {
		return fmt.Errorf("touch picker order %s: %w", orderNr, err)
	}
	return nil
}
