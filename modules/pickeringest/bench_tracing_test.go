package pickeringest_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/platform/benchdoc"
	"github.com/eats/eats-orders-tracking/platform/tracing/otlpsink"
)

// tracingHeading is the docs/benchmarks.md section BENCH_TRACING_OUT gets.
const tracingHeading = "## Tracing cost: bench:ingest"

// tracingModes are the ingest phase's variants: off, the sampler we
// recommend, and the SDK's default.
var tracingModes = []struct{ name, sampler, arg string }{
	{"off", "", ""},
	{"10%", "parentbased_traceidratio", "0.1"},
	{"always", "parentbased_always_on", ""},
}

// benchTracingCost is BENCH_TRACING=1: the ingest phase (benchIngest) with
// tracing off, at 10% and always-on, BENCH_TRACING_ROUNDS (3) rounds, the
// order turning by one each round, exporting OTLP/HTTP to a sink on
// loopback in this process; medians, the loss against off, and the spans
// the sink received per mode (none when off, some when on: a tracer left
// silently off cannot pass for "no cost"). The endpoint goes in through
// the service's environment (config.Environment, which platform/tracing
// reads); the sampler through the process environment, because the SDK
// reads OTEL_TRACES_SAMPLER(_ARG) there itself.
func benchTracingCost(b *testing.B, cfg benchConfig, events []pickeringest.Event) {
	for _, name := range []string{"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"} {
		require.Empty(b, os.Getenv(name), "%s is set: each mode sets its own sampler, unset it", name)
	}
	sink, err := otlpsink.Start()
	require.NoError(b, err)
	defer func() { require.NoError(b, sink.Close()) }()
	rounds := envInt(b, "BENCH_TRACING_ROUNDS", 3)
	rates := map[string][]float64{}
	received := map[string]otlpsink.Stats{}
	cpuPerEvent := map[string][]float64{}
	load0 := loadavg()
	for r := 1; r <= rounds; r++ {
		// Each round starts one mode later, so no mode always runs first
		// (after the previous round's databases were dropped) or last.
		for i := range tracingModes {
			m := tracingModes[(i+r-1)%len(tracingModes)]
			mcfg := cfg
			mcfg.env = maps.Clone(cfg.env)
			if m.sampler != "" {
				mcfg.env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = sink.URL()
				mcfg.env["OTEL_TRACES_SAMPLER"], mcfg.env["OTEL_TRACES_SAMPLER_ARG"] = m.sampler, m.arg // for the "tracing on" log line
				require.NoError(b, os.Setenv("OTEL_TRACES_SAMPLER", m.sampler))
				require.NoError(b, os.Setenv("OTEL_TRACES_SAMPLER_ARG", m.arg))
			}
			before, cpu0 := sink.Stats(), processCPU(b)
			v := benchIngest(b, mcfg, events) // stops the app, which flushes its spans
			got, cpu := sink.Stats().Sub(before), processCPU(b)-cpu0
			require.NoError(b, errors.Join(os.Unsetenv("OTEL_TRACES_SAMPLER"), os.Unsetenv("OTEL_TRACES_SAMPLER_ARG")))
			if m.sampler == "" {
				require.Zero(b, got.Spans, "tracing off, yet the sink received spans")
			} else {
				require.Positive(b, got.Spans, "tracing %s: the sink received no spans: nothing was traced", m.name)
			}
			rates[m.name] = append(rates[m.name], v)
			cpuPerEvent[m.name] = append(cpuPerEvent[m.name], float64(cpu.Microseconds())/float64(len(events)))
			sum := received[m.name]
			received[m.name] = otlpsink.Stats{Requests: sum.Requests + got.Requests, Spans: sum.Spans + got.Spans, Bytes: sum.Bytes + got.Bytes}
			fmt.Fprintf(os.Stderr, "round %d/%d tracing %-6s: %.0f events/s, %.0f µs CPU/event, %d spans (load %s)\n",
				r, rounds, m.name, v, float64(cpu.Microseconds())/float64(len(events)), got.Spans, loadavg())
		}
	}
	text := tracingCostMarkdown(cfg, rounds, rates, cpuPerEvent, received, [2]string{load0, loadavg()})
	fmt.Fprintln(os.Stderr, "\n"+text)
	if out := os.Getenv("BENCH_TRACING_OUT"); out != "" {
		require.NoError(b, benchdoc.WriteSection(out, tracingHeading, text))
	}
}

func medianOf(xs []float64) float64 {
	v := slices.Sorted(slices.Values(xs))
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func tracingCostMarkdown(cfg benchConfig, rounds int, rates, cpuPerEvent map[string][]float64, received map[string]otlpsink.Stats, load [2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", tracingHeading)
	fmt.Fprintf(&b, "Run %s (`go tool task bench:tracing`, i.e. `BENCH_TRACING=1` bench:ingest): the ingest phase of bench:ingest — %d events over %d orders "+
		"as River jobs inserted up front in SQL (so no insert spans: a `river.work/picker_order` span per job and a `queue.group_commit` span per transaction), "+
		"worked by the platform and picker-ingest modules in-process on a fresh database each time, Workers %d, commit lanes %d, DATABASE_MAX_CONNS %d — "+
		"with tracing off, at `parentbased_traceidratio` 0.1 (10%%) and at `parentbased_always_on`, exporting OTLP/HTTP protobuf to a sink on loopback in the "+
		"same process (platform/tracing/otlpsink). %d rounds of off, 10%%, always, each round starting one mode later than the one before; medians of the rounds. Spans are all the sink received, the flush on stop included. CPU per event is this process's user + system time "+
		"over the phase (start, work, stop; the sink's decoding included, PostgreSQL's not) divided by the events: less sensitive to the machine's "+
		"other load than events/s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), cfg.events, cfg.orders, cfg.workers, cfg.lanes, cfg.conns, rounds)
	fmt.Fprintf(&b, "| tracing | events/s | loss vs off | CPU per event | vs off | spans received (all rounds) | spans per event | export bytes |\n"+
		"|---|---|---|---|---|---|---|---|\n")
	off, offCPU := medianOf(rates["off"]), medianOf(cpuPerEvent["off"])
	var loss10 float64
	for _, m := range tracingModes {
		v := medianOf(rates[m.name])
		if m.sampler == "" {
			fmt.Fprintf(&b, "| off | %.0f | — | %.0f µs | — | — | — | — |\n", v, offCPU)
			continue
		}
		loss := 100 * (off - v) / off
		if m.name == "10%" {
			loss10 = loss
		}
		got, c := received[m.name], medianOf(cpuPerEvent[m.name])
		fmt.Fprintf(&b, "| %s | %.0f | %.1f%% | %.0f µs | %+.1f%% | %d in %d exports | %.3f | %.1f MB |\n",
			m.name, v, loss, c, 100*(c/offCPU-1), got.Spans, got.Requests, float64(got.Spans)/float64(rounds*cfg.events), float64(got.Bytes)/1e6)
	}
	b.WriteString("\nRounds (events/s off / 10% / always): ")
	for i := range rounds {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%.0f / %.0f / %.0f", rates["off"][i], rates["10%"][i], rates["always"][i])
	}
	fmt.Fprintf(&b, ". 1-minute load average %s before, %s after.\n\n", load[0], load[1])
	verdict := "reached"
	if loss10 > 5 {
		verdict = "**not reached**"
	}
	fmt.Fprintf(&b, "Target: events/s lost at 10%% sampling ≤ 5%%: %.1f%% — %s.\n", loss10, verdict)
	return b.String()
}

// processCPU is this process's user + system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
