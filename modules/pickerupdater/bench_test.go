package pickerupdater

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/pickerupdater/pickerfake"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// benchTimeouts is the shipped experiments.yaml's list.
var benchTimeouts = []StatusTimeout{
	{Status: tracking.PickerNew, Timeout: 600},
	{Status: tracking.PickerAssigned, Timeout: 600},
	{Status: tracking.PickerPicking, Timeout: 300},
	{Status: tracking.PickerPickedUp, Timeout: 900},
}

const (
	benchEvery   = 100 // every 100th row is stale: 1%
	benchRepeats = 5
)

// benchRows is 1,000,000 picker orders, or BENCH_ROWS to try the benchmark
// at a small size (e.g. BENCH_ROWS=20000); the task runs the full size.
var benchRows = func() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROWS")); err == nil && n >= 10*benchEvery {
		return n
	}
	return 1_000_000
}()

// BenchmarkUpdaterTick is `go tool task bench:updater` (with cleanup's
// BenchmarkCleanup): 1,000,000 picker orders of which 1% are stale, on a
// fresh database. It times the tick's selection with the index and with
// index scans disabled (both after ANALYZE, medians of 5), prints both
// plans, then runs one real tick against the fake upstream and waits for
// its refreshes. Run it with -benchtime 1x; the report is markdown.
func BenchmarkUpdaterTick(b *testing.B) {
	ctx := context.Background()
	fake := newFake(b)
	timeouts := make([]string, len(benchTimeouts))
	for i, st := range benchTimeouts {
		timeouts[i] = fmt.Sprintf("{status: %s, timeout: %d}", st.Status, st.Timeout)
	}
	env := testEnv(b, fake, "["+strings.Join(timeouts, ", ")+"]", map[string]string{"LOG_LEVEL": "info"})
	a := startApp(b, fake, env, nil)
	a.awaitTimeouts(benchTimeouts)
	var report strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&report, format+"\n", args...) }

	// Seed: 1% stale rows spread over the four listed statuses; of the
	// rest 60% complete and 10% paid (never read: not listed, quiet for up
	// to 72 h) and 30% in a listed status but fresh. Fresh rows are dated
	// an hour ahead so they stay fresh however long a loaded machine takes
	// to get through the benchmark; the index's shape is the same.
	began := time.Now()
	_, err := a.DB.ExecContext(ctx, `
WITH timeouts (idx, status, timeout) AS (
    VALUES (0, 'new', 600), (1, 'assigned', 600), (2, 'picking', 300), (3, 'picked_up', 900)
), gen AS (
    SELECT i,
           CASE WHEN i % $2 = 0 THEN 'stale'
                WHEN i % 10 < 6 THEN 'complete'
                WHEN i % 10 = 6 THEN 'paid'
                ELSE 'fresh' END AS kind,
           CASE WHEN i % $2 = 0 THEN (i / $2) % 4 ELSE i % 4 END AS idx
    FROM generate_series(1, $1) AS i
)
INSERT INTO picker_orders (order_nr, payload, status_event_at, created_at, updated_at)
SELECT 'bench-' || lpad(g.i::text, 7, '0'),
       jsonb_build_object('status', CASE WHEN g.kind IN ('complete', 'paid') THEN g.kind ELSE t.status END,
                          'picker_id', 'picker-' || (g.i % 5000),
                          'status_history', '{}'::jsonb),
       now() - interval '3 hours',
       now() - random() * interval '72 hours',
       CASE g.kind
           WHEN 'stale' THEN now() - make_interval(secs => t.timeout + 60 + random() * 3600)
           WHEN 'fresh' THEN now() + interval '1 hour' - make_interval(secs => random() * (t.timeout - 60))
           ELSE now() - random() * interval '72 hours' END
FROM gen g JOIN timeouts t USING (idx)`, benchRows, benchEvery)
	require.NoError(b, err)
	_, err = a.DB.ExecContext(ctx, `ANALYZE picker_orders`)
	require.NoError(b, err)
	seeded := time.Since(began)
	var stale int
	require.NoError(b, a.DB.GetContext(ctx, &stale, `SELECT count(*) FROM picker_orders WHERE order_nr ~ '00$' AND order_nr <> 'bench-0000000'`))
	var pg string
	require.NoError(b, a.DB.GetContext(ctx, &pg, `SHOW server_version`))

	p("Seeded %d picker orders (%d stale, 1%%) with generate_series in %s, then `ANALYZE picker_orders`. PostgreSQL %s.", benchRows, stale, seeded.Round(time.Millisecond), pg)
	p("")

	// The selection alone (every page of every listed status, no enqueue),
	// with the index and with index scans off, on one connection each.
	indexed := selection(b, a.DB, "")
	full := selection(b, a.DB, "SET enable_indexscan = off; SET enable_bitmapscan = off")
	require.Equal(b, stale, indexed.found, "the selection finds exactly the stale rows")
	require.Equal(b, stale, full.found)
	ratio := float64(indexed.median) / float64(full.median) * 100
	p("| selection of all %d stale rows (4 statuses, pages of %d) | median of %d | runs |", stale, selectBatch, benchRepeats)
	p("|---|---|---|")
	p("| with the index `picker_orders_status_updated_at_idx` | **%s** | %s |", ms(indexed.median), msList(indexed.runs))
	p("| `SET enable_indexscan = off; SET enable_bitmapscan = off` | **%s** | %s |", ms(full.median), msList(full.runs))
	p("")
	target := "reached"
	if ratio > 5 || indexed.seqScan {
		target = "**not reached**"
	}
	p("Indexed / full: %.2f%% (target ≤ 5%%, index range only, no Seq Scan: %s).", ratio, target)
	p("")
	p("Plan of one page (status `picking`, first page), `EXPLAIN (ANALYZE, BUFFERS)`, with the index:")
	p("```\n%s\n```", indexed.plan)
	p("Index scans off:")
	p("```\n%s\n```", full.plan)

	// Enqueueing alone: one page's selection and InsertManyTx of 1,000
	// unique jobs in a transaction that is rolled back, so no worker runs.
	var pageRuns []time.Duration
	for range benchRepeats {
		tx, err := a.DB.BeginTxx(ctx, nil)
		require.NoError(b, err)
		start := time.Now()
		rows, results, err := a.Updater.enqueueIn(ctx, tx, a.Client, tracking.PickerPicking, 300*time.Second, cursor{}, selectBatch)
		pageRuns = append(pageRuns, time.Since(start))
		require.NoError(b, err)
		require.NotEmpty(b, rows)
		require.LessOrEqual(b, len(rows), selectBatch)
		require.Len(b, results, len(rows))
		require.NoError(b, tx.Rollback())
	}
	slices.Sort(pageRuns)
	p("One page: selection of %d + `InsertManyTx` of %d unique refresh jobs (rolled back, no worker running): median of %d **%s** (%s).",
		selectBatch, selectBatch, benchRepeats, ms(pageRuns[len(pageRuns)/2]), msList(pageRuns))
	p("")

	// One real tick: select and enqueue the 10,000 refresh jobs
	// (InsertManyTx per page), then let the refresh queue (10 workers) ask
	// the fake for each and apply the answers.
	for i := benchEvery; i <= benchRows; i += benchEvery {
		st := benchTimeouts[(i/benchEvery)%4].Status
		fake.Set(fmt.Sprintf("bench-%07d", i), pickerfake.Order{Status: string(st), PickerID: "picker-1", StatusUpdatedAt: time.Now().Add(-time.Minute), PlaceID: 40})
	}
	b.ResetTimer()
	tickStart := time.Now()
	res, err := a.Updater.tick(ctx, a.Client)
	require.NoError(b, err)
	require.Equal(b, stale, res.Inserted)
	var done int
	pgtest.Eventually(b, 15*time.Minute, func() bool {
		require.NoError(b, a.DB.GetContext(ctx, &done, `SELECT count(*) FROM river_job WHERE kind = $1 AND state = 'completed'`, RefreshKind))
		return done == stale
	}, "refreshes not done")
	refreshed := time.Since(tickStart)
	b.StopTimer()
	var left int
	require.NoError(b, a.DB.GetContext(ctx, &left, `SELECT count(*) FROM picker_orders WHERE status = 'picking' AND updated_at <= now() - interval '300 seconds'`))
	next := a.tickNow()

	p("One tick through `updater.tick` against pickerfake on loopback (PICKER_REFRESH_CONCURRENCY=10):")
	p("")
	p("| | |")
	p("|---|---|")
	p("| stale found / refresh jobs inserted | %d / %d |", res.Stale, res.Inserted)
	p("| tick: selection + `InsertManyTx` in pages of ≤ %d (PICKER_UPDATER_MAX_ENQUEUE=%d) | %s |", selectBatch, a.Updater.maxEnqueue, ms(res.Selection))
	p("| all %d refreshes completed (upstream call, apply, `updated_at`, job completion in one tx) | %s (%.0f refreshes/s) |", done, refreshed.Round(time.Millisecond), float64(done)/refreshed.Seconds())
	p("| next tick: stale found, selection time | %d, %s |", next.Stale, ms(next.Selection))
	p("| refresh outcomes | applied %.0f, other %.0f |", a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshApplied}),
		a.metric("eot_picker_refresh_total", nil)-a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshApplied}))
	p("| mean time in a refresh's Work / in its upstream call | %s / %s |",
		ms(histMean(b, a, "eot_river_job_duration_seconds", map[string]string{"kind": RefreshKind})),
		ms(histMean(b, a, "eot_picker_orders_request_duration_seconds", map[string]string{"outcome": outcomeOK})))
	require.Zero(b, left)
	require.Zero(b, next.Stale)

	b.ReportMetric(float64(indexed.median.Microseconds())/1000, "ms-selection-indexed")
	b.ReportMetric(float64(full.median.Microseconds())/1000, "ms-selection-full")
	b.ReportMetric(ratio, "%-indexed/full")
	fmt.Printf("\n---- bench:updater (selection and tick) ----\n%s\n", report.String())
}

type selectionResult struct {
	found   int
	runs    []time.Duration
	median  time.Duration
	plan    string
	seqScan bool
}

// selection drains every listed status page by page, as a tick does, on
// one connection prepared by setup; it runs benchRepeats times and
// explains the first page of picking.
func selection(b *testing.B, db *sqlx.DB, setup string) selectionResult {
	ctx := context.Background()
	conn, err := db.Connx(ctx)
	require.NoError(b, err)
	defer conn.Close()
	if setup != "" {
		_, err := conn.ExecContext(ctx, setup)
		require.NoError(b, err)
		// The connection goes back to the pool: the tick measured next must
		// not inherit "no index scans" (it did once, and its per-row probe of
		// river_job became a scan of the whole job table: a 91 s tick).
		defer func() {
			_, err := conn.ExecContext(ctx, "RESET ALL")
			require.NoError(b, err)
		}()
	}
	var r selectionResult
	for range benchRepeats {
		found := 0
		start := time.Now()
		for _, st := range benchTimeouts {
			var after cursor
			for {
				rows, err := selectStale(ctx, conn, st.Status, time.Duration(st.Timeout)*time.Second, after, selectBatch)
				require.NoError(b, err)
				found += len(rows)
				if len(rows) < selectBatch {
					break
				}
				last := rows[len(rows)-1]
				after = cursor{UpdatedAt: last.UpdatedAt, OrderNr: last.OrderNr}
			}
		}
		r.runs = append(r.runs, time.Since(start))
		r.found = found
	}
	sorted := slices.Clone(r.runs)
	slices.Sort(sorted)
	r.median = sorted[len(sorted)/2]

	var lines []string
	require.NoError(b, conn.SelectContext(ctx, &lines, "EXPLAIN (ANALYZE, BUFFERS) "+qSelectStale,
		string(tracking.PickerPicking), 300.0, "-infinity", "", selectBatch, refreshUniquePrefix))
	r.plan = strings.Join(lines, "\n")
	// The anti-join's probe of river_job may be planned as a scan of the
	// (here empty) job table; what must never happen is a scan of
	// picker_orders.
	r.seqScan = strings.Contains(r.plan, "Seq Scan on picker_orders")
	return r
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func msList(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%.1f", float64(d.Microseconds())/1000)
	}
	return strings.Join(out, ", ") + " ms"
}

// histMean is a histogram's sum / count over the series matching labels.
func histMean(b *testing.B, a *testApp, name string, labels map[string]string) time.Duration {
	families, err := a.Reg.Gather()
	require.NoError(b, err)
	var sum float64
	var n uint64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue series
				}
			}
			sum += m.GetHistogram().GetSampleSum()
			n += m.GetHistogram().GetSampleCount()
		}
	}
	if n == 0 {
		return 0
	}
	return time.Duration(sum / float64(n) * float64(time.Second))
}
