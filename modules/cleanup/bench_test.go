package cleanup

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkCleanup is the cleanup half of `go tool task bench:updater`:
// 1,000,000 expired rows (600,000 picker_orders, 300,000 orders, 100,000
// picker_phones) next to 100,000 live rows per table, on a fresh database,
// (BENCH_ROWS=n scales it to n expired rows, to try it small)
// after ANALYZE; one run with the default batch size, every batch timed
// (its whole transaction: BEGIN, SET LOCAL statement_timeout, DELETE,
// COMMIT). Run it with -benchtime 1x; the report is markdown.
func BenchmarkCleanup(b *testing.B) {
	var report strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&report, format+"\n", args...) }
	var (
		runs    []cleanupRun
		maxima  []time.Duration
		medians []time.Duration
	)
	for i := range benchCleanupRuns {
		r := benchCleanupOnce(b, i == benchCleanupRuns-1, true)
		runs = append(runs, r)
		maxima = append(maxima, slices.Max(r.all))
		medians = append(medians, pct(r.all, 50))
	}
	first := runs[0]
	p("Each run: a fresh database, %d expired rows (%d picker_orders, %d orders, %d picker_phones) and %d live rows per table seeded with generate_series, their times in insertion order as production writes them (≈ %s), then `ANALYZE`; one cleanup run (a full sweep: the worker has no marks yet) with CLEANUP_BATCH_SIZE=%d. A batch is timed over its whole transaction (BEGIN, SET LOCAL statement_timeout, DELETE … RETURNING, COMMIT). PostgreSQL %s, default settings (shared_buffers 128MB).",
		benchExpired, benchExpired*6/10, benchExpired*3/10, benchExpired/10, benchLive, first.seeded.Round(time.Second), benchBatchSize, first.pg)
	p("")
	p("| run | whole run | rows/s | batches | batch median | batch p95 | slowest batch | batches over 200 ms |")
	p("|---|---|---|---|---|---|---|---|")
	for i, r := range runs {
		p("| %d | %s | %.0f | %d | %s | %s | %s | %d |", i+1, r.took.Round(time.Millisecond), float64(benchExpired)/r.took.Seconds(), len(r.all),
			ms(pct(r.all, 50)), ms(pct(r.all, 95)), ms(slices.Max(r.all)), over(r.all, 200*time.Millisecond))
	}
	p("| **median of runs** | | | | **%s** | | **%s** | |", ms(pct(medians, 50)), ms(pct(maxima, 50)))
	p("")
	last := runs[len(runs)-1]
	p("Per table (run %d):", len(runs))
	p("")
	p("| table | deleted | batches | batch median | batch p95 | slowest batch |")
	p("|---|---|---|---|---|---|")
	for _, r := range last.tables {
		p("| %s | %d | %d | %s | %s | %s |", r.Table, r.Deleted, r.Batches, ms(pct(r.Durations, 50)), ms(pct(r.Durations, 95)), ms(r.Slowest))
	}
	p("")
	var overall int
	for _, r := range runs {
		overall += over(r.all, 200*time.Millisecond)
	}
	target := "reached"
	if overall > 0 {
		target = fmt.Sprintf("**not reached** (%d of %d batches over 200 ms in %d runs)", overall, len(runs)*len(first.all), len(runs))
	}
	p("Target, no batch over 200 ms: %s.", target)
	p("")
	worst := benchCleanupOnce(b, false, false)
	p("Worst case, one run with the times at random in the heap (each batch's 5,000 rows on ~5,000 different pages): whole run %s, batch median %s, p95 %s, slowest %s, %d of %d batches over 200 ms.",
		worst.took.Round(time.Millisecond), ms(pct(worst.all, 50)), ms(pct(worst.all, 95)), ms(slices.Max(worst.all)), over(worst.all, 200*time.Millisecond), len(worst.all))
	p("")
	p("A run started right after (before autovacuum cleaned the indexes) deletes nothing. From the marks the first run left (the default: the next run in the same process within CLEANUP_FULL_SWEEP_INTERVAL), its one batch per table starts at the highest key deleted: %s. A full sweep at that moment (from -infinity: a process without marks, or the periodic full sweep) walks the dead index entries once: %s.", last.afterwards, last.fullAfter)
	p("")
	p("Plan of one picker_orders batch after VACUUM (5,000 more expired rows; rolled back), `EXPLAIN (ANALYZE, BUFFERS)`:")
	p("```\n%s\n```", last.plan)

	b.ReportMetric(float64(pct(medians, 50).Microseconds())/1000, "ms-batch-median")
	b.ReportMetric(float64(pct(maxima, 50).Microseconds())/1000, "ms-batch-max-median")
	fmt.Printf("\n---- bench:updater (cleanup) ----\n%s\n", report.String())
}

const (
	benchCleanupRuns = 3
	benchBatchSize   = 5000
)

// benchExpired is how many expired rows a run deletes: 1,000,000, or
// BENCH_ROWS to try the benchmark small (e.g. BENCH_ROWS=20000); the live
// rows per table are a tenth of it.
var (
	benchExpired = func() int {
		if n, err := strconv.Atoi(os.Getenv("BENCH_ROWS")); err == nil && n >= 1000 {
			return n
		}
		return 1_000_000
	}()
	benchLive = benchExpired / 10
)

type cleanupRun struct {
	pg         string
	seeded     time.Duration
	took       time.Duration
	tables     []tableResult
	all        []time.Duration
	afterwards string
	fullAfter  string
	plan       string
}

// benchCleanupOnce seeds a fresh database and times one cleanup run; with
// explain it also times a second run and explains a batch.
func benchCleanupOnce(b *testing.B, explain, correlated bool) cleanupRun {
	ctx := context.Background()
	expired := map[string]int{"picker_orders": benchExpired * 6 / 10, "orders": benchExpired * 3 / 10, "picker_phones": benchExpired / 10}
	s := setup(b, Config{Interval: 10 * time.Minute, BatchSize: benchBatchSize, Retention: 72 * time.Hour, FullSweepInterval: time.Hour})

	b.StopTimer()
	began := time.Now()
	for _, q := range []struct {
		sql string
		n   int
	}{
		{`INSERT INTO picker_orders (order_nr, payload, status_event_at, created_at, updated_at)
SELECT 'old-' || i, jsonb_build_object('status', 'complete', 'picker_id', 'picker-' || (i % 5000), 'status_history', '{}'::jsonb),
       now() - interval '80 hours', now() - interval '73 hours' - random() * interval '72 hours', now() - interval '73 hours'
FROM generate_series(1, $1) AS i`, expired["picker_orders"]},
		{`INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at, created_at, updated_at)
SELECT 'old-' || i, 'eater-' || (i % 50000), '{"flow_type":"retail","status":"delivered","place":{"id":"40","name":"Shop"}}',
       now() - interval '80 hours', now() - interval '80 hours', now() - interval '73 hours' - random() * interval '72 hours', now() - interval '73 hours'
FROM generate_series(1, $1) AS i`, expired["orders"]},
		{`INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at, created_at, updated_at)
SELECT 'old-' || i, 'picker-' || (i % 5000), '+7900' || lpad(i::text, 7, '0'), now() - interval '2 hours' - random() * interval '72 hours',
       now() - interval '80 hours', now() - interval '80 hours', now() - interval '80 hours'
FROM generate_series(1, $1) AS i`, expired["picker_phones"]},
		{`INSERT INTO picker_orders (order_nr, payload, status_event_at, created_at)
SELECT 'new-' || i, '{"status":"picking","status_history":{}}', now(), now() - random() * interval '71 hours'
FROM generate_series(1, $1) AS i`, benchLive},
		{`INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at, created_at)
SELECT 'new-' || i, 'eater-' || (i % 50000), '{"flow_type":"retail","status":"created","place":{"id":"40","name":"Shop"}}',
       now(), now(), now() - random() * interval '71 hours'
FROM generate_series(1, $1) AS i`, benchLive},
		{`INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at)
SELECT 'new-' || i, 'picker-1', '+79001234567', now() - interval '50 minutes' + random() * interval '2 hours', now()
FROM generate_series(1, $1) AS i`, benchLive},
	} {
		sql := q.sql
		if correlated {
			// Times in insertion order, as production writes them: a batch's
			// rows share heap pages. At random (the worst case) every row of
			// a batch sits on its own page.
			sql = strings.ReplaceAll(sql, "random()", "(($1 - i)::float8 / $1)")
		}
		_, err := s.db.ExecContext(ctx, sql, q.n)
		require.NoError(b, err)
	}
	_, err := s.db.ExecContext(ctx, `ANALYZE picker_orders, orders, picker_phones`)
	require.NoError(b, err)
	r := cleanupRun{seeded: time.Since(began)}
	require.NoError(b, s.db.GetContext(ctx, &r.pg, `SHOW server_version`))

	b.StartTimer()
	start := time.Now()
	r.tables, err = s.worker.run(ctx)
	r.took = time.Since(start)
	b.StopTimer()
	require.NoError(b, err)
	for _, t := range r.tables {
		require.Equal(b, int64(expired[t.Table]), t.Deleted, t.Table)
		r.all = append(r.all, t.Durations...)
	}
	for _, table := range []string{"picker_orders", "orders", "picker_phones"} {
		var left int
		require.NoError(b, s.db.GetContext(ctx, &left, `SELECT count(*) FROM `+table))
		require.Equal(b, benchLive, left, "%s: only the live rows stay", table)
	}
	if !explain {
		return r
	}

	// Right after, from the marks (the first run was a full sweep and set
	// them), then as a full sweep.
	again, err := s.worker.run(ctx)
	require.NoError(b, err)
	parts := make([]string, len(again))
	for i, t := range again {
		require.NotNil(b, t.From, "%s: the run right after starts from the mark", t.Table)
		require.Zero(b, t.Deleted, t.Table)
		parts[i] = fmt.Sprintf("%s %s", t.Table, ms(t.Slowest))
	}
	r.afterwards = strings.Join(parts, ", ")
	s.worker.cfg.FullSweepInterval = 0
	full, err := s.worker.run(ctx)
	require.NoError(b, err)
	for i, t := range full {
		require.Nil(b, t.From, t.Table)
		parts[i] = fmt.Sprintf("%s %s", t.Table, ms(t.Slowest))
	}
	r.fullAfter = strings.Join(parts, ", ")

	_, err = s.db.ExecContext(ctx, `VACUUM picker_orders`)
	require.NoError(b, err)
	_, err = s.db.ExecContext(ctx, `INSERT INTO picker_orders (order_nr, payload, status_event_at, created_at)
SELECT 'again-' || i, '{"status":"complete","status_history":{}}', now(), now() - interval '100 hours'
FROM generate_series(1, $1) AS i`, benchBatchSize)
	require.NoError(b, err)
	cut, err := readCutoffs(ctx, s.db, 72*time.Hour)
	require.NoError(b, err)
	tx, err := s.db.BeginTxx(ctx, nil)
	require.NoError(b, err)
	var plan []string
	require.NoError(b, tx.SelectContext(ctx, &plan, "EXPLAIN (ANALYZE, BUFFERS) "+deletePickerOrders, cut.CreatedBefore, "-infinity", benchBatchSize))
	require.NoError(b, tx.Rollback())
	r.plan = strings.Join(plan, "\n")
	return r
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

func over(ds []time.Duration, limit time.Duration) int {
	n := 0
	for _, d := range ds {
		if d > limit {
			n++
		}
	}
	return n
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
