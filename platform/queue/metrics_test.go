package queue

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

type statsBundle struct {
	db    *sqlx.DB
	c     *stateCollector
	reg   *prometheus.Registry
	clock *fakeClock
}

func setupStats(t *testing.T, queues ...string) statsBundle {
	t.Helper()
	db, _ := pgtest.Open(t)
	c := newStateCollector(db, queues...)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.now = clock.now
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return statsBundle{db: db, c: c, reg: reg, clock: clock}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// scrape returns every sample as `name{label="v",…}` → value.
func (b statsBundle) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

func jobsKey(queue, state string) string {
	return fmt.Sprintf(`eot_river_jobs{queue=%q,state=%q}`, queue, state)
}

func lagKey(queue string) string { return fmt.Sprintf(`eot_river_queue_lag_seconds{queue=%q}`, queue) }

// insertJobs adds n jobs of queue in state; finalized states get
// finalized_at, as River's check constraint wants.
func (b statsBundle) insertJobs(t *testing.T, queue, state string, n int, age time.Duration) {
	t.Helper()
	_, err := b.db.Exec(`
		INSERT INTO river_job (kind, args, queue, state, scheduled_at, finalized_at)
		SELECT 'stats_test', '{}', $1, $2::river_job_state, now() - $3 * interval '1 second',
		       CASE WHEN $2 IN ('completed', 'cancelled', 'discarded') THEN now() END
		FROM generate_series(1, $4)`, queue, state, age.Seconds(), n)
	require.NoError(t, err)
}

// TestJobStatsZeroForKnownQueues: a queue configured here or recorded by
// River in river_queue, with no jobs, still has a series for every state.
func TestJobStatsZeroForKnownQueues(t *testing.T) {
	t.Parallel()
	b := setupStats(t, "configured_q")
	_, err := b.db.Exec(`INSERT INTO river_queue (name) VALUES ('recorded_q')`)
	require.NoError(t, err)

	got := b.scrape(t)
	require.Equal(t, 1.0, got["eot_river_stats_up{}"])
	for _, q := range []string{"configured_q", "recorded_q"} {
		for _, st := range activeStates {
			v, ok := got[jobsKey(q, st)]
			require.True(t, ok, "no series %s in %v", jobsKey(q, st), got)
			require.Zero(t, v)
		}
		v, ok := got[lagKey(q)]
		require.True(t, ok, "no series %s", lagKey(q))
		require.Zero(t, v)
	}
}

// TestJobStatsCountsActiveStatesOnly: jobs waiting or running are counted
// by state; finalized ones (completed, cancelled, discarded) are not, and
// have no series at all.
func TestJobStatsCountsActiveStatesOnly(t *testing.T) {
	t.Parallel()
	b := setupStats(t)
	b.insertJobs(t, "q", "available", 3, 10*time.Second)
	b.insertJobs(t, "q", "retryable", 2, 0)
	b.insertJobs(t, "q", "running", 1, 0)
	b.insertJobs(t, "q", "completed", 5, time.Hour)
	b.insertJobs(t, "q", "cancelled", 2, time.Hour)
	b.insertJobs(t, "q", "discarded", 1, time.Hour)
	b.insertJobs(t, "done_q", "completed", 4, time.Hour)

	got := b.scrape(t)
	want := map[string]float64{"available": 3, "retryable": 2, "running": 1, "pending": 0, "scheduled": 0}
	for st, n := range want {
		require.Equal(t, n, got[jobsKey("q", st)], st)
	}
	for k := range got {
		for _, st := range []string{"completed", "cancelled", "discarded"} {
			require.NotContains(t, k, `state="`+st+`"`)
		}
		require.NotContains(t, k, "done_q", "a queue with finalized jobs only is not known from them")
	}
	require.GreaterOrEqual(t, got[lagKey("q")], 10.0)
	require.Less(t, got[lagKey("q")], 60.0)
}

// TestJobStatsReadOncePerTTL: scrapes within the TTL share one read; the
// next read after it sees new jobs; a failed read reports up 0.
func TestJobStatsReadOncePerTTL(t *testing.T) {
	t.Parallel()
	b := setupStats(t, "q")
	require.Zero(t, b.scrape(t)[jobsKey("q", "available")])

	b.insertJobs(t, "q", "available", 2, 0)
	b.clock.advance(statsTTL - time.Millisecond)
	require.Zero(t, b.scrape(t)[jobsKey("q", "available")], "read again within the TTL")

	b.clock.advance(time.Millisecond)
	require.Equal(t, 2.0, b.scrape(t)[jobsKey("q", "available")])

	require.NoError(t, b.db.Close())
	b.clock.advance(statsTTL)
	got := b.scrape(t)
	require.Equal(t, 0.0, got["eot_river_stats_up{}"])
	require.NotContains(t, got, jobsKey("q", "available"), "no stale counts after a failed read")
}

// TestJobStatsPlanSkipsFinalizedRows: with many completed jobs kept (River
// keeps them a day), the stats query reaches the few active ones through an
// index, reading a small fraction of the table's pages, never scanning it.
func TestJobStatsPlanSkipsFinalizedRows(t *testing.T) {
	t.Parallel()
	b := setupStats(t)
	b.insertJobs(t, "q", "completed", 100_000, time.Hour)
	b.insertJobs(t, "q", "discarded", 1_000, time.Hour)
	b.insertJobs(t, "q", "available", 20, 0)
	b.insertJobs(t, "q", "retryable", 5, 0)
	_, err := b.db.Exec(`ANALYZE river_job`)
	require.NoError(t, err)
	var pages int64
	require.NoError(t, b.db.Get(&pages, `SELECT relpages FROM pg_class WHERE oid = 'river_job'::regclass`))
	require.Greater(t, pages, int64(500), "the table must be big enough for the plan to matter")

	var raw string
	require.NoError(t, b.db.Get(&raw, `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+statsQuery))
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &plans))
	require.Len(t, plans, 1)
	var usedIndex bool
	plans[0].Plan.walk(func(n planNode) {
		if n.Relation == "river_job" {
			require.NotContains(t, n.NodeType, "Seq Scan", "plan:\n%s", raw)
		}
		if strings.HasPrefix(n.Index, "river_job_") {
			usedIndex = true
		}
	})
	require.True(t, usedIndex, "no index scan on river_job; plan:\n%s", raw)
	read := plans[0].Plan.SharedHit + plans[0].Plan.SharedRead
	require.Less(t, read, pages/10, "read %d pages of %d; plan:\n%s", read, pages, raw)

	got := b.scrape(t)
	require.Equal(t, 20.0, got[jobsKey("q", "available")])
	require.Equal(t, 5.0, got[jobsKey("q", "retryable")])
}

type planNode struct {
	NodeType   string     `json:"Node Type"`
	Relation   string     `json:"Relation Name"`
	Index      string     `json:"Index Name"`
	SharedHit  int64      `json:"Shared Hit Blocks"`
	SharedRead int64      `json:"Shared Read Blocks"`
	Plans      []planNode `json:"Plans"`
}

func (n planNode) walk(f func(planNode)) {
	f(n)
	for _, c := range n.Plans {
		c.walk(f)
	}
}
