package cleanup

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// A row updated while its batch deletes (the updater touching an old
// order) is skipped by the ctid recheck, so the batch comes back short
// although more expired rows follow. The run goes on and deletes them all,
// the skipped row too.
func TestCleanupGoesOnAfterABatchShortenedByAConcurrentUpdate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setup(t, Config{Interval: time.Minute, BatchSize: 10, Retention: 72 * time.Hour, FullSweepInterval: time.Hour})
	_, err := b.db.ExecContext(ctx, `
INSERT INTO picker_orders (order_nr, payload, status_event_at, created_at)
SELECT 'old-' || lpad(i::text, 2, '0'), '{"status":"picking","status_history":{}}', now(), now() - interval '100 hours' + i * interval '1 second'
FROM generate_series(1, 30) AS i`)
	require.NoError(t, err)

	// Lock old-05, in the first batch, with an update not yet committed:
	// the first DELETE waits for it, then finds the row's new version.
	hold, err := b.db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = hold.Rollback() }()
	_, err = hold.ExecContext(ctx, `UPDATE picker_orders SET updated_at = now() WHERE order_nr = 'old-05'`)
	require.NoError(t, err)

	type runResult struct {
		results []tableResult
		err     error
	}
	done := make(chan runResult, 1)
	go func() {
		r, err := b.worker.run(context.WithoutCancel(ctx))
		done <- runResult{r, err}
	}()
	pgtest.Eventually(t, 20*time.Second, func() bool {
		var waiting int
		require.NoError(t, b.db.GetContext(ctx, &waiting, `
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%DELETE FROM picker_orders%'`))
		return waiting > 0
	}, "the first batch never waited on the held row")
	require.NoError(t, hold.Commit())

	var r runResult
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not finish")
	}
	require.NoError(t, r.err)
	require.Equal(t, int64(30), r.results[0].Deleted, "picker_orders")
	require.Empty(t, remaining(t, b.db)["picker_orders"])
	// 9 of the first 10 (old-05 skipped), then old-05 with the next 9,
	// 10, and the last one.
	require.Equal(t, 4, r.results[0].Batches)
}

// maxKey is the highest key of a table's rows below its cut-off now.
func maxKey(t *testing.T, db *sqlx.DB, table, key, cutoff string) time.Time {
	t.Helper()
	var at time.Time
	require.NoError(t, db.GetContext(t.Context(), &at, `SELECT max(`+key+`) FROM `+table+` WHERE `+key+` < `+cutoff))
	return at
}

// A run starts each table from the highest key the previous run in this
// process deleted, so it does not walk the dead index entries below it.
// A row that appears below the mark later (a late phone event whose expiry
// is long past) is left by such runs and deleted by the next full sweep,
// which comes CLEANUP_FULL_SWEEP_INTERVAL after the last one, or first
// thing in a process that has no mark.
func TestCleanupStartsFromTheMarkAndSweepsFullyEveryInterval(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setup(t, Config{Interval: 10 * time.Minute, BatchSize: 100, Retention: 72 * time.Hour, FullSweepInterval: time.Hour})
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.worker.now = func() time.Time { return clock }
	seed(t, b.db, 250)
	marks := map[string]time.Time{
		"picker_orders": maxKey(t, b.db, "picker_orders", "created_at", "now() - interval '72 hours'"),
		"orders":        maxKey(t, b.db, "orders", "created_at", "now() - interval '72 hours'"),
		"picker_phones": maxKey(t, b.db, "picker_phones", "expires_at", "now() - interval '1 hour'"),
	}

	// No mark yet: a full sweep.
	results, err := b.worker.run(ctx)
	require.NoError(t, err)
	for _, r := range results {
		require.Nil(t, r.From, r.Table)
		require.Equal(t, int64(250), r.Deleted, r.Table)
	}

	// A late phone, expired long before the mark, and one that expired
	// just now, above it (the "grace" rows are 59 min past expiry).
	exec := func(q string) {
		t.Helper()
		_, err := b.db.ExecContext(ctx, q)
		require.NoError(t, err)
	}
	exec(`INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at)
VALUES ('late-1', 'p', '+79000000001', now() - interval '30 hours', now())`)
	exec(`UPDATE picker_phones SET expires_at = now() - interval '61 minutes' WHERE order_nr = 'grace-1'`)

	// Ten minutes later: from the marks.
	clock = clock.Add(10 * time.Minute)
	results, err = b.worker.run(ctx)
	require.NoError(t, err)
	for _, r := range results {
		require.NotNil(t, r.From, r.Table)
		require.True(t, marks[r.Table].Equal(*r.From), "%s starts at %s, not at the mark %s", r.Table, r.From, marks[r.Table])
	}
	require.Equal(t, int64(1), results[2].Deleted, "grace-1, above the mark")
	left := remaining(t, b.db)["picker_phones"]
	require.Equal(t, 1, left["late"], "late-1 is below the mark: kept until the full sweep")
	require.Equal(t, 249, left["grace"])

	// Still within the hour: from the marks again.
	clock = clock.Add(49 * time.Minute)
	results, err = b.worker.run(ctx)
	require.NoError(t, err)
	require.NotNil(t, results[2].From)
	require.Equal(t, 1, remaining(t, b.db)["picker_phones"]["late"])

	// An hour after the last full sweep: a full sweep, and late-1 goes.
	clock = clock.Add(time.Minute)
	results, err = b.worker.run(ctx)
	require.NoError(t, err)
	for _, r := range results {
		require.Nil(t, r.From, r.Table)
	}
	require.Equal(t, int64(1), results[2].Deleted)
	require.Zero(t, remaining(t, b.db)["picker_phones"]["late"])

	// The next run is from the marks again; CLEANUP_FULL_SWEEP_INTERVAL=0
	// makes every run a full sweep.
	clock = clock.Add(10 * time.Minute)
	results, err = b.worker.run(ctx)
	require.NoError(t, err)
	require.NotNil(t, results[0].From)
	b.worker.cfg.FullSweepInterval = 0
	results, err = b.worker.run(ctx)
	require.NoError(t, err)
	require.Nil(t, results[0].From)
}
