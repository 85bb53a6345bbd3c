package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eats/eats-orders-tracking/platform/tracing/otlpsink"
)

// tracingHeading is the docs/benchmarks.md section -tracing writes.
const tracingHeading = "## Tracing cost: bench:tracking"

// tracingCacheMaxAge is TRACKING_CACHE_MAX_AGE for every instance under
// -tracing: longer than the benchmark, so no instance re-reads its state
// (seconds of CPU) during a measured run. At the default 5 minutes the
// instances, started together, re-read together, inside whichever run was
// on (round 3's 10% run, twice).
const tracingCacheMaxAge = time.Hour

// tracingMaxConns is DATABASE_MAX_CONNS for every instance under -tracing:
// five instances at the default 20, beside the floor's pool, would pass
// PostgreSQL's default max_connections (100) while their caches fill. Once
// the memo is warm, an answer reads no row.
const tracingMaxConns = 12

// tracingSamplers are the traced variants -tracing adds beside the plain
// endpoint (tracing off): the ratio the target names, the SDK's default,
// and the ratio the README suggests for the tracking route.
var tracingSamplers = []struct{ name, sampler, arg string }{
	{"10%", "parentbased_traceidratio", "0.1"},
	{"always", "parentbased_always_on", ""},
	{"1%", "parentbased_traceidratio", "0.01"},
}

// controlName is the second instance with tracing off. It differs from
// "off" in nothing but being another process measured at other moments, so
// what it "loses" against off is the noise floor of this machine and
// method: a traced instance's loss means something only above it.
const controlName = "off again"

// tracingBench is -tracing: the plain endpoint ("off"), a second plain
// instance (controlName), and one instance per sampler, each measured in
// turn, several short rounds.
type tracingBench struct {
	modes []*mode // off, off again, then tracingSamplers in order
}

// mode is one instance of the service under -tracing.
type mode struct {
	name string
	url  string // the tracking endpoint
	pid  int
	runs []wrkResult
	// cpu is the process's CPU time (user + system) during its own runs,
	// not while it idles through the others' (its background work, and
	// whatever falls into that time, is the same with or without tracing).
	// Throughput follows whatever else the shared machine runs; the
	// service's own CPU per request much less so.
	cpu time.Duration
	// sink receives a traced instance's spans (nil when tracing is off),
	// so the spans it sent prove it traced.
	sink           *otlpsink.Sink
	before, during otlpsink.Stats
}

// cpuTime reads utime + stime from /proc/<pid>/stat (Linux; clock ticks of
// 1/100 s, the USER_HZ every Linux build exposes).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("CPU time of the service (pid %d): %w", pid, err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("CPU time of the service (pid %d): short /proc stat %q", pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("CPU time of the service (pid %d): %w", pid, err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// startTraced starts, beside the plain endpoint (process offPID at offURL),
// a second plain instance and one per sampler, with the plain endpoint's
// environment plus, for the traced ones, the OTLP variables. They run for
// the whole benchmark (each loads its own cache first), idle while another
// one is measured.
func startTraced(bin string, env []string, offPID int, offURL string) (*tracingBench, func(), error) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if os.Getenv(name) != "" {
			return nil, nil, fmt.Errorf("-tracing: %s is set here, so the plain endpoint (\"off\") would trace too: unset it", name)
		}
	}
	tb := &tracingBench{modes: []*mode{{name: "off", url: offURL, pid: offPID}}}
	var stops []func()
	stop := func() {
		for _, f := range slices.Backward(stops) {
			f()
		}
	}
	start := func(m *mode, otel ...string) error {
		addr := freeAddr()
		cmd := command(bin, "serve")
		cmd.Env = append(append(slices.Clone(env), "HTTP_ADDR="+addr), otel...)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start the service (%s): %w", m.name, err)
		}
		stops = append(stops, func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
		m.pid, m.url = cmd.Process.Pid, "http://"+addr+trackingPath
		tb.modes = append(tb.modes, m)
		if err := waitUp("http://" + addr + "/readyz"); err != nil {
			return fmt.Errorf("the service (%s): %w", m.name, err)
		}
		return nil
	}
	if err := start(&mode{name: controlName}); err != nil {
		stop()
		return nil, nil, err
	}
	for _, s := range tracingSamplers {
		sink, err := otlpsink.Start()
		if err != nil {
			stop()
			return nil, nil, err
		}
		stops = append(stops, func() { _ = sink.Close() })
		otel := []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + sink.URL(), "OTEL_TRACES_SAMPLER=" + s.sampler}
		if s.arg != "" {
			otel = append(otel, "OTEL_TRACES_SAMPLER_ARG="+s.arg)
		}
		if err := start(&mode{name: s.name, sink: sink}, otel...); err != nil {
			stop()
			return nil, nil, err
		}
	}
	return tb, stop, nil
}

// batchDelay covers the SDK's export schedule (OTEL_BSP_SCHEDULE_DELAY,
// 5 s by default): a run's last spans reach the sink within it.
const batchDelay = 6 * time.Second

// measure warms every instance up, runs o.rounds rounds of one o.duration
// run each, in an order that turns every round (off, off again, 10%,
// always, 1%; then off again, 10%, always, 1%, off; ...), so that no instance
// always runs first or after the same one, and returns the section.
func (tb *tracingBench) measure(o options, wrkArgs func(time.Duration, string) []string, wrkCmd string) (string, error) {
	if o.warmup > 0 {
		step("warm-up " + o.warmup.String() + " each")
		for _, m := range tb.modes {
			if _, err := runWrk(wrkArgs(o.warmup, m.url)); err != nil {
				return "", err
			}
		}
	}
	time.Sleep(batchDelay) // the warm-up's last batch
	for _, m := range tb.modes {
		if m.sink != nil {
			m.before = m.sink.Stats()
		}
	}
	load0 := loadAvg()
	for r := range o.rounds {
		step(fmt.Sprintf("round %d/%d", r+1, o.rounds))
		for i := range tb.modes {
			m := tb.modes[(r+i)%len(tb.modes)]
			before, err := cpuTime(m.pid)
			if err != nil {
				return "", err
			}
			w, err := runWrk(wrkArgs(o.duration, m.url))
			if err != nil {
				return "", fmt.Errorf("%s: %w", m.name, err)
			}
			after, err := cpuTime(m.pid)
			if err != nil {
				return "", err
			}
			m.cpu += after - before
			m.runs = append(m.runs, w)
			fmt.Printf("  %-9s %6.0f req/s  p50 %-8s p99 %-9s %5.1f µs CPU/request  (load %s)\n", m.name, w.rps,
				w.p50.Round(10*time.Microsecond), w.p99.Round(10*time.Microsecond), perRequest(after-before, w.requests), loadAvg())
		}
	}
	load1 := loadAvg()
	// What each sink received, once the last batch arrived. A traced
	// instance whose sink got nothing was not tracing, and its figures
	// would pass for "no cost".
	time.Sleep(batchDelay)
	for _, m := range tb.modes {
		if m.sink == nil {
			continue
		}
		if m.during = m.sink.Stats().Sub(m.before); m.during.Spans == 0 {
			return "", fmt.Errorf("tracing %s: the sink received no spans during the rounds: the service did not trace", m.name)
		}
	}
	return tb.markdown(o, wrkCmd, [2]string{load0, load1}), nil
}

// perRequest is CPU time per request in µs.
func perRequest(cpu time.Duration, requests int) float64 {
	return float64(cpu.Microseconds()) / float64(max(1, requests))
}

func totalRequests(runs []wrkResult) int {
	n := 0
	for _, w := range runs {
		n += w.requests
	}
	return n
}

// markdown is the section.
func (tb *tracingBench) markdown(o options, wrkCmd string, load [2]string) string {
	rps := func(w wrkResult) float64 { return w.rps }
	p99 := func(w wrkResult) float64 { return float64(w.p99) }
	ms := func(ns float64) string { return fmt.Sprintf("%.2f ms", ns/1e6) }
	names := make([]string, len(tb.modes))
	for i, m := range tb.modes {
		names[i] = m.name
	}
	off := tb.modes[0]
	offRPS, offP99, offCPU := median(off.runs, rps), median(off.runs, p99), perRequest(off.cpu, totalRequests(off.runs))
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", tracingHeading)
	fmt.Fprintf(&b, "Run %s on %d CPUs (`go tool task bench:tracing`, i.e. benchtracking `-tracing`): the bench:tracking database and load "+
		"(%d orders of %d eaters, `%s`), against five instances of the service on it: tracing off (the plain endpoint), tracing off again "+
		"(a second process, the control: its difference from the first is this machine's noise), and with `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set, "+
		"at `OTEL_TRACES_SAMPLER=parentbased_traceidratio` `OTEL_TRACES_SAMPLER_ARG=0.1` (10%%), at `parentbased_always_on` (the SDK's default) "+
		"and at `parentbased_traceidratio` `0.01` (1%%). "+
		"Each traced instance exports OTLP/HTTP protobuf to its own sink on loopback (platform/tracing/otlpsink, in the driver's process: it decodes "+
		"and counts, keeps nothing). All five re-read their complete state every %s instead of every 5 minutes, so that the re-read (the same "+
		"with tracing or without) does not fall inside one instance's run, and hold %d database connections instead of 20, so that the five fit "+
		"in PostgreSQL's 100. A %s warm-up each (an eater's first answer is rendered, later ones "+
		"come from the memo), then %d rounds of %s, one run each, in an order that turns each round; medians of the rounds. "+
		"Spans are what each sink received from the first round to %s after the last (the SDK exports every 5 s). CPU per request is the "+
		"service process's user + system time during its own runs divided by the requests it answered there (a run's last partial batch, "+
		"under 512 spans, is exported after it): less sensitive to the machine's other load than requests/s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), o.orders, o.eaters, wrkCmd, tracingCacheMaxAge, tracingMaxConns, o.warmup, o.rounds,
		strings.Join(names, ", "), batchDelay)
	fmt.Fprintf(&b, "| tracing | requests/s | loss vs off | p99 | p99 vs off | CPU per request | vs off | spans received | spans per request | export bytes |\n"+
		"|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| off | %.0f | — | %s | — | %.1f µs | — | — | — | — |\n", offRPS, ms(offP99), offCPU)
	loss := map[string][2]float64{} // name → requests/s lost, CPU per request added (%)
	for _, m := range tb.modes[1:] {
		r, p, c := median(m.runs, rps), median(m.runs, p99), perRequest(m.cpu, totalRequests(m.runs))
		loss[m.name] = [2]float64{100 * (offRPS - r) / offRPS, 100 * (c/offCPU - 1)}
		spans := "— | — | —"
		if m.sink != nil {
			spans = fmt.Sprintf("%d in %d exports | %.3f | %.1f MB", m.during.Spans, m.during.Requests,
				float64(m.during.Spans)/float64(max(1, totalRequests(m.runs))), float64(m.during.Bytes)/1e6)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.1f%% | %s | %+.1f%% | %.1f µs | %+.1f%% | %s |\n",
			m.name, r, loss[m.name][0], ms(p), 100*(p/offP99-1), c, loss[m.name][1], spans)
	}
	b.WriteString("\nRounds (req/s " + strings.Join(names, " / ") + "): ")
	for i := range off.runs {
		if i > 0 {
			b.WriteString(", ")
		}
		for j, m := range tb.modes {
			if j > 0 {
				b.WriteString(" / ")
			}
			fmt.Fprintf(&b, "%.0f", m.runs[i].rps)
		}
	}
	fmt.Fprintf(&b, ". 1-minute load average %s before the rounds, %s after. A request is one server span when sampled; "+
		"spans per request under the sampler's ratio mean the SDK's queue (OTEL_BSP_MAX_QUEUE_SIZE, 2048) dropped some.\n\n", load[0], load[1])
	verdict := func(lost float64) string {
		if lost > 5 {
			return "**not reached**"
		}
		return "reached"
	}
	// Where the service is CPU-bound, +x% CPU per request is x/(1+x)
	// fewer requests/s.
	cpuLoss := func(added float64) float64 { return 100 * added / (100 + added) }
	l10, l1, ctl := loss["10%"], loss["1%"], loss[controlName]
	fmt.Fprintf(&b, "Target: requests/s lost at 10%% sampling ≤ 5%%: measured %.1f%% — %s; from the CPU per request (%+.1f%%), a CPU-bound replica "+
		"would lose %.1f%% — %s. The control (%s) measured %.1f%% and %+.1f%%: differences of that size are this machine's noise. "+
		"At 1%%: %.1f%% lost, %+.1f%% CPU per request.\n",
		l10[0], verdict(l10[0]), l10[1], cpuLoss(l10[1]), verdict(cpuLoss(l10[1])), controlName, ctl[0], ctl[1], l1[0], l1[1])
	return b.String()
}
