package cleanup

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"

	"github.com/eats/eats-orders-tracking/platform"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/logging"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig(config.Environment{})
	require.NoError(t, err)
	require.Equal(t, Config{Interval: 10 * time.Minute, BatchSize: 5000, Retention: 72 * time.Hour, FullSweepInterval: time.Hour}, cfg)
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for name, values := range map[string][]string{
		"CLEANUP_INTERVAL":            {"often", "0s", "-1m"},
		"CLEANUP_BATCH_SIZE":          {"many", "0", "-5", "1000000"},
		"RETENTION":                   {"3 days", "72s", "0"},
		"CLEANUP_FULL_SWEEP_INTERVAL": {"hourly", "-1h"},
	} {
		for _, v := range values {
			_, err := parseConfig(config.Environment{name: v})
			require.Error(t, err, "%s=%q", name, v)
			require.ErrorContains(t, err, name, "%s=%q", name, v)
		}
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

type testBundle struct {
	db     *sqlx.DB
	worker *worker
	reg    *prometheus.Registry
}

func setup(t testing.TB, cfg Config) *testBundle {
	t.Helper()
	db, _ := pgtest.Open(t)
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	require.NoError(t, err)
	return &testBundle{db: db, reg: reg, worker: newWorker(workerParams{
		DB: db, Config: cfg, Metrics: m, Logger: logging.New(config.Platform{LogLevel: "debug"}, io.Discard),
	})}
}

// seed fills the three tables with n rows per age group, so each table's
// expired rows span several batches. Ages are relative to the database's
// clock; rows right at either side of the cut-offs prove the boundaries.
func seed(t testing.TB, db *sqlx.DB, n int) {
	t.Helper()
	ctx := t.Context()
	exec := func(q string, args ...any) {
		t.Helper()
		_, err := db.ExecContext(ctx, q, args...)
		require.NoError(t, err, q)
	}
	// created_at: expired by a margin of i seconds, or still inside the
	// retention by i seconds.
	for _, g := range []struct {
		prefix string
		age    string
	}{
		{"old", "interval '72 hours' + interval '1 minute' + i * interval '1 second'"},
		{"new", "interval '72 hours' - interval '1 minute' - i * interval '1 second'"},
	} {
		exec(fmt.Sprintf(`
INSERT INTO picker_orders (order_nr, payload, status_event_at, created_at, updated_at)
SELECT '%[1]s-' || i, jsonb_build_object('status', 'picking', 'status_history', '{}'::jsonb),
       now(), now() - (%[2]s), now()
FROM generate_series(1, $1) AS i`, g.prefix, g.age), n)
		exec(fmt.Sprintf(`
INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at, created_at, updated_at)
SELECT '%[1]s-' || i, 'eater-' || (i %% 7), '{"flow_type":"retail","status":"created","place":{"id":"1","name":"p"}}',
       now(), now(), now() - (%[2]s), now()
FROM generate_series(1, $1) AS i`, g.prefix, g.age), n)
	}
	// expires_at: expired more than an hour ago (go), expired less than an
	// hour ago (stay, in grace), or still valid (stay).
	for _, g := range []struct {
		prefix  string
		expires string
	}{
		{"old", "now() - interval '61 minutes' - i * interval '1 second'"},
		{"grace", "now() - interval '59 minutes' + i * interval '1 millisecond'"},
		{"valid", "now() + i * interval '1 second'"},
	} {
		exec(fmt.Sprintf(`
INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at, created_at, updated_at)
SELECT '%[1]s-' || i, 'picker-' || i, '+7900' || lpad(i::text, 7, '0'), %[2]s, now(), now() - interval '100 hours', now()
FROM generate_series(1, $1) AS i`, g.prefix, g.expires), n)
	}
}

// remaining returns, per table, the number of rows left whose key starts
// with each prefix.
func remaining(t testing.TB, db *sqlx.DB) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	for _, table := range []string{"picker_orders", "orders", "picker_phones"} {
		rows, err := db.QueryContext(t.Context(), `SELECT split_part(order_nr, '-', 1), count(*) FROM `+table+` GROUP BY 1`)
		require.NoError(t, err)
		out[table] = map[string]int{}
		for rows.Next() {
			var prefix string
			var n int
			require.NoError(t, rows.Scan(&prefix, &n))
			out[table][prefix] = n
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
	}
	return out
}

func TestCleanupDeletesExactlyTheExpiredRowsInBatches(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Interval: time.Minute, BatchSize: 1000, Retention: 72 * time.Hour})
	const n = 2500 // per group: three batches of 1,000 per table
	seed(t, b.db, n)

	results, err := b.worker.run(t.Context())
	require.NoError(t, err)

	require.Equal(t, map[string]map[string]int{
		"picker_orders": {"new": n},
		"orders":        {"new": n},
		"picker_phones": {"grace": n, "valid": n},
	}, remaining(t, b.db))
	require.Len(t, results, 3)
	for _, r := range results {
		require.Equal(t, int64(n), r.Deleted, r.Table)
		require.Equal(t, 3, r.Batches, "%s: 1000 + 1000 + 500", r.Table)
		require.Equal(t, float64(n), counter(t, b.worker.metrics.deleted.WithLabelValues(r.Table)), r.Table)
	}

	// Nothing left to do: a second run deletes nothing.
	results, err = b.worker.run(t.Context())
	require.NoError(t, err)
	for _, r := range results {
		require.Zero(t, r.Deleted, r.Table)
		require.Equal(t, 1, r.Batches, r.Table)
	}
}

// Many rows with one created_at (a bulk import) must not stop the run after
// the first batch, nor make it loop.
func TestCleanupHandlesTiesOnTheKey(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Interval: time.Minute, BatchSize: 100, Retention: 72 * time.Hour})
	_, err := b.db.ExecContext(t.Context(), `
INSERT INTO picker_orders (order_nr, payload, status_event_at, created_at)
SELECT 'tie-' || i, '{"status":"new","status_history":{}}', now(), timestamptz '2020-01-01 00:00:00+00'
FROM generate_series(1, 450) AS i`)
	require.NoError(t, err)

	results, err := b.worker.run(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(450), results[0].Deleted)
	require.Equal(t, 5, results[0].Batches)
	require.Empty(t, remaining(t, b.db)["picker_orders"])
}

func TestCleanupStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Interval: time.Minute, BatchSize: 10, Retention: 72 * time.Hour})
	seed(t, b.db, 50)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := b.worker.run(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 50, remaining(t, b.db)["picker_orders"]["old"], "nothing deleted")
}

// The module starts and stops with the platform, River's periodic
// scheduling runs the cleanup on its own, and its log lines carry the
// module's name (the fx.Decorate in module.go).
func TestModuleRunsThePeriodicCleanup(t *testing.T) {
	t.Parallel()
	var (
		db  *sqlx.DB
		reg *prometheus.Registry
	)
	env := pgtest.Env(t, map[string]string{
		"REDIS_URL":          "",
		"CLEANUP_INTERVAL":   "200ms",
		"CLEANUP_BATCH_SIZE": "40",
		"SHUTDOWN_TIMEOUT":   "5s",
	})
	logs := &pgtest.SafeBuffer{}
	app := fxtest.New(t,
		pgtest.Inputs(env, logs),
		platform.Module,
		Module,
		fx.Populate(&db, &reg),
	)
	app.RequireStart()
	defer app.RequireStop()
	seed(t, db, 100)

	deadline := time.Now().Add(20 * time.Second)
	for {
		left := remaining(t, db)
		if left["picker_orders"]["old"] == 0 && left["orders"]["old"] == 0 && left["picker_phones"]["old"] == 0 {
			require.Equal(t, map[string]map[string]int{
				"picker_orders": {"new": 100},
				"orders":        {"new": 100},
				"picker_phones": {"grace": 100, "valid": 100},
			}, left)
			break
		}
		require.True(t, time.Now().Before(deadline), "expired rows still there: %v", left)
		time.Sleep(20 * time.Millisecond)
	}
	// River records the job's completion just after its last batch commits.
	for {
		var completed int
		require.NoError(t, db.GetContext(t.Context(), &completed, `SELECT count(*) FROM river_job WHERE kind = 'cleanup' AND state = 'completed'`))
		if completed > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no cleanup job completed")
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, 300.0, gatheredSum(t, reg, "eot_cleanup_deleted_total"))
	done := logs.Lines("cleanup done")
	require.NotEmpty(t, done)
	require.Contains(t, done[0], "module=cleanup")
}

// gatheredSum adds up every series of a counter family in reg.
func gatheredSum(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			var sum float64
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
