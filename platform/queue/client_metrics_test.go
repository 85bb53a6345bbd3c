package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

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
	_, db, reg := startClient(t, queue.Queue{Name: queueName, MaxWorkers: 1}, func(w *river.Workers) error {
		return river.AddWorkerSafely(w, river.WorkFunc(func(context.Context, *river.Job[idleArgs]) error { return nil }))
	})
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
