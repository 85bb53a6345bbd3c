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

// tracingSamplers are the traced variants -tracing adds beside the plain
// endpoint (tracing off): the sampler we recommend and the SDK's default.
var tracingSamplers = []struct{ name, sampler, arg string }{
	{"10%", "parentbased_traceidratio", "0.1"},
	{"always", "parentbased_always_on", ""},
}

// tracingBench is -tracing: the plain endpoint ("off") and one more
// instance of the service per sampler. A nil *tracingBench (no -tracing)
// does nothing, so main calls it unconditionally.
type tracingBench struct {
	off    procCPU
	traced []*tracedService
}

// tracedService is the service with tracing on at one sampler, exporting
// over OTLP/HTTP to its own sink in this process, so the spans it sent
// prove it traced.
type tracedService struct {
	name           string
	url            string // the tracking endpoint
	sink           *otlpsink.Sink
	runs           []wrkResult
	before, during otlpsink.Stats
	cpu            procCPU
}

// procCPU is a process's CPU time (user + system) over the measured
// rounds. Throughput follows whatever else the shared machine runs; the
// service's own CPU per request much less so.
type procCPU struct {
	pid         int
	start, used time.Duration
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

// startTraced starts one service per sampler on the same database as the
// plain endpoint (process offPID), with its environment plus the OTLP
// variables. They run beside it for the whole benchmark (each loads its own
// cache first), idle while another one is measured.
func startTraced(bin string, env []string, offPID int) (*tracingBench, func(), error) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if os.Getenv(name) != "" {
			return nil, nil, fmt.Errorf("-tracing: %s is set here, so the plain endpoint (\"off\") would trace too: unset it", name)
		}
	}
	tb := &tracingBench{off: procCPU{pid: offPID}}
	var stops []func()
	stop := func() {
		for _, f := range slices.Backward(stops) {
			f()
		}
	}
	for _, s := range tracingSamplers {
		sink, err := otlpsink.Start()
		if err != nil {
			stop()
			return nil, nil, err
		}
		stops = append(stops, func() { _ = sink.Close() })
		addr := freeAddr()
		cmd := command(bin, "serve")
		cmd.Env = append(slices.Clone(env), "HTTP_ADDR="+addr,
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+sink.URL(), "OTEL_TRACES_SAMPLER="+s.sampler)
		if s.arg != "" {
			cmd.Env = append(cmd.Env, "OTEL_TRACES_SAMPLER_ARG="+s.arg)
		}
		if err := cmd.Start(); err != nil {
			stop()
			return nil, nil, fmt.Errorf("start the service with tracing %s: %w", s.name, err)
		}
		stops = append(stops, func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
		tb.traced = append(tb.traced, &tracedService{name: s.name, sink: sink, cpu: procCPU{pid: cmd.Process.Pid},
			url: "http://" + addr + "/eats/v1/eats-orders-tracking/v1/tracking"})
		if err := waitUp("http://" + addr + "/readyz"); err != nil {
			stop()
			return nil, nil, fmt.Errorf("the service with tracing %s: %w", s.name, err)
		}
	}
	return tb, stop, nil
}

// urls are the traced instances' tracking endpoints.
func (tb *tracingBench) urls() []string {
	if tb == nil {
		return nil
	}
	var urls []string
	for _, t := range tb.traced {
		urls = append(urls, t.url)
	}
	return urls
}

// batchDelay covers the SDK's export schedule (OTEL_BSP_SCHEDULE_DELAY,
// 5 s by default): a run's last spans reach the sink within it.
const batchDelay = 6 * time.Second

// mark notes the sinks' counters and the services' CPU time before the
// measured rounds, once the warm-up's last batch has arrived.
func (tb *tracingBench) mark() error {
	if tb == nil {
		return nil
	}
	time.Sleep(batchDelay)
	var err error
	if tb.off.start, err = cpuTime(tb.off.pid); err != nil {
		return err
	}
	for _, t := range tb.traced {
		t.before = t.sink.Stats()
		if t.cpu.start, err = cpuTime(t.cpu.pid); err != nil {
			return err
		}
	}
	return nil
}

// run measures each traced instance once, right after the plain endpoint
// in the same round.
func (tb *tracingBench) run(args func(target string) []string) error {
	if tb == nil {
		return nil
	}
	for _, t := range tb.traced {
		r, err := runWrk(args(t.url))
		if err != nil {
			return fmt.Errorf("tracing %s: %w", t.name, err)
		}
		t.runs = append(t.runs, r)
		fmt.Printf("  tracing %-6s %6.0f req/s  p50 %-8s p99 %s  (load %s)\n", t.name, r.rps, r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), loadAvg())
	}
	return nil
}

// settle waits for the last batch and reads what each sink received and
// each service spent since mark. A traced instance whose sink got nothing
// was not tracing, and its figures would pass for "no cost".
func (tb *tracingBench) settle() error {
	end := func(c *procCPU) error {
		now, err := cpuTime(c.pid)
		c.used = now - c.start
		return err
	}
	if err := end(&tb.off); err != nil { // before the wait: the traced ones idle through it too
		return err
	}
	time.Sleep(batchDelay)
	var errs []error
	for _, t := range tb.traced {
		t.during = t.sink.Stats().Sub(t.before)
		if t.during.Spans == 0 {
			errs = append(errs, fmt.Errorf("tracing %s: the sink received no spans during the rounds: the service did not trace", t.name))
		}
		errs = append(errs, end(&t.cpu))
	}
	return errors.Join(errs...)
}

func totalRequests(runs []wrkResult) int {
	n := 0
	for _, w := range runs {
		n += w.requests
	}
	return n
}

// markdown is the section; off is the plain endpoint's runs.
func (tb *tracingBench) markdown(o options, off []wrkResult, wrkCmd string, load [2]string) string {
	rps := func(w wrkResult) float64 { return w.rps }
	p99 := func(w wrkResult) float64 { return float64(w.p99) }
	ms := func(ns float64) string { return fmt.Sprintf("%.2f ms", ns/1e6) }
	perReq := func(c procCPU, runs []wrkResult) float64 {
		return float64(c.used.Microseconds()) / float64(max(1, totalRequests(runs)))
	}
	offRPS, offP99, offCPU := median(off, rps), median(off, p99), perReq(tb.off, off)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", tracingHeading)
	fmt.Fprintf(&b, "Run %s on %d CPUs (`go tool task bench:tracing`, i.e. benchtracking `-tracing`): the bench:tracking database and load "+
		"(%d orders of %d eaters, `%s`), against three instances of the service on it: tracing off (the plain endpoint), "+
		"and with `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set, at `OTEL_TRACES_SAMPLER=parentbased_traceidratio` `OTEL_TRACES_SAMPLER_ARG=0.1` (10%%) "+
		"and at `parentbased_always_on` (the SDK's default). Each traced instance exports OTLP/HTTP protobuf to its own sink on loopback "+
		"(platform/tracing/otlpsink, in the driver's process: it decodes and counts, keeps nothing). A %s warm-up each, then %d rounds of "+
		"floor, off, 10%%, always; medians of the rounds. Spans are what each sink received from the first round to %s after the last "+
		"(the SDK exports every 5 s). CPU per request is the service process's user + system time over all rounds (it idles while the others run) "+
		"divided by the requests it answered: less sensitive to the machine's other load than requests/s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), o.orders, o.eaters, wrkCmd, o.warmup, o.rounds, batchDelay)
	fmt.Fprintf(&b, "| tracing | requests/s | loss vs off | p99 | p99 vs off | CPU per request | vs off | spans received | spans per request | export bytes |\n"+
		"|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| off | %.0f | — | %s | — | %.1f µs | — | — | — | — |\n", offRPS, ms(offP99), offCPU)
	var loss10, cpu10 float64
	for _, t := range tb.traced {
		r, p, c := median(t.runs, rps), median(t.runs, p99), perReq(t.cpu, t.runs)
		loss, cpuVsOff := 100*(offRPS-r)/offRPS, 100*(c/offCPU-1)
		if t.name == "10%" {
			loss10, cpu10 = loss, cpuVsOff
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.1f%% | %s | %+.1f%% | %.1f µs | %+.1f%% | %d in %d exports | %.3f | %.1f MB |\n",
			t.name, r, loss, ms(p), 100*(p/offP99-1), c, cpuVsOff, t.during.Spans, t.during.Requests,
			float64(t.during.Spans)/float64(max(1, totalRequests(t.runs))), float64(t.during.Bytes)/1e6)
	}
	b.WriteString("\nRounds (req/s off")
	for _, t := range tb.traced {
		b.WriteString(" / " + t.name)
	}
	b.WriteString("): ")
	for i := range off {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%.0f", off[i].rps)
		for _, t := range tb.traced {
			fmt.Fprintf(&b, " / %.0f", t.runs[i].rps)
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
	// Requests/s follows the collector's cycles and the machine's other
	// work from round to round, often by more than the 5% asked; the
	// service's CPU per request does not, and where the service is
	// CPU-bound +x% CPU per request is x/(1+x) fewer requests/s.
	cpuLoss := 100 * cpu10 / (100 + cpu10)
	fmt.Fprintf(&b, "Target: requests/s lost at 10%% sampling ≤ 5%%: measured %.1f%% — %s; from the CPU per request (%+.1f%%), a CPU-bound replica "+
		"would lose %.1f%% — %s. The second is the steadier figure on a shared machine.\n", loss10, verdict(loss10), cpu10, cpuLoss, verdict(cpuLoss))
	return b.String()
}
