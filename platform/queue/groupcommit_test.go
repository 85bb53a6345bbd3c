package queue_test

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
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

type gcBundle struct {
	db  *sqlx.DB
	gc  *queue.GroupCommit
	reg *prometheus.Registry
}

func newGroupCommit(t *testing.T, lanes, maxBatch int) gcBundle {
	t.Helper()
	db, _ := pgtest.Open(t)
	_, err := db.Exec(`CREATE TABLE gc_rows (k TEXT PRIMARY KEY, v INT NOT NULL)`)
	require.NoError(t, err)
	lc := fxtest.NewLifecycle(t)
	reg := prometheus.NewRegistry()
	gc, err := queue.NewGroupCommit(lc, db, reg, slog.New(slog.DiscardHandler), queue.GroupCommitOptions{
		Name: "test", Lanes: lanes, MaxBatch: maxBatch, Timeout: 10 * time.Second,
	})
	require.NoError(t, err)
	lc.RequireStart()
	t.Cleanup(lc.RequireStop)
	return gcBundle{db: db, gc: gc, reg: reg}
}

// runningJobs inserts n jobs in the state a worker sees them in.
func (b gcBundle) runningJobs(t *testing.T, n int) []int64 {
	t.Helper()
	var ids []int64
	require.NoError(t, b.db.Select(&ids, `
		INSERT INTO river_job (kind, args, queue, state, attempt, attempted_at, attempted_by, max_attempts, priority, scheduled_at)
		SELECT 'gc_test', '{}', 'default', 'running', 1, now(), '{test}', 25, 1, now() FROM generate_series(1, $1)
		RETURNING id`, n))
	return ids
}

func (b gcBundle) state(t *testing.T, id int64) string {
	t.Helper()
	var s string
	require.NoError(t, b.db.Get(&s, `SELECT state FROM river_job WHERE id = $1`, id))
	return s
}

func insertRow(k string, v int) func(context.Context, *sqlx.Tx) error {
	return func(ctx context.Context, tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO gc_rows (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`, k, v)
		return err
	}
}

// TestGroupCommitSplitsAroundAFailingJob: units queued behind a running
// transaction commit together; one whose work fails gets its own error,
// and the rest still commit with their jobs.
func TestGroupCommitSplitsAroundAFailingJob(t *testing.T) {
	t.Parallel()
	b := newGroupCommit(t, 1, 64)
	ids := b.runningJobs(t, 20)

	// The first unit holds the only lane until the others are queued
	// behind it, so they form one batch.
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the lanes stop, should the test fail half-way
	first := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		first <- b.gc.Do(context.Background(), queue.Unit{JobID: ids[0], Key: "k0", Apply: func(ctx context.Context, tx *sqlx.Tx) error {
			close(started)
			<-release
			return insertRow("k0", 0)(ctx, tx)
		}})
	}()
	<-started // the lane is busy with k0; the others queue behind it
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i := 1; i < len(ids); i++ {
		wg.Go(func() {
			apply := insertRow(fmt.Sprintf("k%d", i), i)
			if i == 7 {
				apply = func(ctx context.Context, tx *sqlx.Tx) error {
					_, err := tx.ExecContext(ctx, `INSERT INTO gc_rows (k, v) VALUES ('k7', 1/0)`)
					return err
				}
			}
			errs[i] = b.gc.Do(context.Background(), queue.Unit{JobID: ids[i], Key: fmt.Sprintf("k%d", i), Apply: apply})
		})
	}
	waitQueued(t, len(ids)-1)
	unblock()
	require.NoError(t, <-first)
	wg.Wait()

	for i := 1; i < len(ids); i++ {
		if i == 7 {
			require.ErrorContains(t, errs[i], "division by zero")
			require.Equal(t, "running", b.state(t, ids[i]), "a failed unit's job stays running for River to retry")
			continue
		}
		require.NoError(t, errs[i], "unit %d", i)
		require.Equal(t, "completed", b.state(t, ids[i]))
	}
	var n int
	require.NoError(t, b.db.Get(&n, `SELECT count(*) FROM gc_rows`))
	require.Equal(t, 19, n)
	require.Equal(t, 1.0, counter(t, b.reg, "eot_queue_group_commit_split_total"), "the batch with the failing unit was split")
}

// waitQueued waits until n goroutines are blocked handing a unit to a
// lane, read from the goroutine dump rather than guessed with a sleep.
func waitQueued(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<22)
		dump := string(buf[:runtime.Stack(buf, true)])
		queued := 0
		for _, g := range strings.Split(dump, "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, "queue.(*GroupCommit).Do(") && !strings.Contains(g, "commitBatch") {
				queued++
			}
		}
		return queued >= n
	}, 10*time.Second, 10*time.Millisecond, "%d goroutines never queued on the lane", n)
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not gathered", name)
	return 0
}

// TestGroupCommitHookFailureRollsBackBoth: a failure between the writes
// and the commit (inside, the job already reads completed) leaves neither
// the unit's rows nor the completion.
func TestGroupCommitHookFailureRollsBackBoth(t *testing.T) {
	t.Parallel()
	b := newGroupCommit(t, 2, 8)
	ids := b.runningJobs(t, 1)
	err := b.gc.Do(context.Background(), queue.Unit{
		JobID: ids[0], Key: "a", Apply: insertRow("a", 1),
		BeforeCommit: func(ctx context.Context, tx *sqlx.Tx) error {
			var state string
			if err := tx.GetContext(ctx, &state, `SELECT state FROM river_job WHERE id = $1`, ids[0]); err != nil {
				return err
			}
			return fmt.Errorf("inside the transaction the job is %s", state)
		},
	})
	require.EqualError(t, err, "inside the transaction the job is completed")
	require.Equal(t, "running", b.state(t, ids[0]))
	var n int
	require.NoError(t, b.db.Get(&n, `SELECT count(*) FROM gc_rows`))
	require.Zero(t, n)
}

// TestGroupCommitLeavesAFinishedJobAlone: a job no longer running (River
// rescued it, or it was cancelled) is not completed by a late commit.
func TestGroupCommitLeavesAFinishedJobAlone(t *testing.T) {
	t.Parallel()
	b := newGroupCommit(t, 1, 8)
	ids := b.runningJobs(t, 1)
	_, err := b.db.Exec(`UPDATE river_job SET state = 'cancelled', finalized_at = now() WHERE id = $1`, ids[0])
	require.NoError(t, err)
	require.NoError(t, b.gc.Do(context.Background(), queue.Unit{JobID: ids[0], Key: "a", Apply: insertRow("a", 1)}))
	require.Equal(t, "cancelled", b.state(t, ids[0]))
}

// TestGroupCommitStopped: work handed in after stop is refused, not lost.
func TestGroupCommitStopped(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	lc := fxtest.NewLifecycle(t)
	gc, err := queue.NewGroupCommit(lc, db, prometheus.NewRegistry(), slog.New(slog.DiscardHandler), queue.GroupCommitOptions{
		Name: "test", Lanes: 1, MaxBatch: 1, Timeout: time.Second,
	})
	require.NoError(t, err)
	lc.RequireStart().RequireStop()
	err = gc.Do(context.Background(), queue.Unit{JobID: 1, Key: "a", Apply: func(context.Context, *sqlx.Tx) error { return nil }})
	require.ErrorIs(t, err, queue.ErrStopped)
}

// TestGroupCommitCompletesLikeRiver: a job completed by GroupCommit ends in
// the same row as one completed by river.JobCompleteTx, River's own way,
// in the River version go.mod pins. If an upgrade changes what River
// writes on completion, this fails and qCompleteJobs must follow.
func TestGroupCommitCompletesLikeRiver(t *testing.T) {
	t.Parallel()
	b := newGroupCommit(t, 1, 8)
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[riverWay]) error {
		tx, err := b.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after commit
		if _, err := river.JobCompleteTx[*queue.Driver](ctx, tx, job); err != nil {
			return err
		}
		return tx.Commit()
	}))
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[groupWay]) error {
		return b.gc.Do(ctx, queue.Unit{JobID: job.ID, Key: "k", Apply: insertRow("k", 1)})
	}))
	client, err := river.NewClient(riverdatabasesql.New(b.db.DB), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:           workers,
		FetchPollInterval: 50 * time.Millisecond,
		FetchCooldown:     10 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		require.NoError(t, client.Stop(stopCtx))
	})
	a, err := client.Insert(ctx, riverWay{}, nil)
	require.NoError(t, err)
	g, err := client.Insert(ctx, groupWay{}, nil)
	require.NoError(t, err)

	type row struct {
		State       string `db:"state"`
		Attempt     int    `db:"attempt"`
		Errors      string `db:"errors"`
		Metadata    string `db:"metadata"`
		Finalized   bool   `db:"finalized"`
		AttemptedBy string `db:"attempted_by"`
		Scheduled   bool   `db:"scheduled_kept"`
	}
	// Every column is read NULL-safe: before a job is fetched it has no
	// attempted_at or attempted_by.
	const q = `SELECT state::text, attempt, coalesce(errors::text, '') AS errors, metadata::text AS metadata,
		coalesce(finalized_at >= attempted_at, false) AS finalized, coalesce(array_to_string(attempted_by, ','), '') AS attempted_by,
		coalesce(scheduled_at <= attempted_at, false) AS scheduled_kept FROM river_job WHERE id = $1`
	get := func(id int64) row {
		var r row
		require.NoError(t, b.db.Get(&r, q, id))
		return r
	}
	completed := func(id int64) bool {
		var r row
		return b.db.Get(&r, q, id) == nil && r.State == "completed"
	}
	require.Eventually(t, func() bool { return completed(a.Job.ID) && completed(g.Job.ID) }, 15*time.Second, 20*time.Millisecond)
	// River's completer runs after Work returns; give it a moment to write
	// anything it would add.
	time.Sleep(300 * time.Millisecond)
	ra, rg := get(a.Job.ID), get(g.Job.ID)
	require.Equal(t, ra, rg, "JobCompleteTx left %+v, GroupCommit %+v", ra, rg)
	require.True(t, rg.Finalized)
}

type riverWay struct{}

func (riverWay) Kind() string { return "gc_river_way" }

type groupWay struct{}

func (groupWay) Kind() string { return "gc_group_way" }

// TestGroupCommitLocksInKeyOrder: two replicas' batches hold the same two
// keys in opposite arrival orders. Applied as they arrived, each locks its
// first row and waits for the other's (PostgreSQL kills one: 40P01, and
// the batch falls back to one commit per job); applied in key order, one
// simply waits for the other.
func TestGroupCommitLocksInKeyOrder(t *testing.T) {
	t.Parallel()
	// The rows a and b are two keys, or two rows (Row) of one key and rank
	// (two pickers' phones of one order).
	t.Run("keys", func(t *testing.T) {
		t.Parallel()
		lockOrder(t, func(row string) queue.Unit { return queue.Unit{Key: row} })
	})
	t.Run("rows of one key", func(t *testing.T) {
		t.Parallel()
		lockOrder(t, func(row string) queue.Unit { return queue.Unit{Key: "order", Rank: 1, Row: row} })
	})
}

func lockOrder(t *testing.T, unitFor func(row string) queue.Unit) {
	r1 := newGroupCommit(t, 1, 8)
	db := r1.db
	lc := fxtest.NewLifecycle(t)
	reg2 := prometheus.NewRegistry()
	gc2, err := queue.NewGroupCommit(lc, db, reg2, slog.New(slog.DiscardHandler), queue.GroupCommitOptions{
		Name: "test", Lanes: 1, MaxBatch: 8, Timeout: 10 * time.Second,
	})
	require.NoError(t, err)
	lc.RequireStart()
	t.Cleanup(lc.RequireStop)
	_, err = db.Exec(`INSERT INTO gc_rows (k, v) VALUES ('a', 0), ('b', 0)`)
	require.NoError(t, err)
	var deadlocksBefore int64
	require.NoError(t, db.Get(&deadlocksBefore, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`))

	// Each unit, once it holds its row, waits (briefly) until the other
	// replica holds one too, so the two batches overlap.
	var arrived sync.Map
	both := make(chan struct{})
	var closeBoth sync.Once
	update := func(replica, key string) func(context.Context, *sqlx.Tx) error {
		return func(ctx context.Context, tx *sqlx.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE gc_rows SET v = v + 1 WHERE k = $1`, key); err != nil {
				return err
			}
			arrived.Store(replica, true)
			_, one := arrived.Load("r1")
			_, two := arrived.Load("r2")
			if one && two {
				closeBoth.Do(func() { close(both) })
			}
			select {
			case <-both:
			case <-time.After(500 * time.Millisecond): // the other is waiting for our lock
			}
			return nil
		}
	}
	ids := r1.runningJobs(t, 6)
	gcs := map[string]*queue.GroupCommit{"r1": r1.gc, "r2": gc2}
	release := make(chan struct{})
	var errs sync.Map
	var wg sync.WaitGroup
	submit := func(replica string, id int64, key string, apply func(context.Context, *sqlx.Tx) error) {
		u := unitFor(key)
		u.JobID, u.Apply = id, apply
		wg.Go(func() {
			if err := gcs[replica].Do(context.Background(), u); err != nil {
				errs.Store(fmt.Sprintf("%s/%s", replica, key), err)
			}
		})
	}
	hold := func(context.Context, *sqlx.Tx) error { <-release; return nil }
	// A blocker keeps each lane busy while its batch queues behind it:
	// r1 receives b then a, r2 a then b.
	submit("r1", ids[0], "blocker1", hold)
	submit("r2", ids[1], "blocker2", hold)
	waitRunning(t, 2)
	submit("r1", ids[2], "b", update("r1", "b"))
	waitQueued(t, 1)
	submit("r1", ids[3], "a", update("r1", "a"))
	waitQueued(t, 2)
	submit("r2", ids[4], "a", update("r2", "a"))
	waitQueued(t, 3)
	submit("r2", ids[5], "b", update("r2", "b"))
	waitQueued(t, 4)
	close(release)
	wg.Wait()
	errs.Range(func(k, v any) bool { t.Errorf("%s: %v", k, v); return true })

	var deadlocksAfter int64
	require.NoError(t, db.Get(&deadlocksAfter, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`))
	require.Equal(t, deadlocksBefore, deadlocksAfter, "the two batches deadlocked")
	require.Zero(t, counter(t, r1.reg, "eot_queue_group_commit_split_total")+counter(t, reg2, "eot_queue_group_commit_split_total"),
		"no batch fell back to one commit per job")
	var sum int
	require.NoError(t, db.Get(&sum, `SELECT sum(v) FROM gc_rows`))
	require.Equal(t, 4, sum)
}

// waitRunning waits until n units are inside a transaction (their lane's
// commitBatch).
func waitRunning(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<22)
		dump := string(buf[:runtime.Stack(buf, true)])
		return strings.Count(dump, "queue.(*GroupCommit).commitBatch(") >= n
	}, 10*time.Second, 10*time.Millisecond, "%d lanes never started a transaction", n)
}
