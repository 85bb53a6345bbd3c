package pickeringest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/platform/cache"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// e2ePhoneTTL is PHONE_CACHE_TTL in these tests.
const e2ePhoneTTL = 2 * time.Second

const (
	loserPhone  = "+79990000030" // expires in 30 min
	winnerPhone = "+79990000060" // expires in 60 min: the winner (DESIGN §3.1)
)

// phoneWrites is a go-redis hook on the service's client: the cache
// writes that carry phone fail fails, those that carry slow are delayed.
type phoneWrites struct {
	fail  string        // phone whose cache writes fail
	slow  string        // phone whose cache writes are delayed
	delay time.Duration // how long
}

var errInjectedWrite = errors.New("injected redis write failure")

// carries reports whether a write command carries phone.
func carries(cmd redis.Cmder, phone string) bool {
	switch strings.ToLower(cmd.Name()) {
	case "set", "setnx", "eval", "evalsha":
	default:
		return false
	}
	for _, a := range cmd.Args() {
		var s string
		switch v := a.(type) {
		case string:
			s = v
		case []byte:
			s = string(v)
		}
		if phone != "" && strings.Contains(s, phone) {
			return true
		}
	}
	return false
}

func (w *phoneWrites) before(ctx context.Context, cmds ...redis.Cmder) error {
	for _, c := range cmds {
		if carries(c, w.fail) {
			return errInjectedWrite
		}
		if carries(c, w.slow) {
			select {
			case <-time.After(w.delay):
			case <-ctx.Done():
			}
		}
	}
	return nil
}

func (w *phoneWrites) DialHook(next redis.DialHook) redis.DialHook { return next }
func (w *phoneWrites) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := w.before(ctx, cmd); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}
func (w *phoneWrites) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := w.before(ctx, cmds...); err != nil {
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}

// TestReplacedPhoneLeavesEveryAnswerWithinTTL is issue 13's first report:
// twelve orders in picking, each polled once (so both replicas' tracking
// caches hold them); then, per order, two PICKER_PHONE_FORWARDING_READY
// for the same (order, picker) inserted in one transaction, expiring in 30
// and 60 min. Within PHONE_CACHE_TTL of both jobs completing, every answer
// of both replicas shows the 60 min phone — also when the loser's cache
// write lands last, and when the winner's cache write fails.
func TestReplacedPhoneLeavesEveryAnswerWithinTTL(t *testing.T) {
	t.Parallel()
	for name, hook := range map[string]*phoneWrites{
		"LoserWrittenLast": {slow: loserPhone, delay: 300 * time.Millisecond},
		"WinnerWriteFails": {fail: winnerPhone},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := pgtest.Env(t, map[string]string{"PHONE_CACHE_TTL": e2ePhoneTTL.String(), "DATABASE_MAX_CONNS": "8"})
			withHook := fx.Invoke(func(r *cache.Redis) {
				require.True(t, r.Enabled())
				r.Client.AddHook(hook)
			})
			replicas := []*apptest.App{apptest.StartEnv(t, env, withHook), apptest.StartEnv(t, env, withHook)}
			db := replicas[0].DB

			const eater = "phone-eater"
			now := time.Now().UTC().Truncate(time.Second)
			var orders []string
			var statuses []string
			for i := range 12 {
				nr := fmt.Sprintf("replaced-%02d", i)
				orders = append(orders, nr)
				_, err := db.Exec(`INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at) VALUES ($1, $2, $3, $4, $4)`,
					nr, eater, `{"status":"place_confirmed","flow_type":"retail","place":{"id":"40","name":"Shop"}}`, now.Add(-time.Minute))
				require.NoError(t, err)
				statuses = append(statuses, pickerEvent(nr, "STATUS_CHANGE", now.Add(-time.Minute), ""))
			}
			enqueue(t, db, statuses)
			waitDrained(t, db)
			for _, r := range replicas {
				pgtest.Eventually(t, 10*time.Second, func() bool {
					cards := phoneCards(t, r, eater)
					return len(cards) == len(orders) && cards[orders[0]] == ""
				}, "every order listed, in picking, without a phone, on %s", r.URL)
			}

			var phones []string
			for _, nr := range orders {
				phones = append(phones,
					pickerEvent(nr, "PICKER_PHONE_FORWARDING_READY", now, fmt.Sprintf(`{"phone":%q,"expires_at":%q}`, loserPhone, now.Add(30*time.Minute).Format(time.RFC3339))),
					pickerEvent(nr, "PICKER_PHONE_FORWARDING_READY", now, fmt.Sprintf(`{"phone":%q,"expires_at":%q}`, winnerPhone, now.Add(60*time.Minute).Format(time.RFC3339))))
			}
			enqueue(t, db, phones)
			waitDrained(t, db)
			done := time.Now()
			// The bound: PHONE_CACHE_TTL after the last completion, plus the
			// change feed's lag (under a second). Poll both replicas until a
			// second past it: from the bound on, every answer is the winner,
			// whatever cache write landed late or failed.
			bound := done.Add(e2ePhoneTTL + 1500*time.Millisecond)
			for time.Now().Before(bound.Add(time.Second)) {
				for _, r := range replicas {
					asked := time.Now()
					cards := phoneCards(t, r, eater)
					if asked.Before(bound) {
						continue
					}
					for _, nr := range orders {
						require.Equal(t, winnerPhone, cards[nr], "order %s on %s, %s after the jobs completed; all: %v",
							nr, r.URL, asked.Sub(done).Round(time.Millisecond), cards)
					}
				}
				time.Sleep(50 * time.Millisecond) // the polling interval of a client
			}
		})
	}
}

// pickerEvent is one picker event's args JSON for picker "p-1".
func pickerEvent(nr, typ string, at time.Time, forwarding string) string {
	s := fmt.Sprintf(`{"event_type":%q,"order_nr":%q,"order_status":"picking","place_id":"40","picker_id":"p-1","created_at":%q`,
		typ, nr, at.Format(time.RFC3339Nano))
	if forwarding != "" {
		s += `,"customer_picker_phone_forwarding":` + forwarding
	}
	return s + "}"
}

// enqueue inserts the events as jobs in one transaction, as a producer's
// group insert does, and wakes the workers.
func enqueue(t *testing.T, db *sqlx.DB, events []string) {
	t.Helper()
	tx, err := db.Beginx()
	require.NoError(t, err)
	defer tx.Rollback() //nolint:errcheck
	for _, e := range events {
		_, err = tx.Exec(`INSERT INTO river_job (kind, queue, args) VALUES ($1, $1, $2)`, pickeringest.Kind, e)
		require.NoError(t, err)
	}
	_, err = tx.Exec(`SELECT pg_notify(current_schema() || '.river_insert', '{"queue":"eats_orders_tracking_picker_orders"}')`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
}

// waitDrained waits until every picker job completed.
func waitDrained(t *testing.T, db *sqlx.DB) {
	t.Helper()
	pgtest.Eventually(t, 30*time.Second, func() bool {
		var open int
		require.NoError(t, db.Get(&open, `SELECT count(*) FROM river_job WHERE queue = $1 AND state <> 'completed'`, pickeringest.Kind))
		return open == 0
	}, "the picker queue drains")
}

// phoneCards polls the eater's tracking and returns, per order, the phone
// on its call-the-picker button ("" when none).
func phoneCards(t *testing.T, a *apptest.App, eater string) map[string]string {
	t.Helper()
	code, body := a.Get(t, "/eats/v1/eats-orders-tracking/v1/tracking", map[string]string{"X-Eats-User": "user_id=" + eater})
	require.Equal(t, http.StatusOK, code, string(body))
	var r struct {
		Payload struct {
			TrackedOrders []struct {
				Order   struct{ OrderNr string }
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
	out := map[string]string{}
	for _, o := range r.Payload.TrackedOrders {
		out[o.Order.OrderNr] = ""
		for _, act := range o.Actions {
			if act.Payload.ContactType == "picker" {
				out[o.Order.OrderNr] = act.Payload.Phone
			}
		}
	}
	return out
}
