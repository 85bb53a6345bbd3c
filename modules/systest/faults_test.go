//go:build system

package systest

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
)

// The fault scenarios. Each runs a producer at a steady rate through the
// fault, waits for the queues to drain, then checks every event against
// the model and every eater's tracking answer against the model's view.
// The ones that restart shared services are not parallel.

// steady keeps the load running for d: a phase of the scenario, not a wait
// for a result (results are awaited by polling with a deadline).
func steady(d time.Duration) { time.Sleep(d) }

// startProducing runs prod in the background; the returned stop ends the
// emission and waits until every emitted event is inserted.
func startProducing(prod *producer, rate float64, next func() job) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		prod.run(ctx, rate, next)
	}()
	return func() {
		cancel()
		<-done
	}
}

// readyWatch polls /readyz every 50 ms and remembers what it saw.
type readyWatch struct {
	p *proc

	mu      sync.Mutex
	last    bool
	downs   int // answers other than 200 (errors included)
	firstDn time.Time
	lastDn  time.Time
}

func watchReady(t *testing.T, p *proc) *readyWatch {
	w := &readyWatch{p: p, last: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	client := &http.Client{Timeout: time.Second}
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ok := false
			if resp, err := client.Get(p.URL + "/readyz"); err == nil {
				ok = resp.StatusCode == http.StatusOK
				_ = resp.Body.Close()
			}
			w.mu.Lock()
			w.last = ok
			if !ok {
				if w.downs == 0 {
					w.firstDn = time.Now()
				}
				w.downs++
				w.lastDn = time.Now()
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *readyWatch) state() (up bool, downs int, firstDown, lastDown time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.downs, w.firstDn, w.lastDn
}

func TestPostgresRestart(t *testing.T) {
	b := setup(t, options{})
	p := b.proc("eot", nil)
	p.start()
	w := b.world(40, 5)
	prod := newProducer(t, b.dsn, nil)
	ready := watchReady(t, p)

	began := time.Now()
	stop := startProducing(prod, 100, w.next)
	steady(8 * time.Second)
	up, downs, _, _ := ready.state()
	require.True(t, up && downs == 0, "not ready before the restart")

	restartedAt := time.Now()
	took := restartPostgres(t)
	// The service must notice (readyz false) and recover by itself.
	waitFor(t, time.Minute, func() bool {
		up, downs, _, _ := ready.state()
		return downs > 0 && up
	}, "/readyz false during the restart, then true again")
	_, downs, firstDown, lastDown := ready.state()
	recovered := time.Now()
	steady(8 * time.Second)
	stop()

	drained := waitDrained(t, b.db, 3*time.Minute)
	jobs := prod.jobs()
	rep := requireJobsDone(t, b.db, jobs)
	m := requireTablesMatch(t, b.db, jobs)
	views := b.requireViews(m, w.eaters, 10*time.Second, p)
	p.requireAlive(t)
	_, failures := prod.stats()
	b50, b99, _ := rep.apply(began, restartedAt)
	a50, a99, _ := rep.apply(recovered.Add(2*time.Second), time.Now())
	result(t, "apply latency before the restart p50 %s p99 %s; from 2 s after recovery p50 %s p99 %s", b50, b99, a50, a99)
	result(t, "restart took %s; /readyz false for %s (%d polls, first %s after the restart began), ready again %s after it began; "+
		"%d events produced (%d inserts retried by the producer, %d inserted twice), %d jobs retried by River (max attempt %d); "+
		"drained %s after the load; apply p50 %s p99 %s; tables = model (%d picker orders, %d phones, %d orders); %d tracking answers = model",
		took.Round(time.Millisecond), lastDown.Sub(firstDown).Round(time.Millisecond), downs, firstDown.Sub(restartedAt).Round(time.Millisecond),
		lastDown.Sub(restartedAt).Round(time.Millisecond),
		len(jobs), failures, rep.Duplicates, rep.Retried, rep.MaxAttempt, drained.Round(time.Millisecond),
		rep.ApplyP50.Round(time.Millisecond), rep.ApplyP99.Round(time.Millisecond), len(m.picker), len(m.phones), len(m.orders), views)
}

func TestRedisRestart(t *testing.T) {
	b := setup(t, options{})
	p := b.proc("eot", nil)
	p.start()
	w := b.world(40, 5)
	prod := newProducer(t, b.dsn, nil)
	poll := newPoller([]string{p.URL}, w.eaters, 50, 8)
	pollCtx, stopPolling := context.WithCancel(context.Background())
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); poll.run(pollCtx) }()
	defer func() { stopPolling(); <-pollDone }()
	ctx := context.Background()

	// Redis up: the phone cache fills.
	stop := startProducing(prod, 100, w.next)
	steady(6 * time.Second)
	stop()
	waitDrained(t, b.db, time.Minute)
	m := requireTablesMatch(t, b.db, prod.jobs())
	b.requireViews(m, w.eaters, 10*time.Second, p)
	before, err := p.scrape(ctx)
	require.NoError(t, err)

	// Redis down: events keep coming, phones are written to PostgreSQL
	// only, and tracking must answer from PostgreSQL.
	stopRedis(t)
	downAt := time.Now()
	stop = startProducing(prod, 100, w.next)
	steady(6 * time.Second)
	stop()
	waitDrained(t, b.db, time.Minute)
	m = requireTablesMatch(t, b.db, prod.jobs())
	viewsDown := b.requireViews(m, w.eaters, 10*time.Second, p)
	down := poll.stats(downAt, time.Now())
	during, err := p.scrape(ctx)
	require.NoError(t, err)
	lookupErrors := during.sum("eot_picker_phone_cache_total", map[string]string{"result": "error"}) -
		before.sum("eot_picker_phone_cache_total", map[string]string{"result": "error"})
	writeErrors := during.sum("eot_picker_phone_cache_write_errors_total", nil) - before.sum("eot_picker_phone_cache_write_errors_total", nil)
	require.Positive(t, lookupErrors, "no phone lookup met the stopped Redis: the test did not exercise the fallback")
	require.Positive(t, writeErrors, "no phone cache write met the stopped Redis")

	// Redis back (empty): the service uses it again by itself.
	startRedis(t)
	upAt := time.Now()
	stop = startProducing(prod, 100, w.next)
	steady(3 * time.Second)
	settled, err := p.scrape(ctx)
	require.NoError(t, err)
	steady(4 * time.Second)
	stop()
	waitDrained(t, b.db, time.Minute)
	jobs := prod.jobs()
	rep := requireJobsDone(t, b.db, jobs)
	m = requireTablesMatch(t, b.db, jobs)
	viewsUp := b.requireViews(m, w.eaters, 10*time.Second, p)
	after, err := p.scrape(ctx)
	require.NoError(t, err)
	errorsAfter := after.sum("eot_picker_phone_cache_total", map[string]string{"result": "error"}) -
		settled.sum("eot_picker_phone_cache_total", map[string]string{"result": "error"})
	usedAfter := after.sum("eot_picker_phone_cache_total", map[string]string{"result": "hit"}) +
		after.sum("eot_picker_phone_cache_total", map[string]string{"result": "miss"}) -
		settled.sum("eot_picker_phone_cache_total", map[string]string{"result": "hit"}) -
		settled.sum("eot_picker_phone_cache_total", map[string]string{"result": "miss"})
	require.Zero(t, errorsAfter, "phone cache errors 3 s after Redis came back")
	require.Positive(t, usedAfter, "the phone cache is not used after Redis came back")

	stopPolling()
	<-pollDone
	all := poll.all()
	require.Zero(t, all.Bad, "tracking answered other than 200 (of %d)", all.N)
	require.Zero(t, after.count5xx(), "5xx answers counted by the service")
	p.requireAlive(t)
	up := poll.stats(upAt, time.Now())
	result(t, "%d events (%d jobs, all completed; tables = model); Redis down for %s: %.0f phone lookups and %.0f cache writes failed over to PostgreSQL, "+
		"%d tracking answers = model while down and %d after; tracking polls %d, none failed (p99 %s while down, %s after); "+
		"after Redis came back: 0 cache errors, %.0f lookups served by Redis",
		len(jobs), rep.Jobs, upAt.Sub(downAt).Round(time.Second), lookupErrors, writeErrors, viewsDown, viewsUp,
		all.N, down.P99.Round(time.Millisecond), up.P99.Round(time.Millisecond), usedAfter)
}

func TestKillAndRestart(t *testing.T) {
	t.Parallel() // restarts only its own process
	// The production pool size: the restart meets a backlog with it.
	b := setup(t, options{env: map[string]string{"DATABASE_MAX_CONNS": "20"}})
	p := b.proc("eot", nil)
	p.start()
	w := b.world(40, 5)
	prod := newProducer(t, b.dsn, nil)

	// 150 events/s, and a burst of 800/s from just before the kill until
	// the restart, so the dead process was busy and the new one meets a
	// backlog.
	var burst atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		prod.runVarying(ctx, func() float64 {
			if burst.Load() {
				return 800
			}
			return 150
		}, w.next)
	}()
	steady(6 * time.Second)
	burst.Store(true)
	steady(time.Second)
	p.kill()
	killedAt := time.Now()
	steady(3 * time.Second) // the producer keeps inserting while nobody works
	// Jobs the dead process was working stay "running" until River's
	// rescuer (leader only, every 30 s) finds them a minute old. (Read
	// after a pause: a COMMIT the server had received still completes.)
	var stranded []int64
	require.NoError(t, b.db.Select(&stranded, `SELECT id FROM river_job WHERE state = 'running' AND queue IN ($1, $2)`, pickerQueue, ordersQueue))
	var backlog int
	require.NoError(t, b.db.Get(&backlog, `SELECT count(*) FROM river_job WHERE state = 'available' AND queue IN ($1, $2)`, pickerQueue, ordersQueue))
	restartedAt := time.Now()
	p.spawn()
	burst.Store(false)
	p.waitReady(90 * time.Second)
	readyAfter := time.Since(restartedAt)
	steady(6 * time.Second)
	cancel()
	<-produced

	drained := waitDrained(t, b.db, 3*time.Minute)
	jobs := prod.jobs()
	rep := requireJobsDone(t, b.db, jobs)
	var rescued int
	if len(stranded) > 0 {
		require.NoError(t, b.db.Get(&rescued, `SELECT count(*) FROM river_job WHERE id = ANY($1) AND state = 'completed' AND attempt >= 2`, pq.Array(stranded)))
		require.Equal(t, len(stranded), rescued, "every job the kill stranded is rescued and completed on a later attempt")
	}
	m := requireTablesMatch(t, b.db, jobs)
	views := b.requireViews(m, w.eaters, 10*time.Second, p)
	p.requireAlive(t)
	result(t, "SIGKILL at %s during a burst, restarted %s later with %d events waiting, ready %s after the restart; %d jobs were running at the kill and were rescued and completed on attempt 2; "+
		"%d events (%d inserted twice), all completed; drained %s after the load (the rescue waits for jobs a minute old); "+
		"tables = model (%d picker orders, %d phones, %d orders); %d tracking answers = model",
		killedAt.Format(time.TimeOnly), restartedAt.Sub(killedAt).Round(time.Millisecond), backlog, readyAfter.Round(time.Millisecond), len(stranded),
		len(jobs), rep.Duplicates, drained.Round(time.Second), len(m.picker), len(m.phones), len(m.orders), views)
	// A restart meets the backlog the dead process left; it must serve as
	// soon as a start on an empty queue does (about a second), not when
	// the backlog's first jobs time out.
	require.Less(t, readyAfter, 10*time.Second,
		"the restarted process took %s to become ready with %d events waiting (database pool starved?); log %s", readyAfter, backlog, p.logPath)
}
