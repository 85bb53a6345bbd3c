package queue_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/migrations"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/migrate"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

type idleArgs struct{}

func (idleArgs) Kind() string { return "idle_test" }

// TestClientReportsIdleQueues: a client built the normal way reports every
// state of a queue it works as 0 before any job exists, so dashboards and
// alerts see a series, not nothing.
func TestClientReportsIdleQueues(t *testing.T) {
	t.Parallel()
	const queueName = "idle_test"
	db, dsn := pgtest.Open(t, migrate.Source{FS: migrations.FS(), Go: migrations.Go()})
	reg := prometheus.NewRegistry()
	lc := fxtest.NewLifecycle(t)
	_, err := queue.New(queue.Params{
		Lifecycle: lc,
		DB:        db,
		Config:    config.Platform{DatabaseURL: dsn, JobRetention: time.Hour, ShutdownTimeout: 5 * time.Second},
		Logger:    slog.New(slog.DiscardHandler),
		Registry:  reg,
		Workers: []queue.Workers{func(w *river.Workers) error {
			return river.AddWorkerSafely(w, river.WorkFunc(func(context.Context, *river.Job[idleArgs]) error { return nil }))
		}},
		Queues: []queue.Queue{{Name: queueName, MaxWorkers: 1}},
	})
	require.NoError(t, err)
	lc.RequireStart()
	t.Cleanup(lc.RequireStop)
	// River records the queues it works in river_queue as its producers
	// start; the collector learns them from there.
	require.Eventually(t, func() bool {
		var n int
		return db.Get(&n, `SELECT count(*) FROM river_queue WHERE name = $1`, queueName) == nil && n == 1
	}, 10*time.Second, 10*time.Millisecond)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	states := map[string]float64{}
	var up, lag float64 = -1, -1
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "eot_river_stats_up":
				up = m.GetGauge().GetValue()
			case "eot_river_jobs":
				if labels["queue"] == queueName {
					states[labels["state"]] = m.GetGauge().GetValue()
				}
			case "eot_river_queue_lag_seconds":
				if labels["queue"] == queueName {
					lag = m.GetGauge().GetValue()
				}
			}
		}
	}
	require.Equal(t, 1.0, up)
	require.Equal(t, map[string]float64{"available": 0, "pending": 0, "retryable": 0, "running": 0, "scheduled": 0}, states)
	require.Zero(t, lag)
}
