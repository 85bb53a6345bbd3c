package pickerupdater

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// The selection skips an order whose refresh is pending (available,
// scheduled, retryable, running), by River's own unique key, which it
// derives in SQL; order numbers with characters that JSON escapes hold the
// derivation to the key River stored. A finished refresh is not pending.
func TestSelectStaleSkipsPendingRefreshes(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "[{status: picking, timeout: 60}]", nil), fastTuning)
	ctx := t.Context()

	pending := []string{"plain-1", `a<b>&c`, `quote"back\slash`, "line\u2028sep\u2029", "tab\tbell\x07", "ünï-😀"}
	finished := []string{"done-1", "done-<&>"}
	none := []string{"none-1", "none-<&>"}
	for _, orderNr := range slices.Concat(pending, finished, none) {
		_, err := a.DB.ExecContext(ctx, `
INSERT INTO picker_orders (order_nr, payload, status_event_at, updated_at)
VALUES ($1, '{"status":"picking","status_history":{}}', now(), now() - interval '1 hour')`, orderNr)
		require.NoError(t, err)
	}
	// Scheduled an hour ahead, so no worker runs them: pending.
	for _, orderNr := range slices.Concat(pending, finished) {
		_, err := a.Client.Insert(ctx, RefreshArgs{OrderNr: orderNr}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
		require.NoError(t, err)
	}
	for _, orderNr := range finished {
		_, err := a.DB.ExecContext(ctx, `UPDATE river_job SET state = 'completed', finalized_at = now() WHERE kind = $1 AND args->>'order_nr' = $2`, RefreshKind, orderNr)
		require.NoError(t, err)
	}

	rows, err := selectStale(ctx, a.DB, tracking.PickerPicking, time.Minute, cursor{}, 100)
	require.NoError(t, err)
	var got []string
	for _, r := range rows {
		got = append(got, r.OrderNr)
	}
	want := slices.Concat(finished, none)
	slices.Sort(got)
	slices.Sort(want)
	require.Equal(t, want, got)

	// The plan probes River's unique index, not a scan of river_job.
	var plan []string
	require.NoError(t, a.DB.SelectContext(ctx, &plan, `EXPLAIN `+qSelectStale,
		string(tracking.PickerPicking), 60.0, "-infinity", "", selectBatch, refreshUniquePrefix))
	require.Contains(t, fmt.Sprint(plan), "river_job_unique_idx", plan)
}

// A backlog larger than PICKER_UPDATER_MAX_ENQUEUE is worked through over
// several ticks: each tick enqueues at most the budget, spends none of it
// on orders already pending, and serves every status that still has stale
// orders, however the backlog is spread.
func TestTickWorksThroughABacklogOverSeveralTicks(t *testing.T) {
	t.Parallel()
	const budget = 5
	fake := newFake(t)
	fake.SetDown(true) // refreshes fail and stay pending (retryable, snoozed)
	a := startApp(t, fake, testEnv(t, fake, "[{status: picking, timeout: 60}, {status: assigned, timeout: 60}, {status: new, timeout: 60}]",
		map[string]string{"PICKER_UPDATER_MAX_ENQUEUE": fmt.Sprint(budget)}), fastTuning)

	backlog := map[tracking.PickerStatus]int{tracking.PickerPicking: 12, tracking.PickerAssigned: 2, tracking.PickerNew: 7}
	var all []string
	for st, n := range backlog {
		for i := range n {
			orderNr := fmt.Sprintf("%s-%02d", st, i)
			// Older first: i=0 is the stalest.
			a.seedOrder(orderNr, st, "", longAgo, time.Hour+time.Duration(n-i)*time.Minute)
			all = append(all, orderNr)
		}
	}
	slices.Sort(all)

	left := map[tracking.PickerStatus]int{}
	for st, n := range backlog {
		left[st] = n
	}
	total := len(all)
	ticks := 0
	for ; ticks < 10; ticks++ {
		res := a.tickNow()
		if total == 0 {
			require.Zero(t, res.Stale, "tick %d: nothing left", ticks)
			break
		}
		require.Equal(t, min(budget, total), res.Stale, "tick %d: the budget is used, and only on orders not pending", ticks)
		require.Equal(t, res.Stale, res.Inserted, "tick %d", ticks)
		require.Zero(t, res.Duplicates, "tick %d: no insert spent on a pending order", ticks)
		for st, n := range left {
			if n > 0 {
				require.Positive(t, res.PerStatus[st], "tick %d: status %s with %d stale left was not served: %v", ticks, st, n, res.PerStatus)
			}
			left[st] -= res.PerStatus[st]
			require.GreaterOrEqual(t, left[st], 0)
		}
		total -= res.Stale
	}
	require.Equal(t, (len(all)+budget-1)/budget, ticks, "ticks with work")
	require.Equal(t, all, a.enqueuedOrders(), "every stale order enqueued exactly once")
	require.Zero(t, a.metric("eot_picker_updater_enqueued_total", map[string]string{"result": "duplicate"}))
	require.GreaterOrEqual(t, a.metric("eot_picker_updater_capped_ticks_total", nil), float64(ticks-1))
}

// The budget is shared max-min fairly within one tick: statuses with fewer
// stale orders than their share leave the rest to the others.
func TestTickSharesTheBudgetFairly(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	fake.SetDown(true)
	a := startApp(t, fake, testEnv(t, fake, "[{status: new, timeout: 60}, {status: assigned, timeout: 60}, {status: picking, timeout: 60}]",
		map[string]string{"PICKER_UPDATER_MAX_ENQUEUE": "10"}), fastTuning)
	for st, n := range map[tracking.PickerStatus]int{tracking.PickerNew: 1, tracking.PickerAssigned: 20, tracking.PickerPicking: 20} {
		for i := range n {
			a.seedOrder(fmt.Sprintf("%s-%02d", st, i), st, "", longAgo, time.Hour)
		}
	}
	res := a.tickNow()
	require.Equal(t, map[tracking.PickerStatus]int{tracking.PickerNew: 1, tracking.PickerAssigned: 5, tracking.PickerPicking: 4}, res.PerStatus)
	require.True(t, res.Capped)
}

// A budget smaller than the list still serves every status in turn: each
// tick starts with the next one.
func TestTickRotatesTheStatusServedFirst(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	fake.SetDown(true)
	a := startApp(t, fake, testEnv(t, fake, "[{status: new, timeout: 60}, {status: assigned, timeout: 60}, {status: picking, timeout: 60}]",
		map[string]string{"PICKER_UPDATER_MAX_ENQUEUE": "1"}), fastTuning)
	for _, st := range []tracking.PickerStatus{tracking.PickerNew, tracking.PickerAssigned, tracking.PickerPicking} {
		for i := range 3 {
			a.seedOrder(fmt.Sprintf("%s-%d", st, i), st, "", longAgo, time.Hour)
		}
	}
	served := map[tracking.PickerStatus]int{}
	for range 3 {
		res := a.tickNow()
		require.Equal(t, 1, res.Inserted)
		for st, n := range res.PerStatus {
			served[st] += n
		}
	}
	require.Equal(t, map[tracking.PickerStatus]int{tracking.PickerNew: 1, tracking.PickerAssigned: 1, tracking.PickerPicking: 1}, served)
}

// The tick is unique while it waits or runs: a tick that outlives its
// interval is not joined by the next one (which another replica could
// work at the same time); the periodic's inserts are skipped until it
// ends, and then ticks resume.
func TestTicksDoNotOverlap(t *testing.T) {
	t.Parallel()
	const interval = 150 * time.Millisecond
	ctx := t.Context()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "[{status: picking, timeout: 60}]",
		map[string]string{"PICKER_UPDATER_INTERVAL": interval.String()}), fastTuning)

	// An uncommitted refresh job for held-1: the tick's selection cannot
	// see it, so the tick's unique insert of held-1 waits on it, and the
	// tick runs as long as the test holds it.
	hold, err := a.DB.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = hold.Rollback() }()
	_, err = a.Client.InsertTx(ctx, hold.Tx, RefreshArgs{OrderNr: "held-1"}, nil)
	require.NoError(t, err)
	a.seedOrder("held-1", tracking.PickerPicking, "", longAgo, time.Hour)

	var held int64
	pgtest.Eventually(t, 20*time.Second, func() bool {
		var waiting int
		require.NoError(t, a.DB.GetContext(ctx, &waiting, `
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%river_job%'`))
		if waiting == 0 {
			return false
		}
		err := a.DB.GetContext(ctx, &held, `SELECT id FROM river_job WHERE kind = $1 AND state = 'running'`, Kind)
		return err == nil
	}, "no tick blocked on the held refresh")

	// Ten intervals: without uniqueness the periodic would have inserted a
	// tick in each.
	deadline := time.Now().Add(10 * interval)
	for time.Now().Before(deadline) {
		var jobs []string
		require.NoError(t, a.DB.SelectContext(ctx, &jobs, `SELECT state FROM river_job WHERE kind = $1 AND id > $2`, Kind, held))
		require.Empty(t, jobs, "a tick was inserted while one was running")
		time.Sleep(20 * time.Millisecond)
	}

	require.NoError(t, hold.Rollback())
	pgtest.Eventually(t, 20*time.Second, func() bool {
		var state string
		require.NoError(t, a.DB.GetContext(ctx, &state, `SELECT state FROM river_job WHERE id = $1`, held))
		var later int
		require.NoError(t, a.DB.GetContext(ctx, &later, `SELECT count(*) FROM river_job WHERE kind = $1 AND id > $2`, Kind, held))
		return state == "completed" && later > 0
	}, "the held tick did not complete, or ticks did not resume")
	a.awaitJob("held-1", "completed", 10*time.Second)
}

// The tick's Timeout follows the interval, within bounds.
func TestTickTimeoutFollowsTheInterval(t *testing.T) {
	t.Parallel()
	for interval, want := range map[time.Duration]time.Duration{
		100 * time.Millisecond: minTickTimeout,
		30 * time.Second:       30 * time.Second,
		10 * time.Minute:       maxTickTimeout,
	} {
		u := &updater{interval: interval}
		require.Equal(t, want, u.Timeout(nil), interval)
	}
}
