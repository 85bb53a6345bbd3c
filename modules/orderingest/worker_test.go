package orderingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

type testBundle struct {
	db       *sqlx.DB
	client   *queue.Client
	registry *prometheus.Registry
}

// setup runs order-ingest with the platform pieces it needs (Postgres,
// River, metrics) on a fresh database; it is also the module's fxtest
// start/stop smoke test.
func setup(t *testing.T) *testBundle {
	t.Helper()
	return start(t, "warn", nil)
}

// start is setup at logLevel, with the service's log output going to logs
// (nil: discarded).
func start(t *testing.T, logLevel string, logs io.Writer) *testBundle {
	t.Helper()
	var b testBundle
	app := fxtest.New(t,
		pgtest.Inputs(pgtest.Env(t, map[string]string{"REDIS_URL": "", "LOG_LEVEL": logLevel, "SHUTDOWN_TIMEOUT": "5s"}), logs),
		platform.Module,
		Module,
		fx.Populate(&b.db, &b.client, &b.registry),
	)
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	return &b
}

func event(orderNr, eater string, status tracking.OrderStatus, at time.Time) OrderArgs {
	return OrderArgs{OrderNr: orderNr, EaterID: eater, FlowType: tracking.FlowRetail, Status: status,
		Place: &Place{ID: "40", Name: "Shop", Phone: "+79990000040"}, CreatedAt: at.Format(time.RFC3339Nano)}
}

// awaitJob polls the job until it reaches a final state (or retryable).
func (b *testBundle) awaitJob(t *testing.T, id int64, states ...rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	var row *rivertype.JobRow
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		row, err = b.client.JobGet(context.Background(), id)
		require.NoError(t, err)
		for _, s := range states {
			if row.State == s {
				return row
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d is %s, want one of %v; errors %v", id, row.State, states, row.Errors)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *testBundle) insert(t *testing.T, args OrderArgs) int64 {
	t.Helper()
	res, err := b.client.Insert(context.Background(), args, nil)
	require.NoError(t, err)
	return res.Job.ID
}

type orderRow struct {
	EaterID      string    `db:"eater_id"`
	Payload      string    `db:"payload"`
	EventAt      time.Time `db:"event_at"`
	FirstEventAt time.Time `db:"first_event_at"`
	UpdatedAt    time.Time `db:"updated_at"`
}

func getRow(t *testing.T, db sqlx.QueryerContext, orderNr string) (orderRow, bool) {
	t.Helper()
	var r orderRow
	err := sqlx.GetContext(context.Background(), db, &r, `SELECT eater_id, payload::text AS payload, event_at, first_event_at, updated_at FROM orders WHERE order_nr = $1`, orderNr)
	if err != nil && strings.Contains(err.Error(), "no rows") {
		return r, false
	}
	require.NoError(t, err)
	r.EventAt, r.FirstEventAt = r.EventAt.UTC(), r.FirstEventAt.UTC()
	return r, true
}

func TestWorkerAppliesSnapshotsLatestWins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t0 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

	taken := event("o1", "e1", tracking.OrderTaken, t0.Add(2*time.Minute))
	taken.Courier = &Courier{Name: "Ivan", Phone: "+7 999 000-00-01"}
	taken.ETA = t0.Add(30 * time.Minute).Format(time.RFC3339)
	b.awaitJob(t, b.insert(t, taken), rivertype.JobStateCompleted)
	row, ok := getRow(t, b.db, "o1")
	require.True(t, ok)
	require.JSONEq(t, `{"flow_type":"retail","status":"taken","place":{"id":"40","name":"Shop","phone":"+79990000040"},
		"courier":{"name":"Ivan","phone":"+79990000001"},"eta":"2026-01-02T10:30:00Z"}`, row.Payload)
	require.Equal(t, t0.Add(2*time.Minute), row.EventAt)

	// An older event arrives late: the snapshot stays, createdAt moves back.
	b.awaitJob(t, b.insert(t, event("o1", "e1", tracking.OrderCreated, t0)), rivertype.JobStateCompleted)
	row2, _ := getRow(t, b.db, "o1")
	require.Equal(t, row.Payload, row2.Payload)
	require.Equal(t, t0, row2.FirstEventAt)
	require.Equal(t, t0.Add(2*time.Minute), row2.EventAt)

	// A duplicate changes nothing, not even updated_at.
	b.awaitJob(t, b.insert(t, taken), rivertype.JobStateCompleted)
	row3, _ := getRow(t, b.db, "o1")
	require.Equal(t, row2, row3)

	// A newer snapshot without courier and eta clears them.
	b.awaitJob(t, b.insert(t, event("o1", "e1", tracking.OrderDelivered, t0.Add(40*time.Minute))), rivertype.JobStateCompleted)
	row4, _ := getRow(t, b.db, "o1")
	require.JSONEq(t, `{"flow_type":"retail","status":"delivered","place":{"id":"40","name":"Shop","phone":"+79990000040"}}`, row4.Payload)
	require.Equal(t, t0, row4.FirstEventAt)
	require.True(t, row4.UpdatedAt.After(row3.UpdatedAt) || row4.UpdatedAt.Equal(row3.UpdatedAt))

	require.Equal(t, 2.0, counter(t, b, "applied"))
	require.Equal(t, 1.0, counter(t, b, "reordered"))
	require.Equal(t, 1.0, counter(t, b, "stale"))
}

// The worker's log lines carry the module's name: the logger is scoped by
// the fx.Decorate in module.go, not by the worker.
func TestWorkerLogsCarryTheModule(t *testing.T) {
	t.Parallel()
	logs := &pgtest.SafeBuffer{}
	b := start(t, "debug", logs)
	b.awaitJob(t, b.insert(t, event("log-1", "e1", tracking.OrderCreated, time.Now())), rivertype.JobStateCompleted)
	applied := logs.Lines("order event applied")
	require.Len(t, applied, 1)
	require.Contains(t, applied[0], "module=order-ingest")
}

// counter reads eot_order_ingest_events_total{outcome} from the registry.
func counter(t *testing.T, b *testBundle, outcome string) float64 {
	t.Helper()
	mfs, err := b.registry.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "eot_order_ingest_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no eot_order_ingest_events_total{outcome=%q}", outcome)
	return 0
}

func TestWorkerCancelsInvalidInputNamingTheField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// A value Go accepts and Postgres refuses (SQLSTATE class 22) can never
	// succeed on retry either.
	_, err := b.db.Exec(`
CREATE FUNCTION reject_x5() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'value rejected' USING ERRCODE = '22023'; END $$;
CREATE TRIGGER reject_x5 BEFORE INSERT ON orders FOR EACH ROW
WHEN (NEW.order_nr = 'x5') EXECUTE FUNCTION reject_x5();`)
	require.NoError(t, err)
	tomorrow := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	for name, tc := range map[string]struct {
		args string
		want string
	}{
		// DESIGN §3.1: more than 5 minutes after PostgreSQL's now() would
		// win the ordering rule against every real event.
		"a day ahead": {`{"order_nr":"x6","eater_id":"e","flow_type":"native","status":"created","place":{"id":"1","name":"P"},"created_at":"` + tomorrow + `"}`,
			`invalid created_at: in the future (got "` + tomorrow + `")`},
		"year 2099": {`{"order_nr":"x7","eater_id":"e","flow_type":"native","status":"created","place":{"id":"1","name":"P"},"created_at":"2099-01-02T03:04:05+03:00"}`,
			`invalid created_at: in the future (got "2099-01-02T03:04:05+03:00")`},
		"unknown status": {`{"order_nr":"x1","eater_id":"e","flow_type":"native","status":"eaten","place":{"id":"1","name":"P"},"created_at":"2026-01-02T03:04:05Z"}`,
			`invalid status: unknown order status (got "eaten")`},
		"wrong JSON type": {`{"order_nr":"x2","eater_id":"e","flow_type":"native","status":"created","place":{"id":40,"name":"P"},"created_at":"2026-01-02T03:04:05Z"}`,
			`invalid place.id: must be a string (got "number")`},
		"masked phone": {`{"order_nr":"x3","eater_id":"e","flow_type":"native","status":"taken","place":{"id":"1","name":"P"},"courier":{"name":"I","phone":"+7999123456x"},"created_at":"2026-01-02T03:04:05Z"}`,
			`invalid courier.phone: not a phone number (got "+******3456x")`},
		"missing created_at": {`{"order_nr":"x4","eater_id":"e","flow_type":"native","status":"created","place":{"id":"1","name":"P"}}`,
			`invalid created_at: required (got "")`},
		"data error in SQL": {`{"order_nr":"x5","eater_id":"e","flow_type":"native","status":"created","place":{"id":"1","name":"P"},"created_at":"2026-01-02T03:04:05Z"}`,
			`invalid input: apply order event x5: upsert order x5: pq: value rejected (22023)`},
	} {
		// A producer inserting plain SQL, as DESIGN §8 describes.
		var id int64
		tx, err := b.db.BeginTxx(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, tx.GetContext(ctx, &id, `INSERT INTO river_job (kind, args, queue) VALUES ($1, $2, $1) RETURNING id`, Kind, tc.args))
		_, err = tx.ExecContext(ctx, `SELECT pg_notify(current_schema() || '.river_insert', '{"queue":"`+Kind+`"}')`)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		row := b.awaitJob(t, id, rivertype.JobStateCancelled, rivertype.JobStateCompleted)
		require.Equal(t, rivertype.JobStateCancelled, row.State, name)
		require.NotEmpty(t, row.Errors, name)
		require.Contains(t, row.Errors[len(row.Errors)-1].Error, tc.want, name)
		require.NotContains(t, row.Errors[len(row.Errors)-1].Error, "+7999123456", name)
	}
	var n int
	require.NoError(t, b.db.Get(&n, `SELECT count(*) FROM orders`))
	require.Zero(t, n, "a cancelled event writes nothing")
	require.Equal(t, 7.0, counter(t, b, "invalid"))
}

// TestWorkerAcceptsSkewUpToFiveMinutes: a producer's clock a little ahead
// is accepted as sent (DESIGN §3.1), and a refused future event leaves the
// order free for the real ones that follow.
func TestWorkerAcceptsSkewUpToFiveMinutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ahead := time.Now().Add(4 * time.Minute)
	id := b.insert(t, event("s1", "e", tracking.OrderCreated, ahead))
	require.Equal(t, rivertype.JobStateCompleted, b.awaitJob(t, id, rivertype.JobStateCompleted, rivertype.JobStateCancelled).State)

	future := b.insert(t, event("s2", "e", tracking.OrderTaken, time.Now().Add(time.Hour)))
	require.Equal(t, rivertype.JobStateCancelled, b.awaitJob(t, future, rivertype.JobStateCompleted, rivertype.JobStateCancelled).State)
	real := b.insert(t, event("s2", "e", tracking.OrderCreated, time.Now()))
	require.Equal(t, rivertype.JobStateCompleted, b.awaitJob(t, real, rivertype.JobStateCompleted, rivertype.JobStateCancelled).State)
	var status string
	require.NoError(t, b.db.GetContext(ctx, &status, `SELECT payload->>'status' FROM orders WHERE order_nr = 's2'`))
	require.Equal(t, "created", status)
}

// TestWorkerRetriesAndWritesRowWithCompletion: when completing the job fails
// the row is rolled back with it, the job is retried, and the retry writes
// the same row.
func TestWorkerRetriesAndWritesRowWithCompletion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.db.Exec(`
CREATE FUNCTION fail_completion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'injected failure'; END $$;
CREATE TRIGGER fail_completion BEFORE UPDATE ON river_job FOR EACH ROW
WHEN (NEW.kind = '` + Kind + `' AND NEW.state = 'completed') EXECUTE FUNCTION fail_completion();`)
	require.NoError(t, err)

	id := b.insert(t, event("r1", "e1", tracking.OrderPlaceConfirmed, time.Now()))
	row := b.awaitJob(t, id, rivertype.JobStateRetryable, rivertype.JobStateCompleted, rivertype.JobStateCancelled)
	require.Equal(t, rivertype.JobStateRetryable, row.State)
	require.Contains(t, row.Errors[0].Error, "injected failure")
	_, ok := getRow(t, b.db, "r1")
	require.False(t, ok, "the row must roll back with the failed completion")

	_, err = b.db.Exec(`DROP TRIGGER fail_completion ON river_job`)
	require.NoError(t, err)
	_, err = b.client.JobRetry(ctx, id)
	require.NoError(t, err)
	b.awaitJob(t, id, rivertype.JobStateCompleted)
	r, ok := getRow(t, b.db, "r1")
	require.True(t, ok)
	require.Contains(t, r.Payload, `"place_confirmed"`)
}

// TestAnyDeliveryOrderGivesTheSameRow is the property test: random sets of
// events for one order (few distinct times, so ties are common), applied
// in several random orders with duplicates, end in one row, whose snapshot
// is the latest event's (ties: the status later in the list) and whose
// first_event_at is the earliest event's time.
func TestAnyDeliveryOrderGivesTheSameRow(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d", seed)
	t0 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

	for trial := range 150 {
		n := 1 + rng.IntN(6)
		events := make([]snapshot, n)
		for i := range events {
			a := event(fmt.Sprintf("t%d", trial), []string{"e1", "e2"}[rng.IntN(2)],
				tracking.OrderStatuses[rng.IntN(len(tracking.OrderStatuses))], t0.Add(time.Duration(rng.IntN(3))*time.Minute))
			if rng.IntN(2) == 0 {
				a.Courier = &Courier{Name: []string{"A", "B"}[rng.IntN(2)]}
			}
			if rng.IntN(2) == 0 {
				a.ETA = t0.Add(time.Duration(rng.IntN(3)) * time.Hour).Format(time.RFC3339)
			}
			s, err := a.snapshot()
			require.NoError(t, err)
			events[i] = s
		}
		var want orderRow
		for perm := range 4 {
			order := rng.Perm(n)
			order = append(order, rng.IntN(n)) // a redelivery
			orderNr := fmt.Sprintf("t%d-p%d", trial, perm)
			for _, i := range order {
				s := events[i]
				s.OrderNr = orderNr
				_, err := upsert(ctx, db, s)
				require.NoError(t, err)
			}
			got, ok := getRow(t, db, orderNr)
			require.True(t, ok)
			got.UpdatedAt = time.Time{}
			if perm == 0 {
				want = got
				checkWinner(t, events, got)
				continue
			}
			require.Equal(t, want, got, "trial %d permutation %v (seed %d)", trial, order, seed)
		}
	}
}

func checkWinner(t *testing.T, events []snapshot, got orderRow) {
	t.Helper()
	latest, first := events[0].EventAt, events[0].EventAt
	for _, e := range events {
		if e.EventAt.After(latest) {
			latest = e.EventAt
		}
		if e.EventAt.Before(first) {
			first = e.EventAt
		}
	}
	rank := -1
	for _, e := range events {
		if e.EventAt.Equal(latest) && e.Payload.Status.Rank() > rank {
			rank = e.Payload.Status.Rank()
		}
	}
	var p payload
	require.NoError(t, json.Unmarshal([]byte(got.Payload), &p))
	require.Equal(t, latest, got.EventAt)
	require.Equal(t, first, got.FirstEventAt)
	require.Equal(t, tracking.OrderStatuses[rank], p.Status)
}
