package pickerupdater

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/pickerupdater/pickerfake"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

var longAgo = time.Now().Add(-24 * time.Hour)

func TestTickRefreshesStaleOrdersOfListedStatusesOnly(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "[{status: picking, timeout: 300}, {status: assigned, timeout: 600}]", nil), fastTuning)

	stale := map[string]time.Duration{
		"pick-stale-1": 301 * time.Second, "pick-stale-2": 400 * time.Second, "pick-stale-3": 10 * time.Hour,
		"asg-stale-1": 601 * time.Second,
	}
	fresh := map[string]time.Duration{
		"pick-fresh-1": 280 * time.Second, "pick-fresh-2": 0,
		// stale for picking's timeout, not for assigned's
		"asg-fresh-1": 400 * time.Second,
		// long quiet, but their statuses are not listed
		"new-old-1": 100 * time.Hour, "paid-old-1": 100 * time.Hour,
	}
	status := func(orderNr string) tracking.PickerStatus {
		switch orderNr[:3] {
		case "pic":
			return tracking.PickerPicking
		case "asg":
			return tracking.PickerAssigned
		case "new":
			return tracking.PickerNew
		}
		return tracking.PickerPaid
	}
	for orderNr, quiet := range stale {
		a.seedOrder(orderNr, status(orderNr), "picker-1", longAgo, quiet)
	}
	for orderNr, quiet := range fresh {
		a.seedOrder(orderNr, status(orderNr), "picker-1", longAgo, quiet)
	}
	before := map[string]row{}
	for orderNr := range fresh {
		before[orderNr] = a.row(orderNr)
	}

	res := a.tickNow()
	require.Equal(t, 4, res.Stale)
	require.Equal(t, 4, res.Inserted)
	require.Equal(t, 2, res.Statuses)
	require.Equal(t, []string{"asg-stale-1", "pick-stale-1", "pick-stale-2", "pick-stale-3"}, a.enqueuedOrders())
	require.Equal(t, 3.0, a.metric("eot_picker_updater_stale_total", map[string]string{"status": "picking"}))
	require.Equal(t, 1.0, a.metric("eot_picker_updater_stale_total", map[string]string{"status": "assigned"}))

	// The fake knows none of them: each refresh is a 404, which moves
	// updated_at, so the next tick finds nothing.
	for orderNr := range stale {
		a.awaitJob(orderNr, "completed", 10*time.Second)
		require.Equal(t, 1, fake.Hits(orderNr), orderNr)
		require.WithinDuration(t, time.Now(), a.row(orderNr).UpdatedAt, 10*time.Second, orderNr)
	}
	for orderNr := range fresh {
		require.Zero(t, fake.Hits(orderNr), orderNr)
		require.Equal(t, before[orderNr], a.row(orderNr), "%s untouched", orderNr)
	}
	res = a.tickNow()
	require.Zero(t, res.Stale)
	require.Len(t, a.enqueuedOrders(), 4)
}

// A tick pages through a status in batches, also through runs of equal
// updated_at (a bulk import), and enqueues each order once; a refresh still
// pending is not enqueued twice.
func TestTickPagesThroughTiesInBatches(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	fake.SetDown(true) // refreshes fail and stay retryable: still pending
	a := startApp(t, fake, testEnv(t, fake, "[{status: picking, timeout: 60}]", map[string]string{"PICKER_REFRESH_CONCURRENCY": "1"}), fastTuning)

	var want []string
	for i := range 11 {
		orderNr := fmt.Sprintf("tie-%02d", i)
		a.seedOrder(orderNr, tracking.PickerPicking, "", longAgo, time.Hour)
		want = append(want, orderNr)
	}
	// Seven share one updated_at exactly, so pages split inside the tie.
	_, err := a.DB.ExecContext(t.Context(), `UPDATE picker_orders SET updated_at = timestamptz '2025-01-01 00:00:00.123456+00' WHERE order_nr < 'tie-07'`)
	require.NoError(t, err)

	m, err := newMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	u := newUpdater(updaterParams{DB: a.DB, Store: a.Store, Config: Config{PickerOrdersURL: fake.URL(), MaxEnqueue: 10_000}, Metrics: m, Logger: slog.New(slog.DiscardHandler)})
	u.batch = 2

	res, err := u.tick(t.Context(), a.Client)
	require.NoError(t, err)
	require.Equal(t, 11, res.Stale)
	require.Equal(t, 11, res.Inserted)
	require.Equal(t, want, a.enqueuedOrders())

	// Their refreshes are pending (available, running or retryable), so the
	// next tick's selection skips them: nothing is inserted, nor even
	// offered to InsertManyTx as a duplicate.
	res, err = u.tick(t.Context(), a.Client)
	require.NoError(t, err)
	require.Zero(t, res.Stale)
	require.Zero(t, res.Inserted)
	require.Zero(t, res.Duplicates)
	require.Equal(t, want, a.enqueuedOrders())
}

func TestExperimentChangeIsPickedUpByTheNextTick(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	fake.SetDown(true) // keep the refreshes pending; only the enqueueing matters here
	a := startApp(t, fake, testEnv(t, fake, "[{status: picking, timeout: 300}]", nil), fastTuning)
	a.awaitTimeouts([]StatusTimeout{{Status: tracking.PickerPicking, Timeout: 300}})
	a.seedOrder("p1", tracking.PickerPicking, "", longAgo, 400*time.Second)
	a.seedOrder("a1", tracking.PickerAssigned, "", longAgo, 400*time.Second)

	require.Equal(t, 1, a.tickNow().Stale)
	require.Equal(t, []string{"p1"}, a.enqueuedOrders())

	// Operators list assigned with a timeout that makes a1 stale, and drop
	// picking.
	writeTimeouts(t, a.ExperimentsFile, "[{status: assigned, timeout: 350}]")
	a.awaitTimeouts([]StatusTimeout{{Status: tracking.PickerAssigned, Timeout: 350}})
	res := a.tickNow()
	require.Equal(t, 1, res.Stale)
	require.Equal(t, 1, res.Inserted)
	require.Equal(t, []string{"a1", "p1"}, a.enqueuedOrders())

	// A longer timeout: a1 is no longer stale.
	writeTimeouts(t, a.ExperimentsFile, "[{status: assigned, timeout: 500}]")
	a.awaitTimeouts([]StatusTimeout{{Status: tracking.PickerAssigned, Timeout: 500}})
	require.Zero(t, a.tickNow().Stale)

	// The experiment removed: nothing is refreshed.
	writeTimeouts(t, a.ExperimentsFile, "")
	a.awaitTimeouts(nil)
	a.seedOrder("p2", tracking.PickerPicking, "", longAgo, 10*time.Hour)
	res = a.tickNow()
	require.Zero(t, res.Stale)
	require.Zero(t, res.Statuses)
	require.Equal(t, []string{"a1", "p1"}, a.enqueuedOrders())
}

// Two replicas (two River clients on one database): River runs the periodic
// on the leader only, so each tick enqueues one updater job, and each stale
// order is refreshed once.
func TestPeriodicRunsOncePerTickWithTwoClients(t *testing.T) {
	t.Parallel()
	const interval = 300 * time.Millisecond
	fake := newFake(t)
	env := testEnv(t, fake, "[{status: picking, timeout: 60}]", map[string]string{"PICKER_UPDATER_INTERVAL": interval.String()})
	first := startApp(t, fake, env, fastTuning)
	var stale []string
	for i := range 5 {
		orderNr := fmt.Sprintf("two-%d", i)
		fake.Set(orderNr, pickerfake.Order{Status: "picking", PickerID: "picker-2", StatusUpdatedAt: time.Now().Add(-time.Minute)})
		first.seedOrder(orderNr, tracking.PickerPicking, "picker-1", longAgo, 2*time.Minute)
		stale = append(stale, orderNr)
	}
	second := startApp(t, fake, env, fastTuning)
	require.NotSame(t, first.Client, second.Client)

	const ticks = 8
	var runs []time.Time
	pgtest.Eventually(t, 30*time.Second, func() bool {
		runs = nil
		require.NoError(t, first.DB.SelectContext(t.Context(), &runs,
			`SELECT scheduled_at FROM river_job WHERE kind = $1 ORDER BY scheduled_at`, Kind))
		return len(runs) >= ticks
	}, "fewer than %d updater runs", ticks)

	// One job per tick: consecutive runs are an interval apart, never two
	// at (nearly) the same time.
	for i := 1; i < len(runs); i++ {
		gap := runs[i].Sub(runs[i-1])
		require.GreaterOrEqual(t, gap, interval*8/10, "runs %d and %d are %s apart: the periodic ran twice in a tick", i-1, i, gap)
	}
	var leaders int
	require.NoError(t, first.DB.GetContext(t.Context(), &leaders, `SELECT count(*) FROM river_leader`))
	require.Equal(t, 1, leaders)

	for _, orderNr := range stale {
		first.awaitJob(orderNr, "completed", 10*time.Second)
		require.Equal(t, "picker-2", first.row(orderNr).payload(t)["picker_id"], orderNr)
	}
	// A few more ticks: the refreshed orders are fresh now, nobody asks again.
	n := len(runs)
	pgtest.Eventually(t, 10*time.Second, func() bool {
		var count int
		require.NoError(t, first.DB.GetContext(t.Context(), &count, `SELECT count(*) FROM river_job WHERE kind = $1 AND state = 'completed'`, Kind))
		return count >= n+3
	}, "the periodic stopped")
	// Each order was asked for once over all those ticks and both clients.
	// (A tick whose selection saw an order just before its refresh
	// committed may still enqueue it once more; that job finds the row
	// moved and asks nothing.)
	require.Equal(t, float64(len(stale)), first.metric("eot_picker_orders_requests_total", nil)+second.metric("eot_picker_orders_requests_total", nil))
	require.Equal(t, stale, slices.Compact(first.enqueuedOrders()))
}

func TestOffWithoutPickerOrdersURL(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "[{status: picking, timeout: 1}]", map[string]string{
		"PICKER_ORDERS_URL":       "",
		"PICKER_UPDATER_INTERVAL": "100ms",
	}), nil)
	a.seedOrder("off-1", tracking.PickerPicking, "", longAgo, time.Hour)

	require.Len(t, a.Logs.Lines("picker updater off"), 1, a.Logs.String())

	// A refresh job from elsewhere is cancelled, saying why.
	a.refresh("off-1")
	j := a.awaitJob("off-1", "cancelled", 10*time.Second)
	require.Contains(t, j.Errors, "PICKER_ORDERS_URL is empty")
	require.Equal(t, 1.0, a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshOff}))

	// Ten intervals later the periodic has still never fired.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		var runs int
		require.NoError(t, a.DB.GetContext(t.Context(), &runs, `SELECT count(*) FROM river_job WHERE kind = $1`, Kind))
		require.Zero(t, runs)
		time.Sleep(50 * time.Millisecond)
	}
	require.Zero(t, fake.TotalHits())
	require.Len(t, a.Logs.Lines("picker updater off"), 1)
	require.True(t, slices.Equal([]string{"off-1"}, a.enqueuedOrders()))
}
