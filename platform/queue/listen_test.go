package queue_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/queue"
)

type listenArgs struct{}

func (listenArgs) Kind() string { return "listen_test" }

// TestInsertTxWakesTheQueue: a job inserted with InsertTx is worked soon
// after its transaction commits, because the client LISTENs for River's
// insert notification, not at the next poll (1 s).
//
// This is a correctness test of the listener, not a speed target: each job
// is inserted right after the previous one was worked, so a client that
// only polls takes most of a poll interval for every job (its fetch that
// found the previous job has just run), and the median is far above the
// bound; with LISTEN it is a few milliseconds.
func TestInsertTxWakesTheQueue(t *testing.T) {
	t.Parallel()
	const queueName = "listen_test"
	worked := make(chan time.Time, 1)
	// More slots than jobs: a fetch that fills every slot makes River fetch
	// again as a slot frees, which would find the next job without any
	// notification and hide a missing listener.
	client, db, _ := startClient(t, queue.Queue{Name: queueName, MaxWorkers: 10}, func(w *river.Workers) error {
		return river.AddWorkerSafely(w, river.WorkFunc(func(context.Context, *river.Job[listenArgs]) error {
			worked <- time.Now()
			return nil
		}))
	})

	ctx := context.Background()
	insert := func() time.Time {
		tx, err := db.BeginTxx(ctx, nil)
		require.NoError(t, err)
		defer tx.Rollback() //nolint:errcheck // a no-op after commit
		_, err = client.InsertTx(ctx, tx.Tx, listenArgs{}, &river.InsertOpts{Queue: queueName})
		require.NoError(t, err)
		committed := time.Now()
		require.NoError(t, tx.Commit())
		return committed
	}
	wait := func() time.Time {
		select {
		case at := <-worked:
			return at
		case <-time.After(10 * time.Second):
			require.FailNow(t, "job not worked within 10 s")
			return time.Time{}
		}
	}

	// The first job may beat the listener's LISTEN; it only warms up.
	insert()
	wait()
	var latencies []time.Duration
	for range 7 {
		committed := insert()
		latencies = append(latencies, wait().Sub(committed))
	}
	slices.Sort(latencies)
	median := latencies[len(latencies)/2]
	require.Less(t, median, 500*time.Millisecond,
		"insert→work median %s (all %v): the job waited for the 1 s poll, so the LISTEN connection is not working", median, latencies)
}
