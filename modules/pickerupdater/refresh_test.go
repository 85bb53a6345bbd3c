package pickerupdater

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/pickerupdater/pickerfake"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// phoneRow is a picker_phones row.
type phoneRow struct {
	Phone     string    `db:"phone"`
	ExpiresAt time.Time `db:"expires_at"`
}

func (a *testApp) phone(orderNr, pickerID string) (phoneRow, bool) {
	a.t.Helper()
	var p phoneRow
	err := a.DB.GetContext(a.t.Context(), &p, `SELECT phone, expires_at FROM picker_phones WHERE order_nr = $1 AND picker_id = $2`, orderNr, pickerID)
	if err != nil {
		return p, false
	}
	return p, true
}

func TestRefreshAppliesTheAnswer(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	assignedAt := time.Date(2025, 11, 20, 10, 0, 0, 0, time.UTC)
	pickingAt := assignedAt.Add(5*time.Minute + 123456789*time.Nanosecond)
	expires := time.Now().Add(30 * time.Minute).UTC().Truncate(time.Second)
	a.seedOrder("ok-1", tracking.PickerAssigned, "picker-1", assignedAt, 20*time.Minute)
	before := a.row("ok-1")
	fake.Set("ok-1", pickerfake.Order{
		Status: "picking", PickerID: "picker-2", StatusUpdatedAt: pickingAt, PlaceID: 40,
		Phone: "+7 (900) 123-45-67,,89", PhoneExpiresAt: expires,
	})

	a.refresh("ok-1")
	j := a.awaitJob("ok-1", "completed", 10*time.Second)
	require.Equal(t, 1, j.Attempt)

	r := a.row("ok-1")
	require.Equal(t, map[string]any{
		"status":    "picking",
		"picker_id": "picker-2",
		"status_history": map[string]any{
			"assigned_at": "2025-11-20T10:00:00Z",
			"picking_at":  "2025-11-20T10:05:00.123456Z", // Postgres' precision
		},
	}, r.payload(t))
	require.True(t, r.UpdatedAt.After(before.UpdatedAt))
	require.WithinDuration(t, time.Now(), r.UpdatedAt, 10*time.Second)

	// The forwarding belongs to the answer's picker, normalized.
	p, ok := a.phone("ok-1", "picker-2")
	require.True(t, ok)
	require.Equal(t, "+79001234567,,89", p.Phone)
	require.True(t, p.ExpiresAt.Equal(expires))
	// picker-ingest writes the cache after the commit.
	key := a.Redis.Key("eot", "v2", "picker_phone", "ok-1", "picker-2")
	pgtest.Eventually(t, 5*time.Second, func() bool {
		v, err := a.Redis.Client.Get(t.Context(), key).Result()
		if errors.Is(err, redis.Nil) {
			return false
		}
		require.NoError(t, err)
		var cached map[string]any
		require.NoError(t, json.Unmarshal([]byte(v), &cached))
		return cached["phone"] == "+79001234567,,89"
	}, "phone not cached under %s", key)
	require.Equal(t, 1.0, a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshApplied}))
}

// A quiet order whose answer says nothing new still moves updated_at, so it
// is not asked again next tick; an older answer never moves it backwards.
func TestRefreshMovesUpdatedAtWhenNothingChanged(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	pickingAt := time.Date(2025, 11, 20, 10, 5, 0, 0, time.UTC)
	a.seedOrder("same-1", tracking.PickerPicking, "picker-1", pickingAt, time.Hour)
	a.seedOrder("older-1", tracking.PickerPicking, "picker-1", pickingAt, time.Hour)
	fake.Set("same-1", pickerfake.Order{Status: "picking", PickerID: "picker-1", StatusUpdatedAt: pickingAt, PlaceID: 40})
	fake.Set("older-1", pickerfake.Order{Status: "assigned", PickerID: "picker-0", StatusUpdatedAt: pickingAt.Add(-time.Minute), PlaceID: 40})

	for _, orderNr := range []string{"same-1", "older-1"} {
		before := a.row(orderNr)
		a.refresh(orderNr)
		a.awaitJob(orderNr, "completed", 10*time.Second)
		after := a.row(orderNr)
		require.Equal(t, "picking", after.Status, orderNr)
		require.Equal(t, "picker-1", after.payload(t)["picker_id"], orderNr)
		if orderNr == "same-1" {
			require.Equal(t, before.Payload, after.Payload, "nothing new in the answer")
		} else {
			// The older event only fills the history it had not seen.
			require.Equal(t, map[string]any{"assigned_at": "2025-11-20T10:04:00Z", "picking_at": "2025-11-20T10:05:00Z"},
				after.payload(t)["status_history"])
		}
		require.WithinDuration(t, time.Now(), after.UpdatedAt, 10*time.Second, orderNr)
		require.True(t, after.UpdatedAt.After(before.UpdatedAt.Add(50*time.Minute)), orderNr)
	}
}

func TestRefreshForwardingWithoutPickerGoesToTheStoredPicker(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	a.seedOrder("fw-1", tracking.PickerPicking, "picker-9", longAgo, time.Hour)
	a.seedOrder("fw-2", tracking.PickerPicking, "", longAgo, time.Hour)
	for _, orderNr := range []string{"fw-1", "fw-2"} {
		fake.Set(orderNr, pickerfake.Order{Status: "picking", StatusUpdatedAt: longAgo, Phone: "+79990001122"})
		a.refresh(orderNr)
		a.awaitJob(orderNr, "completed", 10*time.Second)
	}
	p, ok := a.phone("fw-1", "picker-9")
	require.True(t, ok)
	require.Equal(t, "+79990001122", p.Phone)

	// No picker anywhere: the status is applied, the phone is not.
	var phones int
	require.NoError(t, a.DB.GetContext(t.Context(), &phones, `SELECT count(*) FROM picker_phones WHERE order_nr = 'fw-2'`))
	require.Zero(t, phones)
	require.WithinDuration(t, time.Now(), a.row("fw-2").UpdatedAt, 10*time.Second)
	require.Len(t, containing(a.Logs.Lines("phone forwarding without a picker"), "order_nr=fw-2"), 1)
	require.Empty(t, a.Logs.Lines("9990001122"), "phones are logged masked")
}

func TestRefreshNotFoundLeavesTheRowAndMovesUpdatedAt(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	a.seedOrder("nf-1", tracking.PickerPicking, "picker-1", longAgo, time.Hour)
	before := a.row("nf-1")

	a.refresh("nf-1") // the fake does not know it: 404
	a.awaitJob("nf-1", "completed", 10*time.Second)
	after := a.row("nf-1")
	require.Equal(t, before.Payload, after.Payload)
	require.WithinDuration(t, time.Now(), after.UpdatedAt, 10*time.Second)
	require.Equal(t, 1, fake.Hits("nf-1"))
	require.Equal(t, 1.0, a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshNotFound}))
}

func TestRefreshRetriesServerErrors(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	for _, orderNr := range []string{"retry-1", "retry-2"} {
		a.seedOrder(orderNr, tracking.PickerAssigned, "picker-1", longAgo, time.Hour)
		fake.Set(orderNr, pickerfake.Order{Status: "picking", PickerID: "picker-1", StatusUpdatedAt: longAgo.Add(time.Minute)})
	}
	// 500 then 200: the client's own retry gets the answer.
	fake.Script("retry-1", pickerfake.ServerError, pickerfake.OK)
	// 500 on every attempt of the first call: the job fails, River retries
	// it with backoff, the second call gets the answer.
	fake.Script("retry-2", pickerfake.ServerError, pickerfake.ServerError, pickerfake.OK)

	a.refresh("retry-1")
	a.refresh("retry-2")
	j := a.awaitJob("retry-1", "completed", 10*time.Second)
	require.Equal(t, 1, j.Attempt)
	require.Equal(t, 2, fake.Hits("retry-1"))

	j = a.awaitJob("retry-2", "completed", 20*time.Second)
	require.Equal(t, 2, j.Attempt, "completed on River's retry")
	require.Contains(t, j.Errors, "status 500")
	require.Equal(t, 3, fake.Hits("retry-2"))
	for _, orderNr := range []string{"retry-1", "retry-2"} {
		require.Equal(t, "picking", a.row(orderNr).Status, orderNr)
	}
	require.Equal(t, 1.0, a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshUnavailable}))
	require.Equal(t, 2.0, a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshApplied}))
}

func TestRefreshSlowPastTheDeadlineIsRetried(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	a.seedOrder("slow-1", tracking.PickerAssigned, "picker-1", longAgo, time.Hour)
	before := a.row("slow-1")
	fake.Set("slow-1", pickerfake.Order{Status: "picking", PickerID: "picker-1", StatusUpdatedAt: longAgo.Add(time.Minute)})
	fake.SetBehaviour("slow-1", pickerfake.Slow(10*time.Second))

	start := time.Now()
	a.refresh("slow-1")
	// River records the failed attempt and schedules a retry (a retry due
	// within seconds is stored as available at a later scheduled_at).
	var j refreshJob
	pgtest.Eventually(t, 10*time.Second, func() bool {
		j, _ = a.refreshJob("slow-1")
		return j.Errors != ""
	}, "the slow call never failed")
	require.Less(t, time.Since(start), 8*time.Second, "every attempt has a deadline")
	require.Contains(t, []string{"retryable", "available", "running"}, j.State)
	require.Contains(t, j.Errors, "deadline")
	require.Equal(t, before, a.row("slow-1"), "nothing applied, updated_at kept")
	require.Equal(t, 2, fake.Hits("slow-1"), "both attempts of the call timed out")

	fake.SetBehaviour("slow-1", pickerfake.OK)
	j = a.awaitJob("slow-1", "completed", 20*time.Second)
	require.Equal(t, 2, j.Attempt)
	require.Equal(t, "picking", a.row("slow-1").Status)
}

func TestRefreshMalformedAnswerIsNotApplied(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	answers := map[string]pickerfake.Behaviour{
		"bad-json":   pickerfake.Garbage,
		"bad-status": pickerfake.Respond(http.StatusOK, `{"meta":{},"payload":{"eats_id":"bad-status","status":"lost","status_updated_at":"2025-11-20T10:00:00Z","place_id":1}}`),
		"bad-order":  pickerfake.Respond(http.StatusOK, `{"meta":{},"payload":{"eats_id":"someone-else","status":"picking","status_updated_at":"2025-11-20T10:00:00Z","place_id":1}}`),
	}
	for orderNr, b := range answers {
		a.seedOrder(orderNr, tracking.PickerAssigned, "picker-1", longAgo, time.Hour)
		fake.SetBehaviour(orderNr, b)
	}
	// A phone that is not a phone: the status part would be fine, but
	// nothing of the answer is applied.
	a.seedOrder("bad-phone", tracking.PickerAssigned, "picker-1", longAgo, time.Hour)
	fake.Set("bad-phone", pickerfake.Order{Status: "picking", PickerID: "picker-1", StatusUpdatedAt: time.Now(), Phone: "call me maybe 12"})
	answers["bad-phone"] = pickerfake.OK

	before := map[string]row{}
	for orderNr := range answers {
		before[orderNr] = a.row(orderNr)
		a.refresh(orderNr)
	}
	for orderNr := range answers {
		j := a.awaitJob(orderNr, "cancelled", 10*time.Second)
		require.Equal(t, 1, j.Attempt, "%s: not retried", orderNr)
		require.Contains(t, j.Errors, "malformed", orderNr)
		require.Equal(t, before[orderNr], a.row(orderNr), "%s: not applied, updated_at kept", orderNr)
		require.Len(t, containing(a.Logs.Lines("order_nr="+orderNr), "level=WARN"), 1, "%s logged once with the order", orderNr)
		require.Equal(t, 1, fake.Hits(orderNr), orderNr)
	}
	var phones int
	require.NoError(t, a.DB.GetContext(t.Context(), &phones, `SELECT count(*) FROM picker_phones`))
	require.Zero(t, phones)
	require.Equal(t, 4.0, a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshMalformed}))
}

// While eats-picker-orders is down the breaker opens and the refreshes stop
// calling it (they snooze); once it is back a probe closes the breaker and
// every refresh completes.
func TestRefreshBreakerOpensWhileDownThenCloses(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	var orders []string
	for i := range 8 {
		orderNr := fmt.Sprintf("down-%d", i)
		a.seedOrder(orderNr, tracking.PickerAssigned, "picker-1", longAgo, time.Hour)
		fake.Set(orderNr, pickerfake.Order{Status: "picking", PickerID: "picker-1", StatusUpdatedAt: longAgo.Add(time.Minute)})
		orders = append(orders, orderNr)
	}
	fake.SetDown(true)
	for _, orderNr := range orders {
		a.refresh(orderNr)
	}
	pgtest.Eventually(t, 10*time.Second, func() bool {
		return a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshBreakerOpen}) >= 1
	}, "the breaker never opened")
	require.Equal(t, 2.0, a.metric("eot_picker_orders_breaker_state", nil), "open")
	// Open means not called: the fake hears nothing until the delay passes.
	hits := fake.TotalHits()
	require.Less(t, hits, 2*len(orders), "fewer calls than refreshes × attempts")
	for _, orderNr := range orders {
		require.Equal(t, "assigned", a.row(orderNr).Status, orderNr)
	}

	fake.SetDown(false)
	for _, orderNr := range orders {
		a.awaitJob(orderNr, "completed", 20*time.Second)
		require.Equal(t, "picking", a.row(orderNr).Status, orderNr)
	}
	require.Equal(t, 0.0, a.metric("eot_picker_orders_breaker_state", nil), "closed again")
	require.Equal(t, float64(len(orders)), a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshApplied}))
}

// An order cleanup deleted between the tick and its refresh is not brought
// back.
func TestRefreshOfADeletedOrderDoesNotRecreateIt(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	fake.Set("gone-1", pickerfake.Order{Status: "picking", PickerID: "picker-1", Phone: "+79990001122"})
	a.refresh("gone-1")
	a.awaitJob("gone-1", "completed", 10*time.Second)
	var n int
	require.NoError(t, a.DB.GetContext(t.Context(), &n, `SELECT (SELECT count(*) FROM picker_orders) + (SELECT count(*) FROM picker_phones)`))
	require.Zero(t, n)
	require.Equal(t, 1.0, a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshGone}))
}

// Unique per order while one is pending: a second insert in the same
// transaction (as a tick would) is skipped.
func TestRefreshJobIsUniquePerOrderWhilePending(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	tx, err := a.DB.BeginTxx(t.Context(), nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	first, err := a.Client.InsertTx(t.Context(), tx.Tx, RefreshArgs{OrderNr: "u-1"}, nil)
	require.NoError(t, err)
	require.False(t, first.UniqueSkippedAsDuplicate)
	second, err := a.Client.InsertTx(t.Context(), tx.Tx, RefreshArgs{OrderNr: "u-1"}, nil)
	require.NoError(t, err)
	require.True(t, second.UniqueSkippedAsDuplicate)
	// What the tick saw is not part of the key: still the same order.
	seen := time.Now()
	third, err := a.Client.InsertTx(t.Context(), tx.Tx, RefreshArgs{OrderNr: "u-1", SeenUpdatedAt: &seen}, nil)
	require.NoError(t, err)
	require.True(t, third.UniqueSkippedAsDuplicate)
	other, err := a.Client.InsertTx(t.Context(), tx.Tx, RefreshArgs{OrderNr: "u-2"}, nil)
	require.NoError(t, err)
	require.False(t, other.UniqueSkippedAsDuplicate)
	require.Equal(t, RefreshKind, first.Job.Queue)
	require.Equal(t, refreshMaxAttempts, first.Job.MaxAttempts)
}

// A refresh whose order moved after the tick saw it (an event arrived) asks
// nothing: the order is not stale any more.
func TestRefreshSkipsAnOrderThatMovedSinceTheTick(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	for _, orderNr := range []string{"moved-1", "still-1"} {
		a.seedOrder(orderNr, tracking.PickerPicking, "picker-1", longAgo, time.Hour)
		fake.Set(orderNr, pickerfake.Order{Status: "picking", PickerID: "picker-1", StatusUpdatedAt: longAgo})
	}
	seenMoved := a.row("moved-1").UpdatedAt.Add(-time.Second) // seen before the row's last move
	seenStill := a.row("still-1").UpdatedAt                   // seen as it is
	_, err := a.Client.Insert(t.Context(), RefreshArgs{OrderNr: "moved-1", SeenUpdatedAt: &seenMoved}, nil)
	require.NoError(t, err)
	_, err = a.Client.Insert(t.Context(), RefreshArgs{OrderNr: "still-1", SeenUpdatedAt: &seenStill}, nil)
	require.NoError(t, err)

	a.awaitJob("moved-1", "completed", 10*time.Second)
	a.awaitJob("still-1", "completed", 10*time.Second)
	require.Zero(t, fake.Hits("moved-1"))
	require.Equal(t, 1, fake.Hits("still-1"))
	require.Equal(t, 1.0, a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshMoved}))
	require.Equal(t, 1.0, a.metric("eot_picker_refresh_total", map[string]string{"outcome": refreshApplied}))
}

func TestBreakerSnoozeGrowsAndIsCapped(t *testing.T) {
	t.Parallel()
	up, err := newUpstream(upstreamConfig{BaseURL: "http://127.0.0.1:1", BreakerDelay: time.Second}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(up.close)
	snooze := breakerSnooze(up)
	for _, c := range []struct {
		snoozes  int
		min, max time.Duration
	}{
		{0, 50 * time.Millisecond, 63 * time.Millisecond}, // the breaker is closed: retry almost at once
		{1, 2 * time.Second, 2500 * time.Millisecond},
		{3, 8 * time.Second, 10 * time.Second},
		{30, time.Minute, 75 * time.Second},
	} {
		for range 20 {
			d := snooze(c.snoozes)
			require.GreaterOrEqual(t, d, c.min, "snoozes %d", c.snoozes)
			require.LessOrEqual(t, d, c.max, "snoozes %d", c.snoozes)
		}
	}
	up.breaker.Open()
	require.Greater(t, snooze(0), 900*time.Millisecond, "open: wait for the probe")
}

// TestRefreshAnswerFromTheFutureIsNotApplied: an upstream status time more
// than 5 minutes after the database's now() would win the ordering rule
// against every later real event (DESIGN §3.1, §5). It is not applied,
// updated_at moves (the order is asked again at its next timeout, not
// every tick) and eot_picker_updater_future_total counts it; a small skew
// is applied as sent.
func TestRefreshAnswerFromTheFutureIsNotApplied(t *testing.T) {
	t.Parallel()
	fake := newFake(t)
	a := startApp(t, fake, testEnv(t, fake, "", nil), fastTuning)
	a.seedOrder("fut-1", tracking.PickerPicking, "picker-1", longAgo, time.Hour)
	a.seedOrder("skew-1", tracking.PickerPicking, "picker-1", longAgo, time.Hour)
	before := a.row("fut-1")
	fake.Set("fut-1", pickerfake.Order{
		Status: "paid", PickerID: "picker-2", StatusUpdatedAt: time.Now().Add(24 * time.Hour), PlaceID: 40,
		Phone: "+79990001122", PhoneExpiresAt: time.Now().Add(time.Hour),
	})
	skewed := time.Now().Add(2 * time.Minute).UTC().Truncate(time.Second)
	fake.Set("skew-1", pickerfake.Order{Status: "paid", PickerID: "picker-2", StatusUpdatedAt: skewed, PlaceID: 40})

	a.refresh("fut-1")
	a.awaitJob("fut-1", "completed", 10*time.Second)
	after := a.row("fut-1")
	require.Equal(t, before.Payload, after.Payload, "nothing of the answer applied")
	require.WithinDuration(t, time.Now(), after.UpdatedAt, 10*time.Second, "asked again only at its next timeout")
	_, ok := a.phone("fut-1", "picker-2")
	require.False(t, ok, "nor its forwarding")
	require.Equal(t, 1.0, a.metric("eot_picker_updater_future_total", nil))

	// A later real event still wins.
	a.seedOrder("fut-1", tracking.PickerPickedUp, "picker-1", time.Now(), 0)
	require.Equal(t, "picked_up", a.row("fut-1").Status)

	a.refresh("skew-1")
	a.awaitJob("skew-1", "completed", 10*time.Second)
	require.Equal(t, "paid", a.row("skew-1").Status)
	require.Equal(t, 1.0, a.metric("eot_picker_updater_future_total", nil))
}
