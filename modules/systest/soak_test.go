//go:build system

package systest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The soak's load (the numbers).
const (
	soakPollRate  = 1000 // tracking requests per second
	soakEventRate = 200  // events per second
)

// soakSample is the heap after a forced GC and the goroutine count.
type soakSample struct {
	at         time.Duration // since the start
	heapInuse  float64
	goroutines float64
}

// soakMinWarmup is the shortest warm-up before the first sample.
const soakMinWarmup = 30 * time.Second

// TestSoak runs SOAK_DURATION (default 10 minutes; CI runs 90 s) of mixed
// traffic against one process: tracking polls at 1,000 requests/s across
// 4,000 eaters plus 200 events/s. After the warm-up (at least 30 s: the
// events create the world's picker orders and phones, fast at first and
// then ever slower, about 2,100 of 4,000 orders in 60 s and 2,700 in 90 s,
// and the state the service rightly holds grows with them; sampled from
// 10 s, a 60 s soak failed once on that growth, 13.6 → 20.8 MiB, flat
// from 42 s on) it samples the heap
// after GC and the goroutine count; they must stay flat (the last third's
// median within 20% plus a small allowance of the first third's), the
// error rate must be 0 and the process must live. SOAK_RECORD=1 writes the
// results into docs/reliability.md.
func TestSoak(t *testing.T) {
	d := 10 * time.Minute
	if s := os.Getenv("SOAK_DURATION"); s != "" {
		var err error
		d, err = time.ParseDuration(s)
		require.NoError(t, err, "SOAK_DURATION")
	}
	// At least the shortest warm-up twice: samples as long as the warm-up
	// (at 30 s the warm-up took it all and left no sample).
	require.GreaterOrEqual(t, d, 2*soakMinWarmup, "SOAK_DURATION: at least %s", 2*soakMinWarmup)
	warmup := min(max(d/6, soakMinWarmup), time.Minute)
	every := min(max((d-warmup)/12, 2*time.Second), 10*time.Second).Round(time.Second)

	b := setup(t, options{env: map[string]string{"LOG_LEVEL": "info", "DATABASE_MAX_CONNS": "20"}})
	p := b.proc("eot", nil)
	p.start()
	w := b.world(2000, 2)
	prod := newProducer(t, b.dsn, nil)
	poll := newPoller([]string{p.URL}, w.eaters, soakPollRate, 64)

	// Idle before and after: what the load leaves behind, whatever the
	// number of requests and jobs in flight while it runs.
	idleBefore, err := heapSample(p, false)
	require.NoError(t, err)
	start := time.Now()
	stop := startProducing(prod, soakEventRate, w.next)
	pollCtx, stopPolling := context.WithCancel(context.Background())
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); poll.run(pollCtx) }()
	defer func() { stopPolling(); <-pollDone }()

	var samples []soakSample
	sampleErrs := 0
	next := start.Add(warmup)
	for time.Since(start) < d {
		time.Sleep(min(time.Until(next), time.Until(start.Add(d))))
		if time.Since(start) >= d {
			break
		}
		next = next.Add(every)
		s, err := heapSample(p, len(samples) == 0)
		if err != nil {
			sampleErrs++
			t.Logf("sample at %s: %v", time.Since(start).Round(time.Second), err)
			continue
		}
		s.at = time.Since(start)
		samples = append(samples, s)
		t.Logf("%5s heap in use after GC %6.1f MiB, goroutines %4.0f", s.at.Round(time.Second), s.heapInuse/(1<<20), s.goroutines)
	}
	end := time.Now()
	stopPolling()
	<-pollDone
	stop()
	// What the service had not applied when the load stopped: it must keep
	// up with the events, not only the polls.
	var backlog int
	require.NoError(t, b.db.Get(&backlog, `SELECT count(*) FROM river_job WHERE queue IN ($1, $2) AND state NOT IN ('completed', 'cancelled', 'discarded')`, pickerQueue, ordersQueue))
	drained, drainErr := tryDrain(b.db, 3*time.Minute)
	var idleAfter soakSample
	if drainErr == nil {
		// A moment for the last requests and jobs to end; the state cache
		// keeps its entries (up to 60 s), so the heap is only reported.
		steady(5 * time.Second)
		idleAfter, err = heapSample(p, false)
		require.NoError(t, err)
	}

	jobs := prod.jobs()
	all := poll.stats(start, end)
	steady := poll.stats(start.Add(warmup), end)
	dropped, _ := poll.problems()
	_, insertFailures := prod.stats()
	metrics, err := p.scrape(context.Background())
	require.NoError(t, err)
	served5xx := metrics.count5xx()
	rows := readJobs(context.Background(), t, b.db)
	var lat []time.Duration
	cancelled := 0
	for _, r := range rows {
		if r.State == "cancelled" {
			cancelled++
		}
		if r.FinalizedAt != nil && r.CreatedAt.After(start.Add(warmup)) && r.CreatedAt.Before(end) {
			lat = append(lat, r.FinalizedAt.Sub(r.CreatedAt))
		}
	}

	heapFirst, heapLast := thirds(samples, func(s soakSample) float64 { return s.heapInuse })
	gorFirst, gorLast := thirds(samples, func(s soakSample) float64 { return s.goroutines })
	const heapSlack, goroutineSlack = 4 << 20, 20
	summary := soakSummary{
		duration: end.Sub(start), warmup: warmup, every: every, samples: len(samples),
		polls: all.N, pollRate: all.Rate, pollBad: all.Bad, dropped: dropped, p50: steady.P50, p99: steady.P99, max: steady.Max,
		events: len(jobs), eventRate: float64(len(jobs)) / end.Sub(start).Seconds(), insertFailures: insertFailures,
		cancelled: cancelled, applyP50: percentile(lat, 0.5), applyP99: percentile(lat, 0.99), backlog: backlog, drained: drained,
		served5xx: served5xx, heapFirst: heapFirst, heapLast: heapLast, gorFirst: gorFirst, gorLast: gorLast,
		idleBefore: idleBefore, idleAfter: idleAfter,
	}
	var failures []string
	fail := func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) }
	if !p.alive() || len(p.died()) > 0 {
		fail("the process died: %v", p.died())
	}
	if all.Bad > 0 {
		fail("%d of %d tracking requests failed", all.Bad, all.N)
	}
	if served5xx > 0 {
		fail("the service counted %.0f 5xx answers %v (a request the client gave up on, after 5 s, counts as a 500)", served5xx, metrics.by5xx())
	}
	if cancelled > 0 {
		fail("%d valid events cancelled", cancelled)
	}
	if sampleErrs > 0 || len(samples) < 3 {
		fail("%d heap samples, %d failed", len(samples), sampleErrs)
	}
	if heapLast > heapFirst*1.2+heapSlack {
		fail("heap in use after GC grew from %.1f MiB (first third's median) to %.1f MiB (last third's)", heapFirst/(1<<20), heapLast/(1<<20))
	}
	if gorLast > gorFirst*1.2+goroutineSlack {
		fail("goroutines grew from %.0f to %.0f", gorFirst, gorLast)
	}
	if all.Rate < 0.9*soakPollRate {
		fail("tracking polls ran at %.0f/s, not %d/s (%d not sent on time: the service did not keep up)", all.Rate, soakPollRate, dropped)
	}
	if drainErr != nil {
		fail("the events fell behind: %d waiting when the load stopped, %v", backlog, drainErr)
	} else if idleAfter.goroutines > idleBefore.goroutines+goroutineSlack {
		fail("goroutines idle before the load %.0f, idle after it %.0f: something the load started never ended", idleBefore.goroutines, idleAfter.goroutines)
	}
	summary.failures = failures
	if drainErr == nil {
		requireJobsDone(t, b.db, jobs)
		m := requireTablesMatch(t, b.db, jobs)
		summary.picker, summary.phones, summary.orders = len(m.picker), len(m.phones), len(m.orders)
	}
	result(t, "%s", summary.line())
	if os.Getenv("SOAK_RECORD") == "1" {
		require.NoError(t, recordSoak(summary, samples))
		t.Logf("results written to docs/reliability.md")
	}
	if len(failures) > 0 {
		t.Fatalf("soak failed:\n%s", strings.Join(failures, "\n"))
	}
}

// heapSample forces a GC through pprof (with the token), then reads the
// heap in use and the goroutine count from /metrics. With SOAK_PROFILE_DIR
// set it keeps the first profile and the latest one there, for
// `go tool pprof -diff_base heap-first.pb.gz heap-last.pb.gz`.
func heapSample(p *proc, first bool) (soakSample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, profile, err := p.get(ctx, "/debug/pprof/heap?gc=1", internal())
	if err != nil {
		return soakSample{}, fmt.Errorf("pprof heap: %d %w", code, err)
	}
	if code != 200 {
		return soakSample{}, fmt.Errorf("pprof heap: %d", code)
	}
	if dir := os.Getenv("SOAK_PROFILE_DIR"); dir != "" {
		name := "heap-last.pb.gz"
		if first {
			name = "heap-first.pb.gz"
		}
		if err := os.WriteFile(filepath.Join(dir, name), profile, 0o644); err != nil {
			return soakSample{}, err
		}
	}
	m, err := p.scrape(ctx)
	if err != nil {
		return soakSample{}, err
	}
	if !m.has("go_memstats_heap_inuse_bytes") || !m.has("go_goroutines") {
		return soakSample{}, fmt.Errorf("go_memstats_heap_inuse_bytes or go_goroutines missing from /metrics")
	}
	return soakSample{heapInuse: m.sum("go_memstats_heap_inuse_bytes", nil), goroutines: m.sum("go_goroutines", nil)}, nil
}

// thirds returns the medians of the first and the last third of samples.
func thirds(samples []soakSample, v func(soakSample) float64) (first, last float64) {
	n := len(samples) / 3
	if n == 0 {
		return 0, 0
	}
	med := func(ss []soakSample) float64 {
		vs := make([]float64, len(ss))
		for i, s := range ss {
			vs[i] = v(s)
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	return med(samples[:n]), med(samples[len(samples)-n:])
}

type soakSummary struct {
	duration, warmup, every     time.Duration
	samples                     int
	polls                       int
	pollRate                    float64
	pollBad, dropped            int
	p50, p99, max               time.Duration
	events                      int
	eventRate                   float64
	insertFailures, cancelled   int
	backlog                     int
	applyP50, applyP99, drained time.Duration
	failures                    []string
	idleBefore, idleAfter       soakSample
	served5xx                   float64
	heapFirst, heapLast         float64
	gorFirst, gorLast           float64
	picker, phones, orders      int
}

func (s soakSummary) line() string {
	return fmt.Sprintf("%s of load: %d tracking polls (%.0f/s, %d failed, %d not sent on time), p50 %s p99 %s max %s after warm-up; "+
		"%d events (%.0f/s, %d cancelled), apply p50 %s p99 %s, %d waiting when the load stopped, drained %s after it; heap in use after GC %.1f → %.1f MiB, goroutines %.0f → %.0f "+
		"(medians of the first and last third of %d samples every %s after a %s warm-up), idle goroutines %.0f before the load and %.0f after; tables = model (%d picker orders, %d phones, %d orders); 5xx: %.0f; failures: %v",
		s.duration.Round(time.Second), s.polls, s.pollRate, s.pollBad, s.dropped, s.p50.Round(10*time.Microsecond), s.p99.Round(10*time.Microsecond), s.max.Round(time.Millisecond),
		s.events, s.eventRate, s.cancelled, s.applyP50.Round(time.Millisecond), s.applyP99.Round(time.Millisecond), s.backlog, s.drained.Round(time.Millisecond),
		s.heapFirst/(1<<20), s.heapLast/(1<<20), s.gorFirst, s.gorLast, s.samples, s.every, s.warmup, s.idleBefore.goroutines, s.idleAfter.goroutines, s.picker, s.phones, s.orders, s.served5xx, s.failures)
}

// The soak's section of docs/reliability.md lies between these markers.
const (
	soakBegin = "<!-- soak:begin (written by TestSoak with SOAK_RECORD=1) -->"
	soakEnd   = "<!-- soak:end -->"
)

// recordSoak replaces the soak's section of docs/reliability.md.
func recordSoak(s soakSummary, samples []soakSample) error {
	path := filepath.Join(repoRoot(), "docs", "reliability.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintln(&b, soakBegin)
	fmt.Fprintf(&b, "Run of %s, `SOAK_DURATION=%s go tool task test:soak` (one process, 20 database connections, LOG_LEVEL=info):\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), s.duration.Round(time.Minute))
	fmt.Fprintln(&b, "| measure | value |")
	fmt.Fprintln(&b, "|---|---|")
	row := func(k, format string, args ...any) { fmt.Fprintf(&b, "| %s | %s |\n", k, fmt.Sprintf(format, args...)) }
	row("load", "%d tracking polls/s over 4,000 eaters + %d events/s, for %s (warm-up %s)", soakPollRate, soakEventRate, s.duration.Round(time.Second), s.warmup)
	row("tracking polls", "%d at %.0f/s; failed %d; not sent on time %d", s.polls, s.pollRate, s.pollBad, s.dropped)
	row("tracking latency after warm-up", "p50 %s, p99 %s, max %s", s.p50.Round(10*time.Microsecond), s.p99.Round(10*time.Microsecond), s.max.Round(time.Millisecond))
	row("events", "%d at %.0f/s; cancelled %d; insert retries %d", s.events, s.eventRate, s.cancelled, s.insertFailures)
	row("event applied (insert → commit)", "p50 %s, p99 %s; %d waiting when the load stopped, drained %s after it", s.applyP50.Round(time.Millisecond), s.applyP99.Round(time.Millisecond), s.backlog, s.drained.Round(time.Millisecond))
	row("heap in use after GC", "%.1f MiB (first third median) → %.1f MiB (last third median)", s.heapFirst/(1<<20), s.heapLast/(1<<20))
	row("goroutines under load", "%.0f → %.0f (first and last third medians)", s.gorFirst, s.gorLast)
	row("idle, before the load and after the drain", "goroutines %.0f → %.0f; heap in use after GC %.1f → %.1f MiB", s.idleBefore.goroutines, s.idleAfter.goroutines, s.idleBefore.heapInuse/(1<<20), s.idleAfter.heapInuse/(1<<20))
	row("5xx answers", "%.0f", s.served5xx)
	if s.picker > 0 {
		row("tables after the run", "= model (%d picker orders, %d phones, %d orders)", s.picker, s.phones, s.orders)
	}
	verdict := "pass"
	if len(s.failures) > 0 {
		verdict = "**fail**: " + strings.Join(s.failures, "; ")
	}
	row("verdict", "%s", verdict)
	fmt.Fprintf(&b, "\nSamples (heap in use after a forced GC, goroutines), every %s after the warm-up:\n\n", s.every)
	fmt.Fprintln(&b, "| t | heap MiB | goroutines |")
	fmt.Fprintln(&b, "|---|---|---|")
	for _, x := range samples {
		fmt.Fprintf(&b, "| %s | %.1f | %.0f |\n", x.at.Round(time.Second), x.heapInuse/(1<<20), x.goroutines)
	}
	fmt.Fprint(&b, soakEnd)
	text := string(doc)
	i, j := strings.Index(text, soakBegin), strings.Index(text, soakEnd)
	if i < 0 || j < i {
		text = strings.TrimRight(text, "\n") + "\n\n## Soak\n\n" + b.String() + "\n"
	} else {
		text = text[:i] + b.String() + text[j+len(soakEnd):]
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
