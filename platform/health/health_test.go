package health_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"

	"github.com/eats/eats-orders-tracking/migrations"
	"github.com/eats/eats-orders-tracking/platform"
	"github.com/eats/eats-orders-tracking/platform/health"
	"github.com/eats/eats-orders-tracking/platform/migrate"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/postgres"
)

// The watch is a goroutine: it must end with the app.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readyGauge is eot_ready as the registry exports it.
func readyGauge(t *testing.T, g prometheus.Gatherer) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "eot_ready" {
			require.Len(t, mf.GetMetric(), 1)
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("eot_ready is not exported")
	return 0
}

func TestReadyOnlyAfterMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(pgtest.NewDatabase(t), 4)
	require.NoError(t, err)
	defer db.Close()
	m, err := migrate.New(db, migrations.Source())
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	c, err := health.NewChecker(db, m, reg)
	require.NoError(t, err)
	require.Zero(t, readyGauge(t, reg), "not ready before any check")

	checks, ok := c.Ready(ctx)
	require.False(t, ok)
	require.Equal(t, "pending", checks["migrations"])
	require.Zero(t, readyGauge(t, reg))

	_, err = m.Up(ctx)
	require.NoError(t, err)
	checks, ok = c.Ready(ctx)
	require.True(t, ok, "%v", checks)
	require.Equal(t, 1.0, readyGauge(t, reg))
}

func TestNotReadyWhenDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	db, err := postgres.Open("postgres://root@127.0.0.1:1/nowhere?sslmode=disable", 2)
	require.NoError(t, err)
	defer db.Close()
	m, err := migrate.New(db, migrations.Source())
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	c, err := health.NewChecker(db, m, reg)
	require.NoError(t, err)
	checks, ok := c.Ready(context.Background())
	require.False(t, ok)
	require.Equal(t, "unreachable", checks["database"])
	require.Zero(t, readyGauge(t, reg))
}

// A check whose caller went away leaves the gauge as it was: it says
// nothing about the database.
func TestReadyKeepsTheGaugeWhenTheCallerLeaves(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	m, err := migrate.New(db, migrations.Source())
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	c, err := health.NewChecker(db, m, reg)
	require.NoError(t, err)
	_, ok := c.Ready(context.Background())
	require.True(t, ok)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, ok = c.Ready(ctx)
	require.False(t, ok)
	require.Equal(t, 1.0, readyGauge(t, reg))
}

// Watch keeps eot_ready right with no probe at all: it follows the
// migrations being applied and the database going away.
func TestReadyGaugeFollowsTheChecksWithoutProbes(t *testing.T) {
	t.Parallel()
	db, err := postgres.Open(pgtest.NewDatabase(t), 4)
	require.NoError(t, err)
	defer db.Close()
	m, err := migrate.New(db, migrations.Source())
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	c, err := health.NewChecker(db, m, reg)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Watch(ctx, 20*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()

	_, err = m.Up(ctx)
	require.NoError(t, err)
	pgtest.Eventually(t, 5*time.Second, func() bool { return readyGauge(t, reg) == 1 }, "eot_ready 1 once migrated")

	require.NoError(t, db.Close())
	pgtest.Eventually(t, 5*time.Second, func() bool { return readyGauge(t, reg) == 0 }, "eot_ready 0 once the database is gone")
}

// In the graph the watch starts with the app: eot_ready turns 1 with
// nobody calling /readyz, and the watch ends on stop (goleak).
func TestReadyGaugeInTheGraph(t *testing.T) {
	t.Parallel()
	var g prometheus.Gatherer
	var c *health.Checker
	app := fxtest.New(t, pgtest.Inputs(pgtest.Env(t, nil), nil), platform.Module, fx.Populate(&g, &c))
	app.RequireStart()
	defer app.RequireStop()
	pgtest.Eventually(t, 5*time.Second, func() bool { return readyGauge(t, g) == 1 }, "eot_ready 1 without a probe")
}
