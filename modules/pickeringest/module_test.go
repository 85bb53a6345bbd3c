package pickeringest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/platform"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// TestModuleStartsAndStops: the platform plus this module alone starts,
// provides what other modules reuse, and stops cleanly.
func TestModuleStartsAndStops(t *testing.T) {
	t.Parallel()
	env := pgtest.Env(t, map[string]string{"PICKER_INGEST_MAX_WORKERS": "7", "DATABASE_MAX_CONNS": "4"})
	var (
		applier *pickeringest.Applier
		phones  *pickeringest.PhoneLookup
		db      *sqlx.DB
		queues  []queue.Queue
	)
	a := fxtest.New(t,
		pgtest.Inputs(env, nil),
		platform.Module,
		pickeringest.Module,
		fx.Populate(&applier, &phones, &db),
		fx.Invoke(fx.Annotate(func(qs []queue.Queue) { queues = qs }, fx.ParamTags(`group:"river_queues"`))),
	)
	a.RequireStart()
	require.NotNil(t, applier)
	require.NotNil(t, phones)
	require.Contains(t, queues, queue.Queue{Name: pickeringest.Kind, MaxWorkers: 7})
	_, ok, err := phones.Lookup(context.Background(), db, "o", "p", time.Now())
	require.NoError(t, err)
	require.False(t, ok)
	a.RequireStop()
}
