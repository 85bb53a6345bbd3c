package trackingpresenter

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/platform/cache"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/logging"
	"github.com/eats/eats-orders-tracking/platform/metrics"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/postgres"
	"github.com/eats/eats-orders-tracking/platform/shutdown"
)

func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("not within 10s: " + msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The feed applies every kind of change the triggers send, proves its
// freshness with heartbeats, and after losing its connection resets the
// cache and comes back.
func TestChangeFeed(t *testing.T) {
	t.Parallel()
	db, dsn := pgtest.Open(t)
	c := newStateCache(100, maxLag, time.Minute)
	f := newChangeFeed(dsn, c, slog.New(slog.DiscardHandler), 20*time.Millisecond)
	require.NoError(t, f.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, f.Stop(context.Background())) })

	eventually(t, func() bool { l := c.lag(time.Now()); return l >= 0 && l < maxLag }, "heartbeats prove freshness")
	fill := func() {
		t.Helper()
		require.True(t, c.put("e1", c.begin(), states("o1"), time.Now(), time.Time{}))
	}
	gone := func() bool { _, res := c.get("e1", time.Now()); return res == cacheMiss }
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
	require.Equal(t, cacheHit, res, "a bare updated_at move and another order's phone change nothing")

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
	require.Equal(t, cacheHit, res, "deleting rows no answer shows notifies nothing")
	exec(`INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at) VALUES ('o7', 'p1', '+79990000001', now() + interval '1 hour', now())`)
	eventually(t, func() bool { _, res := c.get("e7", time.Now()); return res == cacheMiss }, "a valid phone's insert drops the entry")
	require.True(t, c.put("e7", c.begin(), states("o7"), time.Now(), time.Time{}))
	exec(`DELETE FROM picker_phones WHERE order_nr = 'o7'`)
	eventually(t, func() bool { _, res := c.get("e7", time.Now()); return res == cacheMiss }, "a valid phone's delete drops the entry")

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

// fxtest smoke test: the module starts and stops with the platform pieces
// it needs, and answers.
func TestModuleStartsAndStops(t *testing.T) {
	t.Parallel()
	var srv *httpapi.Server
	var db *sqlx.DB
	app := fxtest.New(t,
		fx.Supply(config.Environment{
			"DATABASE_URL": pgtest.Clone(t), "REDIS_URL": pgtest.RedisURL(), "REDIS_KEY_PREFIX": pgtest.RedisPrefix(t),
			"HTTP_ADDR": "127.0.0.1:0", "LOG_LEVEL": "warn", "SHUTDOWN_TIMEOUT": "5s",
			"EXPERIMENTS_FILE": filepath.Join("..", "..", "experiments.yaml"),
		}),
		config.Module, logging.Module, metrics.Module, postgres.Module, shutdown.Module, cache.Module, httpapi.Module,
		experiments.Module,
		fx.Provide(func(cfg config.Platform) experiments.Path { return experiments.Path(cfg.ExperimentsFile) }),
		// picker-ingest's phone lookup, without its worker and queue.
		fx.Provide(pickeringest.NewPhoneLookup),
		// Another module's experiment in the shared file.
		experiments.AsDefinition(experiments.NewKey[any]("eats_orders_tracking_picker_statuses_timeout", nil).Definition()),
		Module,
		fx.Populate(&srv, &db),
	)
	app.RequireStart()
	_, err := db.Exec(`INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at)
		VALUES ('o1', 'e1', '{"flow_type":"native","status":"created","place":{"id":"1","name":"P"}}', now(), now())`)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+Path, nil)
	require.NoError(t, err)
	req.Header.Set("X-Eats-User", "user_id=e1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.True(t, strings.Contains(string(body), `"title":"Заказ оформлен"`), string(body))
	app.RequireStop()
}

// The complete load holds, for every eater, exactly what a per-eater read
// gives: listed orders only, in order, with valid phones.
func TestLoadAllMatchesPerEaterReads(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	rdb := &cache.Redis{Client: pgtest.Redis(t), Prefix: pgtest.RedisPrefix(t)}
	phones, err := pickeringest.NewPhoneLookup(rdb, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	c := newStateCache(100, maxLag, time.Minute)
	p := &presenter{db: db, orders: &ordersStmt{db: db}, phones: phones, cache: c, now: time.Now}
	_, err = db.Exec(`
INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at) VALUES
 ('a2', 'A', '{"flow_type":"retail","status":"place_confirmed","place":{"id":"1","name":"P","phone":"+79990000001"}}', now(), now() - interval '1 minute'),
 ('a1', 'A', '{"flow_type":"native","status":"taken","place":{"id":"1","name":"P"},"courier":{"name":"C","phone":"+79990000002"},"eta":"2030-01-01T00:00:00Z"}', now(), now() - interval '2 minutes'),
 ('a0', 'A', '{"flow_type":"native","status":"delivered","place":{"id":"1","name":"P"}}', now() - interval '5 minutes', now() - interval '1 hour'),
 ('a-old', 'A', '{"flow_type":"native","status":"cancelled","place":{"id":"1","name":"P"}}', now() - interval '1 hour', now() - interval '2 hours'),
 ('b1', 'B', '{"flow_type":"native","status":"delivered","place":{"id":"1","name":"P"}}', now() - interval '1 hour', now() - interval '2 hours');
INSERT INTO picker_orders (order_nr, payload, status_event_at) VALUES
 ('a2', '{"picker_id":"p1","status":"picking","status_history":{"picking_at":"2026-01-01T00:00:00Z"}}', now());
INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at) VALUES
 ('a2', 'p1', '+79991234567,,12', now() + interval '1 hour', now());`)
	require.NoError(t, err)

	n, err := p.loadAll(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n, "B has no listed order")
	require.True(t, c.isComplete())
	want, err := p.load(context.Background(), "A", time.Now())
	require.NoError(t, err)
	require.Len(t, want, 3)
	require.Equal(t, []string{"a0", "a1", "a2"}, []string{want[0].OrderNr, want[1].OrderNr, want[2].OrderNr})
	require.Equal(t, "+79991234567,,12", want[2].Picker.Phone.Number)
	c.mu.RLock()
	got := c.entries["A"]
	_, hasB := c.entries["B"]
	c.mu.RUnlock()
	require.Equal(t, want, got.states)
	require.False(t, hasB)
	require.Equal(t, want[2].Picker.Phone.ExpiresAt, got.expires, "an entry with a phone lives no longer than the phone")
}
