package queue_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/queue"
	"github.com/eats/eats-orders-tracking/platform/shutdown"
)

// startClient builds a client the way the service does (queue.New) on a
// fresh migrated database, working one queue with workers, and starts it
// for the test.
func startClient(t *testing.T, q queue.Queue, workers queue.Workers) (*queue.Client, *sqlx.DB, *prometheus.Registry) {
	t.Helper()
	db, dsn := pgtest.Open(t)
	reg := prometheus.NewRegistry()
	lc := fxtest.NewLifecycle(t)
	client, err := queue.New(queue.Params{
		Lifecycle: lc,
		DB:        db,
		Config:    config.Platform{DatabaseURL: dsn, JobRetention: time.Hour, ShutdownTimeout: 5 * time.Second},
		Logger:    slog.New(slog.DiscardHandler),
		Registry:  reg,
		Workers:   []queue.Workers{workers},
		Queues:    []queue.Queue{q},
		Budget:    shutdown.NewBudget(5 * time.Second),
	})
	require.NoError(t, err)
	lc.RequireStart()
	t.Cleanup(lc.RequireStop)
	return client, db, reg
}
