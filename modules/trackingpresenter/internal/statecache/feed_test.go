package statecache

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	pgtest.Eventually(t, 10*time.Second, cond, msg)
}

// The feed applies every kind of change the triggers send, proves its
// freshness with heartbeats, and after losing its connection resets the
// cache and comes back.
func TestChangeFeed(t *testing.T) {
	t.Parallel()
	db, dsn := pgtest.Open(t)
	c := newStateCache[order](100, maxLag, time.Minute)
	f := newChangeFeed(dsn, c, slog.New(slog.DiscardHandler), 20*time.Millisecond)
	require.NoError(t, f.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, f.Stop(context.Background())) })

	eventually(t, func() bool { l := c.lag(time.Now()); return l >= 0 && l < maxLag }, "heartbeats prove freshness")
	fill := func() {
		t.Helper()
		require.True(t, c.put("e1", c.begin(), states("o1"), time.Now(), time.Time{}))
	}
	gone := func() bool { _, res := c.get("e1", time.Now()); return res == Miss }
	exec := func(q string, args ...any) {
		t.Helper()
		_, err := db.Exec(q, args...)
		require.NoError(t, err)
	}

	fill()
	exec(`INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at) VALUES ('o2', 'e1', '{"status":"created"}', now(), now())`)
	eventually(t, gone, "a new order of the eater drops its entry")

	fill()
	exec(`INSERT INTO picker_orders (order_nr, payload, status_event_at) VALUES ('o1', '{"status":"new","status_history":{}}', now())`)
	eventually(t, gone, "a picker order of a cached order drops the entry")

	// applied waits for a heartbeat sent after the statements so far:
	// whatever they notified has been applied by then.
	applied := func() {
		t.Helper()
		after := time.Now()
		eventually(t, func() bool {
			now := time.Now()
			l := c.lag(now)
			return l >= 0 && now.Add(-l).After(after)
		}, "a heartbeat passes")
	}

	fill()
	exec(`UPDATE picker_orders SET updated_at = now() WHERE order_nr = 'o1'`)
	exec(`INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at) VALUES ('o9', 'p1', '+79990000001', now(), now())`)
	applied()
	_, res := c.get("e1", time.Now())
	require.Equal(t, Hit, res, "a bare updated_at move and another order's phone change nothing")

	// What cleanup deletes changes no answer and notifies nothing: orders
	// finished long ago, expired phones, picker orders that show the base view.
	require.True(t, c.put("e7", c.begin(), states("o7"), time.Now(), time.Time{}))
	exec(`INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at) VALUES ('o7', 'e7', '{"status":"delivered"}', now() - interval '1 hour', now() - interval '2 hours')`)
	exec(`INSERT INTO picker_orders (order_nr, payload, status_event_at) VALUES
		('o7', '{"status":"complete","status_history":{}}', now()),
		('o8', '{"status":"packing","status_history":{"paid_at":"2026-01-01T00:00:00Z"}}', now())`)
	exec(`INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at) VALUES ('o7', 'p1', '+79990000001', now() - interval '2 hours', now())`)
	applied()
	require.True(t, c.put("e7", c.begin(), states("o7", "o8", "o9"), time.Now(), time.Time{}))
	exec(`DELETE FROM orders WHERE order_nr = 'o7'`)
	exec(`DELETE FROM picker_orders WHERE order_nr IN ('o7', 'o8')`)
	exec(`DELETE FROM picker_phones WHERE order_nr IN ('o7', 'o9')`)
	applied()
	_, res = c.get("e7", time.Now())
	require.Equal(t, Hit, res, "deleting rows no answer shows notifies nothing")
	exec(`INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at) VALUES ('o7', 'p1', '+79990000001', now() + interval '1 hour', now())`)
	eventually(t, func() bool { _, res := c.get("e7", time.Now()); return res == Miss }, "a valid phone's insert drops the entry")
	require.True(t, c.put("e7", c.begin(), states("o7"), time.Now(), time.Time{}))
	exec(`DELETE FROM picker_phones WHERE order_nr = 'o7'`)
	eventually(t, func() bool { _, res := c.get("e7", time.Now()); return res == Miss }, "a valid phone's delete drops the entry")

	exec(`INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at) VALUES ('o1', 'p1', '+79990000001', now(), now())`)
	eventually(t, gone, "a phone of a cached order drops the entry")

	fill()
	exec(`UPDATE orders SET eater_id = 'e2' WHERE order_nr = 'o2'`)
	eventually(t, gone, "an order leaving the eater drops the entry")

	fill()
	exec(`INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at) VALUES ('o3', repeat('x', 8000), '{}', now(), now())`)
	eventually(t, gone, "a key too long for a notification drops everything")

	fill()
	exec(`TRUNCATE picker_phones`)
	eventually(t, gone, "TRUNCATE drops everything")

	fill()
	var killed int
	require.NoError(t, db.Get(&killed, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND (query LIKE 'LISTEN%' OR query LIKE '%pg_notify($1, $2)%')`))
	require.Equal(t, 1, killed)
	eventually(t, func() bool { return c.size() == 0 }, "a lost feed resets the cache")
	eventually(t, func() bool { l := c.lag(time.Now()); return l >= 0 && l < maxLag }, "the feed comes back")
}
