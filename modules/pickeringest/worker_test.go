package pickeringest_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

func TestWorkerAppliesEvents(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	ctx := context.Background()
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)

	res, err := s.Client.Insert(ctx, pickeringest.PickerOrderArgs{
		EventType: tracking.EventStatusChange, OrderNr: "o-1", OrderStatus: tracking.PickerAssigned,
		PlaceID: "40", PickerID: "p-1", CreatedAt: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC),
	}, nil)
	require.NoError(t, err)
	require.Equal(t, "completed", s.waitJob(t, res.Job.ID).State)
	p, ok := s.payload(t, "o-1")
	require.True(t, ok)
	require.JSONEq(t, `{"picker_id":"p-1","status":"assigned","status_history":{"assigned_at":"2025-03-01T10:00:00Z"}}`, p)

	id := s.insertSQL(t, eventJSON(t, phoneReady("o-1", expires)))
	require.Equal(t, "completed", s.waitJob(t, id).State)
	var phone string
	require.NoError(t, s.DB.Get(&phone, `SELECT phone FROM picker_phones WHERE order_nr = 'o-1' AND picker_id = 'p-1'`))
	require.Equal(t, "+79991234567", phone, "stored normalized")
	// The cache is written just after the job's commit.
	var cached string
	pgtest.Eventually(t, 5*time.Second, func() bool {
		cached, _ = pgtest.Redis(t).Get(ctx, s.Env["REDIS_KEY_PREFIX"]+"eot:v2:picker_phone:o-1:p-1").Result()
		return cached != ""
	}, "phone cached")
	require.JSONEq(t, `{"phone":"+79991234567","expires_at":"`+expires.Format("2006-01-02T15:04:05.000000Z07:00")+
		`","event_at":"2025-03-01T10:00:00.000000Z"}`, cached)

	// A duplicate delivery completes and changes nothing.
	id = s.insertSQL(t, eventJSON(t, phoneReady("o-1", expires)))
	require.Equal(t, "completed", s.waitJob(t, id).State)

	s.requireMetric(t, 1.0, "eot_picker_events_total", events("STATUS_CHANGE", "applied"))
	s.requireMetric(t, 1.0, "eot_picker_events_total", events("PICKER_PHONE_FORWARDING_READY", "applied"))
	s.requireMetric(t, 1.0, "eot_picker_events_total", events("PICKER_PHONE_FORWARDING_READY", "duplicate"))
	s.requireMetric(t, 3.0, "eot_picker_event_apply_seconds", nil)
	s.requireMetric(t, 0.0, "eot_picker_events_created_at_missing_total", nil)
}

// TestWorkerCancelsInvalidInput: every bad input ends cancelled with an
// error naming the field and the value; nothing else changes.
func TestWorkerCancelsInvalidInput(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	expires := time.Now().Add(time.Hour)
	fwd := func(f map[string]any) map[string]any {
		return withField(phoneReady("o-1", expires), "customer_picker_phone_forwarding", f)
	}
	goodFwd := map[string]any{"phone": "+79991234567", "expires_at": "2030-01-01T00:00:00Z"}
	cases := []struct {
		args string
		want string
	}{
		{eventJSON(t, withField(statusChange("o-1"), "event_type", nil)), `invalid event_type: required (got "")`},
		{eventJSON(t, withField(statusChange("o-1"), "order_nr", nil)), `invalid order_nr: required (got "")`},
		{eventJSON(t, withField(statusChange("o-1"), "order_status", nil)), `invalid order_status: required (got "")`},
		{eventJSON(t, withField(statusChange("o-1"), "place_id", nil)), `invalid place_id: required (got "")`},
		{eventJSON(t, withField(statusChange("o-1"), "order_status", "eating")), `invalid order_status: unknown picker order status (got "eating")`},
		{eventJSON(t, withField(statusChange("o-1"), "created_at", "01.03.2025 10:00")), `invalid created_at: not an RFC 3339 date-time (got "01.03.2025 10:00")`},
		{eventJSON(t, withField(phoneReady("o-1", expires), "picker_id", nil)), `invalid picker_id: required (got "")`},
		{eventJSON(t, withField(phoneReady("o-1", expires), "customer_picker_phone_forwarding", nil)), `invalid customer_picker_phone_forwarding: required (got "")`},
		{eventJSON(t, fwd(map[string]any{"phone": "+79991234567", "expires_at": "2030-01-01T00:00:00Z", "ttl": 60})), `invalid customer_picker_phone_forwarding.ttl: unknown field (got "60")`},
		{eventJSON(t, fwd(map[string]any{"phone": "12", "expires_at": "2030-01-01T00:00:00Z"})), `invalid customer_picker_phone_forwarding.phone: not a phone number (got "12")`},
		{eventJSON(t, fwd(map[string]any{"phone": "+7999123456789012345", "expires_at": "2030-01-01T00:00:00Z"})), `invalid customer_picker_phone_forwarding.phone: not a phone number (got "+***************2345")`},
		{eventJSON(t, fwd(map[string]any{"phone": "+79991234567", "expires_at": "tomorrow"})), `invalid customer_picker_phone_forwarding.expires_at: not an RFC 3339 date-time (got "tomorrow")`},
		{eventJSON(t, fwd(map[string]any{"expires_at": "2030-01-01T00:00:00Z"})), `invalid customer_picker_phone_forwarding.phone: required (got "")`},
		{eventJSON(t, withField(statusChange("o-1"), "customer_picker_phone_forwarding", withField(goodFwd, "extra", "x"))), `invalid customer_picker_phone_forwarding.extra: unknown field (got "\"x\"")`},
		{`[1, 2]`, `invalid event: not a JSON object (got "[1, 2]")`},
	}
	ids := make([]int64, len(cases))
	for i, c := range cases {
		ids[i] = s.insertSQL(t, c.args)
	}
	for i, c := range cases {
		j := s.waitJob(t, ids[i])
		require.Equal(t, "cancelled", j.State, c.want)
		require.Equal(t, []string{"JobCancelError: " + c.want}, j.errorTexts(t), "River keeps the error on the job row")
	}
	require.Zero(t, s.count(t, "picker_orders"))
	require.Zero(t, s.count(t, "picker_phones"))
	cancelled := s.metric(t, "eot_picker_events_total", events("STATUS_CHANGE", "cancelled")) +
		s.metric(t, "eot_picker_events_total", events("PICKER_PHONE_FORWARDING_READY", "cancelled")) +
		s.metric(t, "eot_picker_events_total", events("unknown", "cancelled"))
	require.Equal(t, float64(len(cases)), cancelled)
	s.requireMetric(t, 2.0, "eot_picker_events_total", events("unknown", "cancelled")) // no event_type; not an object
	require.Contains(t, s.Logs.String(), "picker event cancelled: invalid input")
	require.NotContains(t, s.Logs.String(), "7999123456789012345")
}

func TestWorkerIgnoresItemAndUnknownEvents(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	var ids []int64
	for _, typ := range []string{"ITEM_ADD", "ITEM_REPLACE", "ITEM_SOFT_DELETE", "ITEM_PICKED", "PICKER_WENT_HOME", "ITEM_TELEPORTED"} {
		// Fields of ignored events are not validated.
		ids = append(ids, s.insertSQL(t, eventJSON(t, map[string]any{"event_type": typ, "order_nr": 12, "order_status": "?"})))
	}
	for _, id := range ids {
		require.Equal(t, "completed", s.waitJob(t, id).State)
	}
	require.Zero(t, s.count(t, "picker_orders"))
	require.Zero(t, s.count(t, "picker_phones"))
	for _, typ := range []string{"ITEM_ADD", "ITEM_REPLACE", "ITEM_SOFT_DELETE", "ITEM_PICKED"} {
		require.Equal(t, 1.0, s.metric(t, "eot_picker_events_total", events(typ, "ignored")), typ)
	}
	s.requireMetric(t, 2.0, "eot_picker_events_total", events("unknown", "ignored")) // the label set stays bounded
}

// TestWorkerUsesJobTimeWhenCreatedAtIsMissing: river_job.created_at (the
// same on every retry) stands in, and the metric counts it.
func TestWorkerUsesJobTimeWhenCreatedAtIsMissing(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	var id int64
	require.NoError(t, s.DB.Get(&id, `INSERT INTO river_job (kind, queue, args, created_at)
		VALUES ($1, $1, $2, '2025-02-03T04:05:06.789Z') RETURNING id`, pickeringest.Kind,
		eventJSON(t, withField(withField(statusChange("o-1"), "created_at", nil), "order_status", "new"))))
	var id2 int64
	require.NoError(t, s.DB.Get(&id2, `INSERT INTO river_job (kind, queue, args)
		VALUES ($1, $1, $2) RETURNING id`, pickeringest.Kind,
		`{"event_type":"STATUS_CHANGE","order_nr":"o-2","order_status":"new","place_id":"40","created_at":null}`))
	require.Equal(t, "completed", s.waitJob(t, id).State)
	require.Equal(t, "completed", s.waitJob(t, id2).State)
	p, ok := s.payload(t, "o-1")
	require.True(t, ok)
	require.JSONEq(t, `{"picker_id":"p-1","status":"new","status_history":{"new_at":"2025-02-03T04:05:06.789Z"}}`, p)
	j := s.job(t, id2)
	p, _ = s.payload(t, "o-2")
	require.JSONEq(t, `{"status":"new","status_history":{"new_at":"`+j.CreatedAt.UTC().Format(time.RFC3339Nano)+`"}}`, p)
	s.requireMetric(t, 2.0, "eot_picker_events_created_at_missing_total", nil)
}

// TestWorkerCrashBeforeCommit: the rows and the job's completion commit
// together. A worker whose connection dies after the upsert and the
// completion but before the commit leaves neither; the retry gives the
// row the event describes.
func TestWorkerCrashBeforeCommit(t *testing.T) {
	t.Parallel()
	inTx := make(chan int, 1) // the worker's backend pid, while it waits
	release := make(chan struct{})
	var attempts atomic.Int32
	s := start(t, nil, pickeringest.WithHooks(func(ctx context.Context, tx *sqlx.Tx, _ int64, attempt int) error {
		attempts.Add(1)
		if attempt > 1 {
			return nil
		}
		var pid int
		if err := tx.GetContext(ctx, &pid, `SELECT pg_backend_pid()`); err != nil {
			return err
		}
		inTx <- pid
		<-release
		return nil
	}, nil))
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the app stops, should the test fail half-way

	id := s.insertSQL(t, eventJSON(t, statusChange("o-1")))
	var pid int
	select {
	case pid = <-inTx:
	case <-time.After(15 * time.Second):
		t.Fatal("the worker never reached its commit")
	}
	// Inside the transaction both writes are done; outside, neither shows.
	require.Equal(t, "running", s.job(t, id).State)
	_, ok := s.payload(t, "o-1")
	require.False(t, ok)

	var killed bool
	require.NoError(t, s.DB.Get(&killed, `SELECT pg_terminate_backend($1)`, pid))
	require.True(t, killed)
	unblock()

	j := s.failedOnce(t, id)
	require.Contains(t, j.errorTexts(t)[0], "commit")
	t.Logf("attempt 1 failed: %s", j.errorTexts(t)[0])
	_, ok = s.payload(t, "o-1")
	require.False(t, ok, "the upsert rolled back with the completion")
	s.requireMetric(t, 1.0, "eot_picker_events_total", events("STATUS_CHANGE", "retried"))

	_, err := s.Client.JobRetry(context.Background(), id) // don't wait for the backoff
	require.NoError(t, err)
	j = s.waitJobWhere(t, id, "completed", func(j jobRow) bool { return j.State == "completed" })
	require.Equal(t, 2, j.Attempt)
	require.EqualValues(t, 2, attempts.Load())
	p, ok := s.payload(t, "o-1")
	require.True(t, ok)
	require.JSONEq(t, `{"picker_id":"p-1","status":"picking","status_history":{"picking_at":"2025-03-01T10:00:00Z"}}`, p)
}

// TestWorkerFailureBeforeCommitRollsBackBoth: an error (not a kill) between
// the writes and the commit; the job is retried and applied once.
func TestWorkerFailureBeforeCommitRollsBackBoth(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	failing.Store(true)
	s := start(t, nil, pickeringest.WithHooks(func(context.Context, *sqlx.Tx, int64, int) error {
		if failing.Load() {
			return errors.New("simulated crash before commit")
		}
		return nil
	}, nil))
	expires := time.Now().Add(time.Hour)
	id := s.insertSQL(t, eventJSON(t, phoneReady("o-1", expires)))
	j := s.failedOnce(t, id)
	require.Equal(t, []string{"simulated crash before commit"}, j.errorTexts(t))
	require.Zero(t, s.count(t, "picker_phones"))

	failing.Store(false)
	_, err := s.Client.JobRetry(context.Background(), id)
	require.NoError(t, err)
	s.waitJobWhere(t, id, "completed", func(j jobRow) bool { return j.State == "completed" })
	require.Equal(t, 1, s.count(t, "picker_phones"))
	s.requireMetric(t, 1.0, "eot_picker_events_total", events("PICKER_PHONE_FORWARDING_READY", "applied"))
	s.requireMetric(t, 1.0, "eot_picker_events_total", events("PICKER_PHONE_FORWARDING_READY", "retried"))
}

// TestWorkerCancelsEventsFromTheFuture: an event time more than 5 minutes
// after the database's now() would win the ordering rule against every
// real event and freeze the order (DESIGN §3.1): it is cancelled, naming
// the value as sent, and writes nothing; skew up to 5 minutes is applied.
func TestWorkerCancelsEventsFromTheFuture(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	var dbNow time.Time
	require.NoError(t, s.DB.Get(&dbNow, `SELECT now()`))
	expires := dbNow.Add(2 * time.Hour)
	dayAhead := dbNow.Add(24 * time.Hour).Format("2006-01-02T15:04:05.999999-07:00")
	cases := []struct{ args, sent string }{
		{eventJSON(t, withField(statusChange("f-1"), "created_at", "2099-01-01T00:00:00+03:00")), "2099-01-01T00:00:00+03:00"},
		{eventJSON(t, withField(phoneReady("f-1", expires), "created_at", dayAhead)), dayAhead},
		{eventJSON(t, withField(statusChange("f-2"), "created_at", dayAhead)), dayAhead},
	}
	ids := make([]int64, len(cases))
	for i, c := range cases {
		ids[i] = s.insertSQL(t, c.args)
	}
	for i, c := range cases {
		j := s.waitJob(t, ids[i])
		want := `invalid created_at: in the future (got "` + c.sent + `")`
		require.Equal(t, "cancelled", j.State, want)
		require.Equal(t, []string{"JobCancelError: " + want}, j.errorTexts(t))
	}
	require.Zero(t, s.count(t, "picker_orders"))
	require.Zero(t, s.count(t, "picker_phones"))
	s.requireMetric(t, 2.0, "eot_picker_events_total", events("STATUS_CHANGE", "cancelled"))
	s.requireMetric(t, 1.0, "eot_picker_events_total", events("PICKER_PHONE_FORWARDING_READY", "cancelled"))

	// A producer's clock a little ahead is accepted as sent.
	skewed := dbNow.Add(2 * time.Minute).UTC().Truncate(time.Second)
	for _, ev := range []map[string]any{statusChange("s-1"), phoneReady("s-1", expires)} {
		id := s.insertSQL(t, eventJSON(t, withField(ev, "created_at", skewed.Format(time.RFC3339))))
		require.Equal(t, "completed", s.waitJob(t, id).State)
	}
	p, ok := s.payload(t, "s-1")
	require.True(t, ok)
	require.JSONEq(t, `{"picker_id":"p-1","status":"picking","status_history":{"picking_at":"`+skewed.Format(time.RFC3339)+`"}}`, p)
	require.Equal(t, 1, s.count(t, "picker_phones"))
}
