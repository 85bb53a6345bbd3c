package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
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

// tracedService is the service with tracing on at one sampler, exporting
// over OTLP/HTTP to its own sink in this process, so the spans it sent
// prove it traced.
type tracedService struct {
	name, sampler, arg string
	url                string // the tracking endpoint
	sink               *otlpsink.Sink
	runs               []wrkResult
	before, during     otlpsink.Stats
}

// startTraced starts one service per sampler on the same database as the
// plain endpoint, with the same environment plus the OTLP variables.
// They run beside it for the whole benchmark (each loads its own cache
// first), idle while another one is measured.
func startTraced(bin string, env []string) ([]*tracedService, func(), error) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if os.Getenv(name) != "" {
			return nil, nil, fmt.Errorf("-tracing: %s is set here, so the plain endpoint (\"off\") would trace too: unset it", name)
		}
	}
	var (
		traced []*tracedService
		stops  []func()
	)
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
		traced = append(traced, &tracedService{name: s.name, sampler: s.sampler, arg: s.arg, sink: sink,
			url: "http://" + addr + "/eats/v1/eats-orders-tracking/v1/tracking"})
		if err := waitUp("http://" + addr + "/readyz"); err != nil {
			stop()
			return nil, nil, fmt.Errorf("the service with tracing %s: %w", s.name, err)
		}
	}
	return traced, stop, nil
}

func tracedURLs(traced []*tracedService) []string {
	var urls []string
	for _, t := range traced {
		urls = append(urls, t.url)
	}
	return urls
}

// markSpans notes the sinks' counters before the measured rounds, once
// the warm-up's last batch has arrived.
func markSpans(traced []*tracedService) {
	if len(traced) > 0 {
		time.Sleep(batchDelay)
	}
	for _, t := range traced {
		t.before = t.sink.Stats()
	}
}

// runTraced measures each traced service once, right after the plain
// endpoint in the same round.
func runTraced(traced []*tracedService, args func(target string) []string) error {
	for _, t := range traced {
		r, err := runWrk(args(t.url))
		if err != nil {
			return fmt.Errorf("tracing %s: %w", t.name, err)
		}
		t.runs = append(t.runs, r)
		fmt.Printf("  tracing %-6s %6.0f req/s  p50 %-8s p99 %s  (load %s)\n", t.name, r.rps, r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), loadAvg())
	}
	return nil
}

// batchDelay covers the SDK's export schedule (OTEL_BSP_SCHEDULE_DELAY,
// 5 s by default): the last round's spans reach the sink within it.
const batchDelay = 6 * time.Second

// settleSpans waits for the last batch and reads what each sink received
// since markSpans; a traced service whose sink got nothing was not
// tracing, and its figures would pass for "no cost".
func settleSpans(traced []*tracedService) error {
	time.Sleep(batchDelay)
	var errs []error
	for _, t := range traced {
		t.during = t.sink.Stats().Sub(t.before)
		if t.during.Spans == 0 {
			errs = append(errs, fmt.Errorf("tracing %s: the sink received no spans during the rounds: the service did not trace", t.name))
		}
	}
	return errors.Join(errs...)
}

// tracingMarkdown is the section: the plain endpoint is "off".
func tracingMarkdown(o options, off []wrkResult, traced []*tracedService, wrkCmd string, load [2]string) string {
	rps := func(w wrkResult) float64 { return w.rps }
	p99 := func(w wrkResult) float64 { return float64(w.p99) }
	ms := func(ns float64) string { return fmt.Sprintf("%.2f ms", ns/1e6) }
	offRPS, offP99 := median(off, rps), median(off, p99)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", tracingHeading)
	fmt.Fprintf(&b, "Run %s on %d CPUs (`go tool task bench:tracing`, i.e. benchtracking `-tracing`): the bench:tracking database and load "+
		"(%d orders of %d eaters, `%s`), against three instances of the service on it: tracing off (the plain endpoint), "+
		"and with `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set, at `OTEL_TRACES_SAMPLER=parentbased_traceidratio` `OTEL_TRACES_SAMPLER_ARG=0.1` (10%%) "+
		"and at `parentbased_always_on` (the SDK's default). Each traced instance exports OTLP/HTTP protobuf to its own sink on loopback "+
		"(platform/tracing/otlpsink, in the driver's process: it decodes and counts, keeps nothing). A %s warm-up each, then %d rounds of "+
		"floor, off, 10%%, always; medians of the rounds. Spans are what each sink received from the first round to %s after the last (the SDK exports every 5 s).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), o.orders, o.eaters, wrkCmd, o.warmup, o.rounds, batchDelay)
	fmt.Fprintf(&b, "| tracing | requests/s | loss vs off | p99 | p99 vs off | spans received | spans per request | export bytes |\n|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| off | %.0f | — | %s | — | — | — | — |\n", offRPS, ms(offP99))
	var loss10 float64
	for _, t := range traced {
		r, p := median(t.runs, rps), median(t.runs, p99)
		loss := 100 * (offRPS - r) / offRPS
		if t.name == "10%" {
			loss10 = loss
		}
		requests := 0
		for _, w := range t.runs {
			requests += w.requests
		}
		perReq := 0.0
		if requests > 0 {
			perReq = float64(t.during.Spans) / float64(requests)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.1f%% | %s | %+.1f%% | %d in %d exports | %.3f | %.1f MB |\n",
			t.name, r, loss, ms(p), 100*(p/offP99-1), t.during.Spans, t.during.Requests, perReq, float64(t.during.Bytes)/1e6)
	}
	b.WriteString("\nRounds (req/s off")
	for _, t := range traced {
		b.WriteString(" / " + t.name)
	}
	b.WriteString("): ")
	for i := range off {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%.0f", off[i].rps)
		for _, t := range traced {
			fmt.Fprintf(&b, " / %.0f", t.runs[i].rps)
		}
	}
	fmt.Fprintf(&b, ". 1-minute load average %s before the rounds, %s after. A request is one server span when sampled; "+
		"spans per request under the sampler's ratio mean the SDK's queue (OTEL_BSP_MAX_QUEUE_SIZE, 2048) dropped some.\n\n", load[0], load[1])
	verdict := "reached"
	if loss10 > 5 {
		verdict = "**not reached**"
	}
	fmt.Fprintf(&b, "Target: requests/s lost at 10%% sampling ≤ 5%%: %.1f%% — %s.\n", loss10, verdict)
	return b.String()
}
