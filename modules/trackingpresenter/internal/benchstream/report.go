package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// round is what one round measured.
type round struct {
	baseCPU       cpuSample // no streams, idle, after the warm-up
	baseMem       memSample
	opened        time.Duration // until every stream had its first frame
	idleCPU       cpuSample
	mem           memSample // with the streams open, idle
	streamCPU     cpuSample // streams open, events inserted
	streamLat     []time.Duration
	streamMissing int
	streamFrames  int64
	ended         int64     // streams the server ended during the round
	pollCPU       cpuSample // polling, events inserted
	poll          pollResult
	pollSeen      []time.Duration
	pollMissing   int
}

type report struct {
	opts   options
	cpus   int
	date   time.Time
	load   [2]string // 1-minute load average before and after
	rounds []round
}

// quantile of unsorted durations (sorted in place); 0 when empty.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

func summary(d []time.Duration) string {
	return fmt.Sprintf("p50 %s p99 %s max %s (%d, %d over 1 s)", ms(quantile(d, 0.5)), ms(quantile(d, 0.99)), ms(quantile(d, 1)), len(d), over(d, time.Second))
}

// over counts the durations above limit.
func over(d []time.Duration, limit time.Duration) int {
	n := 0
	for _, x := range d {
		if x > limit {
			n++
		}
	}
	return n
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// per maps each round to a value; its median and the values, formatted.
func (r report) per(key func(round) float64, format string) (float64, string) {
	v := make([]float64, len(r.rounds))
	parts := make([]string, len(r.rounds))
	for i, rd := range r.rounds {
		v[i] = key(rd)
		parts[i] = fmt.Sprintf(format, v[i])
	}
	return median(v), strings.Join(parts, ", ")
}

// eventsDoc says what the events of each -events kind do to the answer.
var eventsDoc = map[string]string{
	eventsSwap:  "each a STATUS_CHANGE naming the eater's next picker, whose forwarding phone is already stored: P1 → P2, then P2 with the new picker's phone",
	eventsPhone: "each a PICKER_PHONE_FORWARDING_READY with a new phone for the eater's picker: P1 → P2, then P2 with the replaced phone",
}

func verdict(ok bool) string {
	if ok {
		return "reached"
	}
	return "**not reached**"
}

func (r report) markdown() string {
	o := r.opts
	n := float64(o.streams)
	msOf := func(d time.Duration) float64 { return float64(d) / 1e6 }
	heap, heapR := r.per(func(rd round) float64 { return (rd.mem.heapAlloc - rd.baseMem.heapAlloc) / n / 1024 }, "%.1f")
	rss, rssR := r.per(func(rd round) float64 { return (rd.mem.rss - rd.baseMem.rss) / n / 1024 }, "%.1f")
	idle, idleR := r.per(func(rd round) float64 { return (rd.idleCPU.service - rd.baseCPU.service) * 1000 / n * 1000 }, "%.1f")
	sp50, sp50R := r.per(func(rd round) float64 { return msOf(quantile(rd.streamLat, 0.5)) }, "%.1f")
	sp99, sp99R := r.per(func(rd round) float64 { return msOf(quantile(rd.streamLat, 0.99)) }, "%.1f")
	smax, smaxR := r.per(func(rd round) float64 { return msOf(quantile(rd.streamLat, 1)) }, "%.1f")
	late, lateR := r.per(func(rd round) float64 { return float64(over(rd.streamLat, time.Second)) }, "%.0f")
	miss, missR := r.per(func(rd round) float64 { return float64(rd.streamMissing) }, "%.0f")
	events, _ := r.per(func(rd round) float64 { return float64(len(rd.streamLat) + rd.streamMissing) }, "%.0f")
	sCPU, sCPUR := r.per(func(rd round) float64 { return rd.streamCPU.service }, "%.3f")
	pCPU, pCPUR := r.per(func(rd round) float64 { return rd.pollCPU.service }, "%.3f")
	rps, rpsR := r.per(func(rd round) float64 { return rd.poll.rps }, "%.0f")
	pp50, pp50R := r.per(func(rd round) float64 { return msOf(quantile(rd.poll.lat, 0.5)) }, "%.2f")
	pp99, pp99R := r.per(func(rd round) float64 { return msOf(quantile(rd.poll.lat, 0.99)) }, "%.2f")
	failed, failedR := r.per(func(rd round) float64 { return float64(rd.poll.failed) }, "%.0f")
	fp50, fp50R := r.per(func(rd round) float64 { return msOf(quantile(rd.pollSeen, 0.5)) }, "%.0f")
	fp99, fp99R := r.per(func(rd round) float64 { return msOf(quantile(rd.pollSeen, 0.99)) }, "%.0f")
	pmiss, pmissR := r.per(func(rd round) float64 { return float64(rd.pollMissing) }, "%.0f")
	idleCPU, _ := r.per(func(rd round) float64 { return rd.idleCPU.service }, "%.3f")
	genS, _ := r.per(func(rd round) float64 { return rd.streamCPU.generator }, "%.2f")
	genP, _ := r.per(func(rd round) float64 { return rd.pollCPU.generator }, "%.2f")
	baseHeap, _ := r.per(func(rd round) float64 { return rd.baseMem.heapAlloc / (1 << 20) }, "%.1f")
	baseRSS, _ := r.per(func(rd round) float64 { return rd.baseMem.rss / (1 << 20) }, "%.1f")
	baseCPU, _ := r.per(func(rd round) float64 { return rd.baseCPU.service }, "%.3f")
	memHeap, _ := r.per(func(rd round) float64 { return rd.mem.heapAlloc / (1 << 20) }, "%.1f")
	memRSS, _ := r.per(func(rd round) float64 { return rd.mem.rss / (1 << 20) }, "%.1f")
	opened, _ := r.per(func(rd round) float64 { return rd.opened.Seconds() }, "%.1f")
	var ended int64
	for _, rd := range r.rounds {
		ended += rd.ended
	}

	var b strings.Builder
	fmt.Fprintf(&b, "## bench:stream\n\n")
	fmt.Fprintf(&b, "Run %s on %d CPUs (`go tool task bench:stream -- -streams %d -rate %d -d %s -idle %s -poll-every %s -rounds %d -events %s`): "+
		"%d eaters, one retail order each in P1 (picking, no phone yet); the service (`serve`, built from the tree, GOGC as `serve` sets it) with "+
		"TRACKING_STREAMS_MAX ≥ %d and TRACKING_STREAM_MAX_AGE 24h. Each round: one stream per eater, opened until each had its first frame; "+
		"%s idle; %s of %d picker events/s inserted into River by a River client for random eaters (%s); the streams closed; then every eater polling every %s (spread evenly: the due polls handed to %d workers every millisecond, one keep-alive pool) "+
		"for %s with the same events. Insert → frame: from before the insert call to the first frame (or poll) showing that event or a later one of the eater. "+
		"CPU: the service's utime+stime from /proc; heap: HeapAlloc after a forced GC (`/debug/pprof/heap?gc=1`); per stream = (with − without streams) / %d. "+
		"Medians of %d rounds (the rounds' values in the last column). Load averages (1, 5, 15 min) %s before, %s after; the service shares the CPUs with PostgreSQL and this load generator.\n\n",
		r.date.Format("2006-01-02 15:04 MST"), r.cpus, o.streams, o.rate, o.duration, o.idle, o.pollEvery, o.rounds, o.events,
		o.streams, max(10_000, o.streams+100), o.idle, o.duration, o.rate, eventsDoc[o.events], o.pollEvery, pollWorkers, o.duration, o.streams, len(r.rounds), r.load[0], r.load[1])

	fmt.Fprintf(&b, "| measure | target | median | rounds |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| heap after GC per idle stream | ≤ 16 KiB | **%.1f KiB**: %s | %s |\n", heap, verdict(heap <= 16), heapR)
	fmt.Fprintf(&b, "| RSS per idle stream | ≤ 40 KiB | **%.1f KiB**: %s | %s |\n", rss, verdict(rss <= 40), rssR)
	fmt.Fprintf(&b, "| service CPU per 1,000 idle streams (above the idle service without streams) | — | **%.1f ms/s** (%.2f%% of a core) | %s |\n", idle, idle/10, idleR)
	fmt.Fprintf(&b, "| event insert → frame received, p50 / p99 / max (ms) | p99 ≤ 250 ms | %.1f / **%.1f** / %.1f: %s | p50 %s; p99 %s; max %s |\n",
		sp50, sp99, smax, verdict(sp99 <= 250 && miss == 0), sp50R, sp99R, smaxR)
	fmt.Fprintf(&b, "| events whose frame came after more than 1 s; with no frame (of ~%.0f per round) | 0; 0 | %.0f; %.0f | %s; %s |\n", events, late, miss, lateR, missR)
	fmt.Fprintf(&b, "| service CPU, %d streams + %d events/s (cores) | below polling's | **%.3f** | %s |\n", o.streams, o.rate, sCPU, sCPUR)
	fmt.Fprintf(&b, "| service CPU, polling every %s + %d events/s (cores) | — | **%.3f** | %s |\n", o.pollEvery, o.rate, pCPU, pCPUR)
	pollLate, _ := r.per(func(rd round) float64 { return float64(rd.poll.late) }, "%.0f")
	fmt.Fprintf(&b, "| polling: requests/s, failed, sent late (every worker busy) | — | %.0f, %.0f, %.0f | %s; %s |\n", rps, failed, pollLate, rpsR, failedR)
	fmt.Fprintf(&b, "| polling: request p50 / p99 (ms) | — | %.2f / **%.2f** | p50 %s; p99 %s |\n", pp50, pp99, pp50R, pp99R)
	fmt.Fprintf(&b, "| polling: event insert → seen, p50 / p99 (ms); not seen | — | %.0f / %.0f; %.0f | p50 %s; p99 %s; not seen %s |\n\n", fp50, fp99, pmiss, fp50R, fp99R, pmissR)

	ratio := sCPU / pCPU
	fmt.Fprintf(&b, "Verdict: streaming costs the service %.3f cores against %.3f for polling every %s (%.2f×): %s; "+
		"freshness p99 %.0f ms streaming against %.0f ms polling.\n\n", sCPU, pCPU, o.pollEvery, ratio, verdict(sCPU < pCPU), sp99, fp99)
	fmt.Fprintf(&b, "Each round runs a fresh service process. Without streams (idle, after a warm-up poll of every eater; medians): heap after GC %.1f MiB, RSS %.1f MiB, CPU %.3f cores. "+
		"With %d idle streams (medians): heap %.1f MiB, RSS %.1f MiB, CPU %.3f cores. Streams open with their first frame in %.1f s; "+
		"%d streams ended by the server across the rounds. The load generator itself used %.2f cores while streaming and %.2f while polling.\n",
		baseHeap, baseRSS, baseCPU, o.streams, memHeap, memRSS, idleCPU, opened, ended, genS, genP)
	return b.String()
}
