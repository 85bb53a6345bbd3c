package cleanup

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// phoneGrace is how long after its expiry a forwarding phone is kept
// (DESIGN §6).
const phoneGrace = time.Hour

// batchStatementTimeout bounds each DELETE. A batch takes milliseconds; one
// that waits this long on locks gives up, and the job retries later.
const batchStatementTimeout = 5 * time.Second

// cutoffs are a run's limits, read once from the database's clock so every
// batch of a run deletes by the same rule.
type cutoffs struct {
	// CreatedBefore: picker_orders and orders created before it go.
	CreatedBefore time.Time `db:"created_before"`
	// ExpiredBefore: picker_phones that expired before it go.
	ExpiredBefore time.Time `db:"expired_before"`
}

func readCutoffs(ctx context.Context, db sqlx.QueryerContext, retention time.Duration) (cutoffs, error) {
	const q = `
SELECT now() - make_interval(secs => $1) AS created_before,
       now() - make_interval(secs => $2) AS expired_before`
	var c cutoffs
	if err := sqlx.GetContext(ctx, db, &c, q, retention.Seconds(), phoneGrace.Seconds()); err != nil {
		return c, fmt.Errorf("read cleanup cut-offs: %w", err)
	}
	return c, nil
}

// target is one table the cleanup deletes from.
type target struct {
	// Table names the table in logs and metrics.
	Table string
	// Delete removes up to $3 rows whose key column is in [$2, $1), lowest
	// first, and returns how many rows it selected, how many of those it
	// removed and the highest key removed.
	Delete string
	// Cutoff picks the run's cut-off for this table.
	Cutoff func(cutoffs) time.Time
}

// Each DELETE finds its batch through the key column's index, ordered, from
// where the previous batch stopped ($2), so a run never walks the dead
// index entries of its own earlier batches; it deletes the batch by ctid
// (a TID scan, no second index lookup). A row updated between the
// selection and the delete (the updater keeps touching old orders) is
// re-checked by Postgres against its new version, whose ctid differs, and
// is skipped: the batch then deletes fewer rows than it selected, and the
// worker looks at the same range again rather than stopping or moving past
// the skipped row. The batch's rows are locked in key order (FOR UPDATE
// under ORDER BY locks them as sorted) before the delete, the lock order
// every writer follows (DESIGN §3.1), so the cleanup never deadlocks with
// an ingest batch or a refresh.
const (
	deletePickerOrders = `
WITH batch AS MATERIALIZED (
    SELECT ctid FROM picker_orders
    WHERE created_at < $1 AND created_at >= $2
    ORDER BY created_at
    LIMIT $3
), locked AS MATERIALIZED (
    SELECT ctid FROM picker_orders
    WHERE ctid = ANY (ARRAY (SELECT ctid FROM batch))
    ORDER BY order_nr
    FOR UPDATE
), deleted AS (
    DELETE FROM picker_orders
    WHERE ctid = ANY (ARRAY (SELECT ctid FROM locked))
    RETURNING created_at
)
SELECT (SELECT count(*) FROM batch), count(*), max(created_at) FROM deleted`

	deleteOrders = `
WITH batch AS MATERIALIZED (
    SELECT ctid FROM orders
    WHERE created_at < $1 AND created_at >= $2
    ORDER BY created_at
    LIMIT $3
), locked AS MATERIALIZED (
    SELECT ctid FROM orders
    WHERE ctid = ANY (ARRAY (SELECT ctid FROM batch))
    ORDER BY order_nr
    FOR UPDATE
), deleted AS (
    DELETE FROM orders
    WHERE ctid = ANY (ARRAY (SELECT ctid FROM locked))
    RETURNING created_at
)
SELECT (SELECT count(*) FROM batch), count(*), max(created_at) FROM deleted`

	deletePickerPhones = `
WITH batch AS MATERIALIZED (
    SELECT ctid FROM picker_phones
    WHERE expires_at < $1 AND expires_at >= $2
    ORDER BY expires_at
    LIMIT $3
), locked AS MATERIALIZED (
    SELECT ctid FROM picker_phones
    WHERE ctid = ANY (ARRAY (SELECT ctid FROM batch))
    ORDER BY order_nr, picker_id
    FOR UPDATE
), deleted AS (
    DELETE FROM picker_phones
    WHERE ctid = ANY (ARRAY (SELECT ctid FROM locked))
    RETURNING expires_at
)
SELECT (SELECT count(*) FROM batch), count(*), max(expires_at) FROM deleted`
)

// targets are the tables in the order a run cleans them.
var targets = []target{
	{Table: "picker_orders", Delete: deletePickerOrders, Cutoff: func(c cutoffs) time.Time { return c.CreatedBefore }},
	{Table: "orders", Delete: deleteOrders, Cutoff: func(c cutoffs) time.Time { return c.CreatedBefore }},
	{Table: "picker_phones", Delete: deletePickerPhones, Cutoff: func(c cutoffs) time.Time { return c.ExpiredBefore }},
}

// batchResult is what one DELETE did.
type batchResult struct {
	// Selected is how many rows the batch's index scan found (at most the
	// limit); Deleted how many of them went. Fewer deleted than selected
	// means rows changed meanwhile and were skipped.
	Selected, Deleted int64
	// Last is the highest key deleted, nil when none was.
	Last *time.Time
}

// deleteBatch runs one DELETE in its own transaction with a statement
// timeout. from is the lowest key still to look at ("-infinity" when nil).
func deleteBatch(ctx context.Context, db *sqlx.DB, t target, cutoff time.Time, from *time.Time, limit int) (batchResult, error) {
	var r batchResult
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return r, fmt.Errorf("cleanup %s: begin: %w", t.Table, err)
	}
	defer func() { _ = tx.Rollback() }()
	// set_config(..., true) is SET LOCAL with the value as a parameter.
	if _, err := tx.ExecContext(ctx, `SELECT set_config('statement_timeout', $1, true)`, fmt.Sprint(batchStatementTimeout.Milliseconds())); err != nil {
		return r, fmt.Errorf("cleanup %s: set statement_timeout: %w", t.Table, err)
	}
	lower := any("-infinity")
	if from != nil {
		lower = *from
	}
	if err := tx.QueryRowxContext(ctx, t.Delete, cutoff, lower, limit).Scan(&r.Selected, &r.Deleted, &r.Last); err != nil {
		return batchResult{}, fmt.Errorf("cleanup %s: delete batch: %w", t.Table, err)
	}
	if err := tx.Commit(); err != nil {
		return batchResult{}, fmt.Errorf("cleanup %s: commit batch: %w", t.Table, err)
	}
	return r, nil
}
