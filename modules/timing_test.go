package modules_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/cache"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// The model-based timing test (issue 13): random picker events for a few
// orders per seed — random created_at with duplicates and equal times, two
// pickers and ids that contain ':', phones replacing phones — are delivered
// in random batches (one transaction each) to two service instances on one
// database, while the instances' Redis writes fail at random. Once the
// queues have drained and PHONE_CACHE_TTL has passed, every answer on both
// instances must equal what a pure function of the event set says: the
// card and the phone on it. Seeds come from TIMING_SEEDS (comma-separated)
// or are drawn and logged, so a failure can be replayed.

// modelPhoneTTL is PHONE_CACHE_TTL in this test: the bound after which a
// replaced phone must be gone from every answer (DESIGN §6).
const modelPhoneTTL = 3 * time.Second

// modelEvent is one picker event as procaas sends it.
type modelEvent struct {
	Type      tracking.EventType
	OrderNr   string
	Status    tracking.PickerStatus
	PickerID  string
	CreatedAt time.Time
	Phone     string
	ExpiresAt time.Time
}

func (e modelEvent) json() string {
	m := map[string]any{
		"event_type": e.Type, "order_nr": e.OrderNr, "order_status": e.Status,
		"place_id": "40", "picker_id": e.PickerID, "created_at": e.CreatedAt.Format(time.RFC3339Nano),
	}
	if e.Type == tracking.EventPickerPhoneForwardingReady {
		m["customer_picker_phone_forwarding"] = map[string]any{"phone": e.Phone, "expires_at": e.ExpiresAt.Format(time.RFC3339Nano)}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// modelCard is what one order shows: the tracked status and the phone on
// its call-the-picker button ("" when none).
type modelCard struct {
	Status string
	Phone  string
}

// expectCards is the pure function of the event set: DESIGN §3.1's
// ordering rules and §4.2's cards, for retail orders in place_confirmed
// with both experiments on.
func expectCards(events []modelEvent, now time.Time) map[string]modelCard {
	type status struct {
		at     time.Time
		status tracking.PickerStatus
		picker string
		seen   map[tracking.PickerStatus]bool
	}
	type phoneKey struct{ order, picker string }
	statuses := map[string]*status{}
	phones := map[phoneKey]modelEvent{}
	orders := map[string]bool{}
	for _, e := range events {
		orders[e.OrderNr] = true
		switch e.Type {
		case tracking.EventStatusChange:
			s := statuses[e.OrderNr]
			if s == nil {
				s = &status{seen: map[tracking.PickerStatus]bool{}}
				statuses[e.OrderNr] = s
			}
			s.seen[e.Status] = true
			newer := e.CreatedAt.After(s.at) ||
				e.CreatedAt.Equal(s.at) && (e.Status.Rank() > s.status.Rank() ||
					e.Status.Rank() == s.status.Rank() && e.PickerID > s.picker)
			if s.status == "" || newer {
				s.at, s.status, s.picker = e.CreatedAt, e.Status, e.PickerID
			}
		case tracking.EventPickerPhoneForwardingReady:
			k := phoneKey{e.OrderNr, e.PickerID}
			cur, ok := phones[k]
			newer := e.ExpiresAt.After(cur.ExpiresAt) ||
				e.ExpiresAt.Equal(cur.ExpiresAt) && (e.CreatedAt.After(cur.CreatedAt) ||
					e.CreatedAt.Equal(cur.CreatedAt) && e.Phone > cur.Phone)
			if !ok || newer {
				phones[k] = e
			}
		}
	}
	out := map[string]modelCard{}
	for nr := range orders {
		s := statuses[nr]
		switch {
		case s == nil, s.status == tracking.PickerCancelled, s.status == tracking.PickerComplete, s.seen[tracking.PickerPaid]:
			out[nr] = modelCard{Status: "place_confirmed"}
		case s.seen[tracking.PickerPickedUp]:
			out[nr] = modelCard{Status: "picker_paying"}
		default:
			p, ok := phones[phoneKey{nr, s.picker}]
			if s.seen[tracking.PickerPicking] && ok && p.ExpiresAt.After(now) {
				out[nr] = modelCard{Status: "picker_call", Phone: tracking.DisplayPhone(p.Phone)}
			} else {
				out[nr] = modelCard{Status: "picker_contact_us"}
			}
		}
	}
	return out
}

// genEvents draws one seed's events. Orders "<p>a" and "<p>a:1" with
// pickers "1:2" and "2" would share one cache key if the key only joined
// the ids with ':'.
func genEvents(rng *rand.Rand, prefix string, base time.Time) []modelEvent {
	orders := []string{prefix + "a", prefix + "a:1", prefix + "b", prefix + "c"}
	pickers := map[string][]string{
		prefix + "a": {"1:2", "1"}, prefix + "a:1": {"2", "1"},
		prefix + "b": {"1", "2"}, prefix + "c": {"1", "2"},
	}
	// Mostly picking, so most orders end on the card whose phone is at
	// stake; the rest exercise the other cards and the tie rule.
	statuses := []tracking.PickerStatus{
		tracking.PickerNew, tracking.PickerAssigned, tracking.PickerPicking, tracking.PickerPicking,
		tracking.PickerPicking, tracking.PickerPicking, tracking.PickerPicking, tracking.PickerPicking,
		tracking.PickerPickedUp, tracking.PickerPaid, tracking.PickerCancelled, tracking.PickerDispatching,
	}
	phoneNumbers := []string{"+79990000001", "+79990000002", "+79990000003"}
	expiries := []time.Duration{-5 * time.Minute, 30 * time.Minute, 60 * time.Minute, 60 * time.Minute}
	// A few distinct instants per order, so equal times are common.
	at := func() time.Time { return base.Add(time.Duration(rng.IntN(6)) * time.Second) }
	var out []modelEvent
	for _, nr := range orders {
		for range 1 + rng.IntN(5) {
			out = append(out, modelEvent{Type: tracking.EventStatusChange, OrderNr: nr,
				Status: statuses[rng.IntN(len(statuses))], PickerID: pickers[nr][rng.IntN(2)], CreatedAt: at()})
		}
		for range rng.IntN(8) {
			out = append(out, modelEvent{Type: tracking.EventPickerPhoneForwardingReady, OrderNr: nr,
				Status: tracking.PickerPicking, PickerID: pickers[nr][rng.IntN(2)], CreatedAt: at(),
				Phone: phoneNumbers[rng.IntN(len(phoneNumbers))], ExpiresAt: base.Add(expiries[rng.IntN(len(expiries))])})
		}
	}
	for range len(out) / 5 { // duplicates: redelivery
		if len(out) > 0 {
			out = append(out, out[rng.IntN(len(out))])
		}
	}
	return out
}

// flakyWrites fails Redis writes (SET, SETNX, EVAL…, DEL) at the given
// rate; reads pass, so a stale entry stays readable.
type flakyWrites struct {
	mu   sync.Mutex
	rng  *rand.Rand
	rate float64
}

func (f *flakyWrites) fail(cmds ...redis.Cmder) bool {
	for _, c := range cmds {
		switch strings.ToLower(c.Name()) {
		case "set", "setnx", "setex", "psetex", "eval", "evalsha", "evalro", "del", "unlink", "fcall":
			f.mu.Lock()
			bad := f.rng.Float64() < f.rate
			f.mu.Unlock()
			if bad {
				return true
			}
		}
	}
	return false
}

var errInjected = errors.New("injected redis write failure")

func (f *flakyWrites) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *flakyWrites) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.fail(cmd) {
			cmd.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, cmd)
	}
}
func (f *flakyWrites) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if f.fail(cmds...) {
			for _, c := range cmds {
				c.SetErr(errInjected)
			}
			return errInjected
		}
		return next(ctx, cmds)
	}
}

func modelSeeds(t *testing.T) []uint64 {
	if s := os.Getenv("TIMING_SEEDS"); s != "" {
		var out []uint64
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			require.NoError(t, err, "TIMING_SEEDS")
			out = append(out, v)
		}
		return out
	}
	out := make([]uint64, 6)
	for i := range out {
		out[i] = rand.Uint64() % 1_000_000
	}
	return out
}

// deliver inserts the events as River jobs in random batches, each batch
// one transaction (as a producer's group insert), waking the workers.
func deliver(t *testing.T, db *sqlx.DB, rng *rand.Rand, events []modelEvent) {
	t.Helper()
	for len(events) > 0 {
		n := min(len(events), 1+rng.IntN(8))
		tx, err := db.Beginx()
		require.NoError(t, err)
		for _, e := range events[:n] {
			_, err = tx.Exec(`INSERT INTO river_job (kind, args, queue) VALUES ($1, $2, $1)`, "eats_orders_tracking_picker_orders", e.json())
			require.NoError(t, err)
		}
		_, err = tx.Exec(`SELECT pg_notify(current_schema() || '.river_insert', '{"queue":"eats_orders_tracking_picker_orders"}')`)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		events = events[n:]
		if rng.IntN(3) == 0 {
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond) // let the two replicas interleave
		}
	}
}

func TestTimingModel(t *testing.T) {
	t.Parallel()
	seeds := modelSeeds(t)
	t.Logf("seeds %v (replay: TIMING_SEEDS=%s)", seeds, strings.Trim(strings.Join(strings.Fields(fmt.Sprint(seeds)), ","), "[]"))

	env := pgtest.Env(t, map[string]string{"PHONE_CACHE_TTL": modelPhoneTTL.String(), "LOG_LEVEL": "warn"})
	flaky := func(seed uint64) fx.Option {
		return fx.Invoke(func(r *cache.Redis) {
			if r.Enabled() {
				r.Client.AddHook(&flakyWrites{rng: rand.New(rand.NewPCG(seed, 1)), rate: 0.3})
			}
		})
	}
	a := apptest.StartEnv(t, env, flaky(seeds[0]))
	b := apptest.StartEnv(t, env, flaky(seeds[0]+1))

	base := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	var all []modelEvent
	eaters := map[string]string{} // order → eater
	for _, seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 2))
		eater := fmt.Sprintf("model-%d", seed)
		evs := genEvents(rng, fmt.Sprintf("m%d-", seed), base)
		for _, nr := range []string{"a", "a:1", "b", "c"} {
			nr = fmt.Sprintf("m%d-%s", seed, nr)
			eaters[nr] = eater
			insertRetailOrder(t, a.DB, nr, eater, base)
		}
		all = append(all, evs...)
	}
	rng := rand.New(rand.NewPCG(seeds[0], 3))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	t.Logf("%d events for %d orders", len(all), len(eaters))
	deliver(t, a.DB, rng, all)

	pgtest.Eventually(t, time.Minute, func() bool {
		var open int
		require.NoError(t, a.DB.Get(&open, `SELECT count(*) FROM river_job WHERE queue = 'eats_orders_tracking_picker_orders' AND finalized_at IS NULL`))
		return open == 0
	}, "the picker queue drains")
	var failed int
	require.NoError(t, a.DB.Get(&failed, `SELECT count(*) FROM river_job WHERE queue = 'eats_orders_tracking_picker_orders' AND state <> 'completed'`))
	require.Zero(t, failed, "every event is valid and applied")
	// The bound under test: PHONE_CACHE_TTL after the last completion
	// (plus the change feed's second) every answer is the model's.
	time.Sleep(modelPhoneTTL + 1500*time.Millisecond)

	want := expectCards(all, time.Now())
	cards := map[string]int{}
	for _, c := range want {
		cards[c.Status]++
	}
	t.Logf("expected cards: %v", cards)
	for _, inst := range []*apptest.App{a, b} {
		got := map[string]modelCard{}
		for _, eater := range uniqueValues(eaters) {
			for nr, c := range trackedCards(t, inst, eater) {
				got[nr] = c
			}
		}
		for nr, w := range want {
			require.Equal(t, w, got[nr], "order %s on %s (eater %s); events:\n%s", nr, inst.URL, eaters[nr], eventsOf(all, nr))
		}
	}
}

func insertRetailOrder(t *testing.T, db *sqlx.DB, nr, eater string, at time.Time) {
	t.Helper()
	payload := `{"status":"place_confirmed","flow_type":"retail","place":{"id":"40","name":"Shop"}}`
	_, err := db.Exec(`INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at) VALUES ($1, $2, $3, $4, $4)`,
		nr, eater, payload, at)
	require.NoError(t, err)
}

func uniqueValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func trackedCards(t *testing.T, a *apptest.App, eater string) map[string]modelCard {
	t.Helper()
	code, body := a.Get(t, "/eats/v1/eats-orders-tracking/v1/tracking", map[string]string{"X-Eats-User": "user_id=" + eater})
	require.Equal(t, http.StatusOK, code, string(body))
	var r struct {
		Payload struct {
			TrackedOrders []struct {
				Order   struct{ OrderNr string }
				Status  string
				Actions []struct {
					Payload struct {
						ContactType string `json:"contact_type"`
						Phone       string `json:"phone"`
					} `json:"payload"`
				} `json:"actions"`
			} `json:"trackedOrders"`
		} `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(body, &r))
	out := map[string]modelCard{}
	for _, o := range r.Payload.TrackedOrders {
		c := modelCard{Status: o.Status}
		for _, act := range o.Actions {
			if act.Payload.ContactType == "picker" {
				c.Phone = act.Payload.Phone
			}
		}
		out[o.Order.OrderNr] = c
	}
	return out
}

func eventsOf(all []modelEvent, nr string) string {
	var b strings.Builder
	for _, e := range all {
		if e.OrderNr == nr {
			fmt.Fprintf(&b, "  %s %s picker=%q at=%s phone=%s exp=%s\n", e.Type, e.Status, e.PickerID,
				e.CreatedAt.Format("15:04:05"), e.Phone, e.ExpiresAt.Format("15:04:05"))
		}
	}
	return b.String()
}
