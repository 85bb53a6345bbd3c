package migrate_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/migrations"
	"github.com/eats/eats-orders-tracking/platform/migrate"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/postgres"
)

var src = migrations.Source()

func tables(t *testing.T, m interface {
	SelectContext(context.Context, any, string, ...any) error
}) []string {
	var names []string
	require.NoError(t, m.SelectContext(context.Background(), &names,
		`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'goose_db_version' ORDER BY 1`))
	return names
}

func TestUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := postgres.Open(pgtest.NewDatabase(t), 4)
	require.NoError(t, err)
	defer db.Close()
	m, err := migrate.New(db, src)
	require.NoError(t, err)

	pending, err := m.Pending(ctx)
	require.NoError(t, err)
	require.True(t, pending)

	_, err = m.Up(ctx)
	require.NoError(t, err)
	up := tables(t, db)
	for _, want := range []string{"orders", "picker_orders", "picker_phones", "river_job", "river_leader"} {
		require.Contains(t, up, want)
	}
	pending, err = m.Pending(ctx)
	require.NoError(t, err)
	require.False(t, pending)

	_, err = m.DownTo(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, tables(t, db), "down to 0 must remove every table, River's included")

	_, err = m.Up(ctx)
	require.NoError(t, err)
	require.Equal(t, up, tables(t, db))
}

func TestConcurrentUpMigratesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			db, err := postgres.Open(dsn, 4)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			m, err := migrate.New(db, src)
			if err != nil {
				errs <- err
				return
			}
			_, err = m.Up(ctx)
			errs <- err
		}()
	}
	for range 3 {
		require.NoError(t, <-errs)
	}
}
