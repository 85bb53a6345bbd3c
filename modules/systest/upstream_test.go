//go:build system

package systest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/pickerupdater/pickerfake"
)

// upstreamExperiments makes every order quiet for 2 s stale in the statuses
// the world uses most, so the updater calls eats-picker-orders all the time.
const upstreamExperiments = `experiments:
  eats_orders_tracking_picker_statuses_timeout:
    default:
      - {status: new, timeout: 2}
      - {status: waiting_dispatch, timeout: 2}
      - {status: dispatching, timeout: 2}
      - {status: assigned, timeout: 2}
      - {status: picking, timeout: 2}
      - {status: picked_up, timeout: 2}
  eats_orders_tracking_retail_call_picker:
    default: {enabled: true}
  eats_orders_tracking_retail_contact_us:
    default: {enabled: true}
`

// breakerWatch samples the breaker gauge and the fake's hit count.
type breakerWatch struct {
	mu      sync.Mutex
	samples []breakerSample
}

type breakerSample struct {
	at    time.Time
	state float64 // 0 closed, 1 half-open, 2 open
	hits  int
}

func watchBreaker(t *testing.T, p *proc, fake *pickerfake.Server) *breakerWatch {
	w := &breakerWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m, err := p.scrape(ctx)
			if err != nil {
				continue
			}
			w.mu.Lock()
			w.samples = append(w.samples, breakerSample{at: time.Now(), state: m.sum("eot_picker_orders_breaker_state", nil), hits: fake.TotalHits()})
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *breakerWatch) between(from, to time.Time) []breakerSample {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []breakerSample
	for _, s := range w.samples {
		if !s.at.Before(from) && s.at.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

func (w *breakerWatch) last() breakerSample {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.samples) == 0 {
		return breakerSample{state: -1}
	}
	return w.samples[len(w.samples)-1]
}

// phase is one stretch of the upstream scenario and what was measured.
type phase struct {
	name          string
	from, to      time.Time
	ingestP50     time.Duration
	ingestP99     time.Duration
	ingestN       int
	track         pollStats
	hits          int
	hitsPerSecond float64
	maxBreaker    float64
	openedAfter   time.Duration // -1: never open
	hitsWhileOpen int
}

func TestPickerOrdersFaults(t *testing.T) {
	b := setup(t, options{experiments: upstreamExperiments})
	p := b.proc("eot", nil)
	p.start()
	w := b.world(30, 5)
	prod := newProducer(t, b.dsn, nil)
	poll := newPoller([]string{p.URL}, w.eaters, 50, 8)
	pollCtx, stopPolling := context.WithCancel(context.Background())
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); poll.run(pollCtx) }()
	defer func() { stopPolling(); <-pollDone }()
	breaker := watchBreaker(t, p, b.fake)
	ctx := context.Background()
	start, err := p.scrape(ctx)
	require.NoError(t, err)

	setAll := func(bh *pickerfake.Behaviour) {
		for _, o := range w.orders {
			if bh == nil {
				b.fake.Script(o.nr) // answers as an unknown order: 404, nothing applied
			} else {
				b.fake.SetBehaviour(o.nr, *bh)
			}
		}
	}
	closed := func() bool { return breaker.last().state == 0 }
	slow, garbage := pickerfake.Slow(5*time.Second), pickerfake.Garbage

	stop := startProducing(prod, 100, w.next)
	var phases []*phase
	run := func(name string, inject func(), d time.Duration) *phase {
		ph := &phase{name: name, from: time.Now()}
		inject()
		steady(d)
		ph.to = time.Now()
		phases = append(phases, ph)
		return ph
	}
	recoverUpstream := func(name string) *phase {
		ph := &phase{name: name, from: time.Now()}
		b.fake.SetDown(false)
		setAll(nil)
		waitFor(t, 45*time.Second, closed, name+": the breaker closes again once eats-picker-orders answers")
		ph.to = time.Now()
		phases = append(phases, ph)
		return ph
	}
	steady(3 * time.Second) // the first stale orders appear
	base := run("baseline (404s)", func() {}, 10*time.Second)
	down := run("down (503)", func() { b.fake.SetDown(true) }, 15*time.Second)
	recoverUpstream("recovery after down")
	slowPh := run("slow (5 s > 2 s attempt deadline)", func() { setAll(&slow) }, 15*time.Second)
	recoverUpstream("recovery after slow")
	garbagePh := run("garbage (truncated JSON)", func() { setAll(&garbage) }, 10*time.Second)
	recoverUpstream("after garbage")
	stop()

	waitDrained(t, b.db, 2*time.Minute)
	stopPolling()
	<-pollDone
	jobs := prod.jobs()
	rep := requireJobsDone(t, b.db, jobs)
	end, err := p.scrape(ctx)
	require.NoError(t, err)

	for _, ph := range phases {
		ph.ingestP50, ph.ingestP99, ph.ingestN = rep.apply(ph.from, ph.to)
		ph.track = poll.stats(ph.from, ph.to)
		ss := breaker.between(ph.from, ph.to)
		ph.openedAfter = -1
		if len(ss) > 1 {
			ph.hits = ss[len(ss)-1].hits - ss[0].hits
			ph.hitsPerSecond = float64(ph.hits) / ss[len(ss)-1].at.Sub(ss[0].at).Seconds()
			var openAt *breakerSample
			for i := range ss {
				ph.maxBreaker = max(ph.maxBreaker, ss[i].state)
				if ss[i].state == 2 && openAt == nil {
					openAt = &ss[i]
					ph.openedAfter = ss[i].at.Sub(ph.from)
				}
			}
			if openAt != nil {
				ph.hitsWhileOpen = ss[len(ss)-1].hits - openAt.hits
			}
		}
	}

	var report strings.Builder
	for _, ph := range phases {
		fmt.Fprintf(&report, "\n  %-34s %5.1fs  upstream calls %4d (%6.1f/s)  breaker max %.0f  ingest p50 %6s p99 %7s (n=%d)  tracking p50 %6s p99 %7s (n=%d, bad %d)",
			ph.name, ph.to.Sub(ph.from).Seconds(), ph.hits, ph.hitsPerSecond, ph.maxBreaker,
			ph.ingestP50.Round(time.Millisecond), ph.ingestP99.Round(time.Millisecond), ph.ingestN,
			ph.track.P50.Round(100*time.Microsecond), ph.track.P99.Round(100*time.Microsecond), ph.track.N, ph.track.Bad)
	}
	t.Logf("phases:%s", report.String())

	require.Positive(t, base.hits, "the updater never called eats-picker-orders: the scenario tests nothing")
	require.Zero(t, base.maxBreaker, "the breaker opened on 404s")
	for _, ph := range []*phase{down, slowPh} {
		require.Equal(t, 2.0, ph.maxBreaker, "%s: the breaker never opened", ph.name)
		require.Less(t, ph.openedAfter, 12*time.Second, "%s: the breaker took too long to open", ph.name)
		// Open, the breaker lets one probe through every 10 s.
		open := ph.to.Sub(ph.from) - ph.openedAfter
		require.LessOrEqual(t, ph.hitsWhileOpen, int(open/(10*time.Second))*3+3,
			"%s: %d calls in %s while the breaker was open: the updater does not back off", ph.name, ph.hitsWhileOpen, open)
	}
	require.Zero(t, garbagePh.maxBreaker, "malformed answers come from an upstream that is up: they must not open the breaker")
	malformed := end.sum("eot_picker_refresh_total", map[string]string{"outcome": "malformed"}) -
		start.sum("eot_picker_refresh_total", map[string]string{"outcome": "malformed"})
	require.Positive(t, malformed, "no malformed answer was counted")
	for _, ph := range []*phase{down, slowPh, garbagePh} {
		require.Zero(t, ph.track.Bad, "%s: tracking failed", ph.name)
		require.LessOrEqual(t, ph.ingestP99, 3*base.ingestP99+250*time.Millisecond,
			"%s: ingest slowed down (p99 %s, baseline %s)", ph.name, ph.ingestP99, base.ingestP99)
		require.LessOrEqual(t, ph.track.P99, 3*base.track.P99+100*time.Millisecond,
			"%s: tracking slowed down (p99 %s, baseline %s)", ph.name, ph.track.P99, base.track.P99)
	}
	// Nothing eats-picker-orders said was applied (it knew no order, or
	// answered garbage), so the tables are exactly the events' model.
	m := requireTablesMatch(t, b.db, jobs)
	views := b.requireViews(m, w.eaters, 10*time.Second, p)
	require.Zero(t, end.count5xx(), "5xx answers counted by the service")
	p.requireAlive(t)
	result(t, "%d events, all completed, tables = model, %d tracking answers = model; breaker opened %s after the upstream went down and %s after it turned slow, "+
		"calls while open: %d in %s and %d in %s (baseline %.1f calls/s); garbage: %.0f malformed answers, breaker stayed closed; "+
		"ingest p99 baseline/down/slow/garbage %s/%s/%s/%s; tracking p99 %s/%s/%s/%s; phases:%s",
		len(jobs), views, down.openedAfter.Round(100*time.Millisecond), slowPh.openedAfter.Round(100*time.Millisecond),
		down.hitsWhileOpen, (down.to.Sub(down.from) - down.openedAfter).Round(time.Second),
		slowPh.hitsWhileOpen, (slowPh.to.Sub(slowPh.from) - slowPh.openedAfter).Round(time.Second), base.hitsPerSecond, malformed,
		base.ingestP99.Round(time.Millisecond), down.ingestP99.Round(time.Millisecond), slowPh.ingestP99.Round(time.Millisecond), garbagePh.ingestP99.Round(time.Millisecond),
		base.track.P99.Round(100*time.Microsecond), down.track.P99.Round(100*time.Microsecond), slowPh.track.P99.Round(100*time.Microsecond), garbagePh.track.P99.Round(100*time.Microsecond),
		report.String())
}
