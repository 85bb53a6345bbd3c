//go:build system

package systest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// TestNoDeadlocksOnHotOrders: three replicas work 10,000 interleaved status
// and phone events of 20 hot orders (random created_at with ties,
// duplicates), inserted in random batches, so every group commit holds
// both kinds for one order and the replicas' batches overlap on the same
// rows. Every writer follows DESIGN §3.1's lock order (ascending order_nr,
// picker_orders before picker_phones), so PostgreSQL finds no deadlock: its
// counter for the database does not grow, no batch falls back to one
// commit per job, no job is retried, and the rows are the model's.
func TestNoDeadlocksOnHotOrders(t *testing.T) {
	t.Parallel()
	const (
		replicas = 3
		events   = 10_000
		orders   = 20
	)
	b := setup(t, options{env: map[string]string{"DATABASE_MAX_CONNS": "8"}})
	var ps []*proc
	for i := range replicas {
		p := b.proc(fmt.Sprintf("eot-%d", i+1), nil)
		p.spawn()
		ps = append(ps, p)
	}
	for _, p := range ps {
		p.waitReady(90 * time.Second)
	}

	// 4 eaters × 5 orders; only picker events, so every job is a write to
	// the two tables the lock order is about.
	w := b.world(4, orders/4)
	rnd := rand.New(rand.NewPCG(b.seed, 13))
	var sent []job
	for len(sent) < events {
		o := w.orders[rnd.IntN(len(w.orders))]
		switch r := rnd.Float64(); {
		case len(sent) > 20 && r < 0.07:
			sent = append(sent, w.duplicate(sent[rnd.IntN(len(sent))]))
		case r < 0.6:
			sent = append(sent, w.statusChange(o))
		default:
			sent = append(sent, w.phoneReady(o))
		}
	}

	var deadlocksBefore int64
	require.NoError(t, b.db.Get(&deadlocksBefore, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`))
	prod := newProducer(t, b.dsn, nil)
	start := time.Now()
	batches := 0
	for rest := sent; len(rest) > 0; batches++ {
		n := min(len(rest), 1+rnd.IntN(200))
		require.NoError(t, prod.insertSQL(rest[:n]))
		rest = rest[n:]
	}
	inserted := time.Since(start)
	waitDrained(t, b.db, 2*time.Minute)
	took := time.Since(start)

	jobs := prod.jobs()
	rep := requireJobsDone(t, b.db, jobs)
	var retried []string
	require.NoError(t, b.db.Select(&retried, `
		SELECT id || ' attempt ' || attempt || ': ' || coalesce(errors::text, '')
		FROM river_job
		WHERE queue = $1 AND (attempt <> 1 OR errors::text ILIKE '%deadlock%' OR errors::text LIKE '%40P01%')
		ORDER BY id LIMIT 10`, pickerQueue))
	require.Empty(t, retried, "jobs retried (a deadlock, or any other failure)")
	m := requireTablesMatch(t, b.db, jobs)

	var splits, worked float64
	for _, p := range ps {
		mm, err := p.scrape(context.Background())
		require.NoError(t, err)
		splits += mm.sum("eot_queue_group_commit_split_total", map[string]string{"queue": pickerQueue})
		worked += mm.sum("eot_river_jobs_worked_total", map[string]string{"kind": pickerQueue, "outcome": "completed"})
		p.requireAlive(t)
	}

	// A backend counts a deadlock it detects in statistics it flushes when
	// it goes idle or exits: stop the replicas and wait for their backends
	// to be gone before reading the counter.
	for _, p := range ps {
		p.stop()
	}
	require.NoError(t, prod.db.Close())
	b.db.SetMaxOpenConns(1) // the test's own backend is the one left
	pgtest.Eventually(t, 30*time.Second, func() bool {
		var n int
		require.NoError(t, b.db.Get(&n, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`))
		return n == 0
	}, "the replicas' backends gone")
	var deadlocksAfter int64
	require.NoError(t, b.db.Get(&deadlocksAfter, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`))
	require.Equal(t, deadlocksBefore, deadlocksAfter, "PostgreSQL found deadlocks in the database (group-commit splits: %.0f)", splits)
	require.Zero(t, splits, "a group commit fell back to one commit per job: one of its units failed (a deadlock)")

	result(t, "%d replicas, %d hot orders, %d picker events (%d status, %d phone, duplicates included) in %d random batches "+
		"inserted in %s, drained %s after the first insert; jobs worked %.0f, max attempt %d, group-commit splits %.0f; "+
		"pg_stat_database.deadlocks %d before, %d after; tables = model (%d picker orders, %d phones)",
		replicas, orders, len(jobs), countType(jobs, "STATUS_CHANGE"), countType(jobs, "PICKER_PHONE_FORWARDING_READY"), batches,
		inserted.Round(time.Millisecond), took.Round(time.Millisecond), worked, rep.MaxAttempt, splits,
		deadlocksBefore, deadlocksAfter, len(m.picker), len(m.phones))
}

func countType(jobs []job, eventType string) int {
	n := 0
	for _, j := range jobs {
		if j.Picker != nil && j.Picker.Type == eventType {
			n++
		}
	}
	return n
}
