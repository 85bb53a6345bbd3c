package pickeringest

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// TestBatchesLockPickerOrdersBeforePickerPhones: two replicas' group
// commits hold a status and a phone event of one order in opposite arrival
// orders, and both wait behind a refresh that holds the order's rows
// (picker_orders, then picker_phones). When the refresh commits, a batch
// applied in arrival order locks picker_phones first while the other
// locks picker_orders first: PostgreSQL kills one (40P01) and its batch
// falls back to one commit per job. With DESIGN §3.1's lock order
// (picker_orders before picker_phones within an order) one simply waits
// for the other.
func TestBatchesLockPickerOrdersBeforePickerPhones(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	b.apply(t, Event{Type: tracking.EventStatusChange, OrderNr: "o-1", Status: tracking.PickerPicking, PlaceID: "40", PickerID: "p-1", CreatedAt: t0})
	b.apply(t, Event{Type: tracking.EventPickerPhoneForwardingReady, OrderNr: "o-1", Status: tracking.PickerPicking, PlaceID: "40", PickerID: "p-1",
		Forwarding: &Forwarding{Phone: "+79990000000", ExpiresAt: expires}, CreatedAt: t0})

	type replica struct {
		w   *worker
		reg *prometheus.Registry
	}
	replicas := make([]replica, 2)
	for i := range replicas {
		lc := fxtest.NewLifecycle(t)
		reg := prometheus.NewRegistry()
		gc, err := queue.NewGroupCommit(lc, b.db, reg, slog.New(slog.DiscardHandler), queue.GroupCommitOptions{
			Name: Kind, Lanes: 1, MaxBatch: 8, Timeout: 20 * time.Second,
		})
		require.NoError(t, err)
		lc.RequireStart()
		t.Cleanup(lc.RequireStop)
		replicas[i] = replica{w: &worker{commits: gc, applier: b.applier, metrics: b.applier.metrics, logger: slog.New(slog.DiscardHandler)}, reg: reg}
	}
	var ids []int64
	require.NoError(t, b.db.Select(&ids, `
		INSERT INTO river_job (kind, args, queue, state, attempt, attempted_at, attempted_by, max_attempts, priority, scheduled_at)
		SELECT $1, '{}', $1, 'running', 1, now(), '{test}', 25, 1, now() FROM generate_series(1, 6)
		RETURNING id`, Kind))

	// The refresh: it holds the order's rows in the lock order.
	refresh, err := b.db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer refresh.Rollback() //nolint:errcheck
	_, err = refresh.Exec(`SELECT FROM picker_orders WHERE order_nr = 'o-1' FOR UPDATE`)
	require.NoError(t, err)
	_, err = refresh.Exec(`SELECT FROM picker_phones WHERE order_nr = 'o-1' FOR UPDATE`)
	require.NoError(t, err)

	var deadlocksBefore int64
	require.NoError(t, b.db.Get(&deadlocksBefore, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`))

	// A blocker keeps each lane busy while its batch queues behind it.
	var errs sync.Map
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Go(func() {
			err := r.w.commits.Do(ctx, queue.Unit{JobID: ids[i], Key: "blocker", Apply: func(context.Context, *sqlx.Tx) error {
				started <- struct{}{}
				<-release
				return nil
			}})
			if err != nil {
				errs.Store(fmt.Sprintf("blocker %d", i+1), err)
			}
		})
	}
	<-started
	<-started
	status := func(at time.Time, s tracking.PickerStatus) Event {
		return Event{Type: tracking.EventStatusChange, OrderNr: "o-1", Status: s, PlaceID: "40", PickerID: "p-1", CreatedAt: at}
	}
	phone := func(at time.Time, exp time.Time) Event {
		return Event{Type: tracking.EventPickerPhoneForwardingReady, OrderNr: "o-1", Status: tracking.PickerPicking, PlaceID: "40", PickerID: "p-1",
			Forwarding: &Forwarding{Phone: "+79990000001", ExpiresAt: exp}, CreatedAt: at}
	}
	queued := 0
	submit := func(r replica, id int64, ev Event) {
		wg.Go(func() { lockOrderSubmit(t, r.w, id, ev, &errs) })
		queued++
		waitLockOrderQueued(t, queued)
	}
	// Replica 1 receives the phone event first, replica 2 the status event.
	submit(replicas[0], ids[2], phone(t0.Add(time.Minute), expires.Add(time.Hour)))
	submit(replicas[0], ids[3], status(t0.Add(time.Minute), tracking.PickerPaid))
	submit(replicas[1], ids[4], status(t0.Add(2*time.Minute), tracking.PickerPickedUp))
	submit(replicas[1], ids[5], phone(t0.Add(2*time.Minute), expires.Add(2*time.Hour)))
	close(release)
	// Both batches wait for the refresh's locks; then it commits.
	pgtest.Eventually(t, 10*time.Second, func() bool {
		var waiting int
		require.NoError(t, b.db.Get(&waiting, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`))
		return waiting >= 2
	}, "both batches waiting for the refresh's locks")
	require.NoError(t, refresh.Commit())
	wg.Wait()
	errs.Range(func(k, v any) bool { t.Errorf("job %v: %v", k, v); return true })

	for i, r := range replicas {
		require.Zero(t, gathered(t, r.reg, "eot_queue_group_commit_split_total"),
			"replica %d: a batch fell back to one commit per job (a deadlock)", i+1)
	}
	var deadlocksAfter int64
	require.NoError(t, b.db.Get(&deadlocksAfter, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`))
	require.Equal(t, deadlocksBefore, deadlocksAfter, "the two batches deadlocked")
	row, ok := b.pickerOrder(t, "o-1")
	require.True(t, ok)
	require.Equal(t, "picked_up", row.Status)
	phones := b.phoneRows(t, "o-1")
	require.Len(t, phones, 1)
	require.True(t, phones[0].ExpiresAt.Equal(expires.Add(2*time.Hour)))
}

// lockOrderSubmit hands ev to the worker's group commit as the worker's
// Work does; its name marks the goroutines waitLockOrderQueued counts.
func lockOrderSubmit(t *testing.T, w *worker, id int64, ev Event, errs *sync.Map) {
	job := &river.Job[PickerOrderArgs]{JobRow: &rivertype.JobRow{ID: id}}
	if _, err := w.applyAndComplete(t.Context(), job, ev); err != nil {
		errs.Store(id, err)
	}
}

// waitLockOrderQueued waits until n of this test's units wait on a lane.
func waitLockOrderQueued(t *testing.T, n int) {
	t.Helper()
	pgtest.Eventually(t, 10*time.Second, func() bool {
		buf := make([]byte, 1<<22)
		dump := string(buf[:runtime.Stack(buf, true)])
		queued := 0
		for _, g := range strings.Split(dump, "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, "queue.(*GroupCommit).Do(") && strings.Contains(g, "lockOrderSubmit(") {
				queued++
			}
		}
		return queued >= n
	}, fmt.Sprintf("%d units never queued on their lanes", n))
}

// gathered sums the counters of a family in reg.
func gathered(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
