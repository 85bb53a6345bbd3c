package health_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/migrations"
	"github.com/eats/eats-orders-tracking/platform/health"
	"github.com/eats/eats-orders-tracking/platform/migrate"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/postgres"
)

func TestReadyOnlyAfterMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(pgtest.NewDatabase(t), 4)
	require.NoError(t, err)
	defer db.Close()
	m, err := migrate.New(db, migrations.Source())
	require.NoError(t, err)
	c := health.NewChecker(db, m)

	checks, ok := c.Ready(ctx)
	require.False(t, ok)
	require.Equal(t, "pending", checks["migrations"])

	_, err = m.Up(ctx)
	require.NoError(t, err)
	checks, ok = c.Ready(ctx)
	require.True(t, ok, "%v", checks)
}

func TestNotReadyWhenDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	db, err := postgres.Open("postgres://root@127.0.0.1:1/nowhere?sslmode=disable", 2)
	require.NoError(t, err)
	defer db.Close()
	m, err := migrate.New(db, migrations.Source())
	require.NoError(t, err)
	checks, ok := health.NewChecker(db, m).Ready(context.Background())
	require.False(t, ok)
	require.Equal(t, "unreachable", checks["database"])
}
