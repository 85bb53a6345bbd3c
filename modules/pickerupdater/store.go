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

// qSelectStale is one page of one status' stale orders; the benchmark
// (bench:updater) explains it as is.
//
// It reads only the range (status, -inf .. now()-timeout] of the index
// picker_orders_status_updated_at_idx: the row comparison becomes the index
// condition updated_at >= $3 (rechecked for ties on order_nr), and the
// index order serves ORDER BY updated_at with an incremental sort on
// order_nr within equal times.
const qSelectStale = `
SELECT order_nr, updated_at
FROM picker_orders
WHERE status = $1
  AND updated_at <= now() - make_interval(secs => $2)
  AND (updated_at, order_nr) > ($3::timestamptz, $4::text)
ORDER BY updated_at, order_nr
LIMIT $5`

// selectStale returns up to limit picker orders in status whose updated_at
// is at least timeout old, after c, oldest first.
func selectStale(ctx context.Context, q sqlx.QueryerContext, status tracking.PickerStatus, timeout time.Duration, c cursor, limit int) ([]staleOrder, error) {
	after := any(c.UpdatedAt)
	if c.UpdatedAt.IsZero() {
		after = "-infinity" // before every timestamp
	}
	var rows []staleOrder
	if err := sqlx.SelectContext(ctx, q, &rows, qSelectStale, string(status), timeout.Seconds(), after, c.OrderNr, limit); err != nil {
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
// returns its stored picker_id ("" when none). exists is false when the row
// is gone (cleanup deleted it since the tick), and then nothing is locked.
func lockOrder(ctx context.Context, tx *sqlx.Tx, orderNr string) (pickerID string, exists bool, err error) {
	const q = `
SELECT coalesce(payload->>'picker_id', '')
FROM picker_orders
WHERE order_nr = $1
FOR UPDATE`
	err = tx.GetContext(ctx, &pickerID, q, orderNr)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("lock picker order %s: %w", orderNr, err)
	}
	return pickerID, true, nil
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
