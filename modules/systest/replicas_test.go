//go:build system

package systest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestThreeReplicas runs three processes on one database and one Redis:
// they migrate an empty database at once, take picker events through the
// internal endpoint round-robin and order events by SQL, work the queues
// between them, run each periodic once per tick (on the leader), and give
// the same tracking answer for every eater.
func TestThreeReplicas(t *testing.T) {
	t.Parallel()
	const interval = time.Second
	b := setup(t, options{emptyDB: true, env: map[string]string{
		"PICKER_UPDATER_INTERVAL": interval.String(),
		"CLEANUP_INTERVAL":        interval.String(),
		"DATABASE_MAX_CONNS":      "8",
	}})
	var ps []*proc
	var urls []string
	for i := range 3 {
		p := b.proc(fmt.Sprintf("eot-%d", i+1), nil)
		ps = append(ps, p)
		urls = append(urls, p.URL)
	}
	for _, p := range ps { // at once: the migrations' advisory lock orders them
		p.spawn()
	}
	for _, p := range ps {
		p.waitReady(90 * time.Second)
	}
	w := b.world(40, 5)
	prod := newProducer(t, b.dsn, urls)
	poll := newPoller(urls, w.eaters, 60, 8)
	pollCtx, stopPolling := context.WithCancel(context.Background())
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); poll.run(pollCtx) }()
	defer func() { stopPolling(); <-pollDone }()

	stop := startProducing(prod, 150, w.next)
	steady(5 * time.Second) // a leader is elected and the periodics run
	var from, to time.Time
	require.NoError(t, b.db.Get(&from, `SELECT now()`))
	steady(20 * time.Second)
	require.NoError(t, b.db.Get(&to, `SELECT now()`))
	stop()
	waitDrained(t, b.db, 2*time.Minute)
	stopPolling()
	<-pollDone

	jobs := prod.jobs()
	rep := requireJobsDone(t, b.db, jobs)
	m := requireTablesMatch(t, b.db, jobs)
	// Each replica answers every eater as the model says, so they agree.
	views := b.requireViews(m, w.eaters, 10*time.Second, ps...)

	// Each periodic ran once per tick, whatever the number of replicas.
	window := to.Sub(from)
	want := int(window / interval)
	var periodic []string
	for _, kind := range []string{"picker_orders_updater", "cleanup"} {
		var created []time.Time
		require.NoError(t, b.db.Select(&created, `SELECT created_at FROM river_job WHERE kind = $1 AND created_at >= $2 AND created_at < $3 ORDER BY created_at`, kind, from, to))
		// Runs drift around their tick (the leader enqueues a late run when
		// it can), but a tick never runs twice: no three runs within one
		// interval, as there would be with a run per replica.
		minGap, minTwo := time.Hour, time.Hour
		for i := 1; i < len(created); i++ {
			minGap = min(minGap, created[i].Sub(created[i-1]))
			if i >= 2 {
				minTwo = min(minTwo, created[i].Sub(created[i-2]))
			}
		}
		require.LessOrEqual(t, len(created), want+2, "%s: %d jobs in %s with a %s interval and 3 replicas: it runs more than once per tick", kind, len(created), window, interval)
		require.GreaterOrEqual(t, len(created), want-3, "%s: %d jobs in %s with a %s interval: ticks were missed", kind, len(created), window, interval)
		require.Greater(t, minTwo, interval, "%s: three runs within %s", kind, minTwo)
		var states []string
		require.NoError(t, b.db.Select(&states, `SELECT DISTINCT state::text FROM river_job WHERE kind = $1 AND created_at >= $2 AND created_at < $3`, kind, from, to))
		periodic = append(periodic, fmt.Sprintf("%s %d runs in %s (closest two %s apart, closest three %s, states %v)",
			kind, len(created), window.Round(time.Millisecond), minGap.Round(time.Millisecond), minTwo.Round(time.Millisecond), states))
	}

	// The work and the requests were spread over the replicas.
	var spread []string
	for _, p := range ps {
		mm, err := p.scrape(context.Background())
		require.NoError(t, err)
		worked := mm.sum("eot_river_jobs_worked_total", map[string]string{"kind": pickerQueue, "outcome": "completed"}) +
			mm.sum("eot_river_jobs_worked_total", map[string]string{"kind": ordersQueue, "outcome": "completed"})
		posted := mm.sum("eot_http_request_duration_seconds_count", map[string]string{"route": "POST " + eventsPath, "code": "202"})
		tracked := mm.sum("eot_http_request_duration_seconds_count", map[string]string{"route": "GET " + trackingPath, "code": "200"})
		require.Positive(t, worked, "%s worked no event", p.name)
		require.Positive(t, posted, "%s took no event", p.name)
		require.Positive(t, tracked, "%s answered no poll", p.name)
		require.Zero(t, mm.count5xx(), "%s answered 5xx", p.name)
		spread = append(spread, fmt.Sprintf("%s worked %.0f jobs, took %.0f POSTs, answered %.0f polls", p.name, worked, posted, tracked))
		p.requireAlive(t)
	}
	require.Len(t, rep.ByReplica, 3, "jobs finished by River clients %v", rep.ByReplica)
	all := poll.all()
	require.Zero(t, all.Bad, "tracking polls failed")
	result(t, "3 replicas migrated an empty database at once; %d events (%d via POST round-robin), all completed; tables = model; "+
		"%d tracking answers (eaters × replicas) = model; %s; %s; %d polls over the replicas, none failed (p99 %s)",
		len(jobs), countQueue(jobs, pickerQueue), views, strings.Join(periodic, "; "), strings.Join(spread, "; "), all.N, all.P99.Round(time.Millisecond))
}

func countQueue(jobs []job, queue string) int {
	n := 0
	for _, j := range jobs {
		if j.Queue == queue {
			n++
		}
	}
	return n
}
