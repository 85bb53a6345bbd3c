// Command benchstream is `go tool task bench:stream` (issue 14,
// "Performance"): what one replica pays to hold live tracking streams,
// against what polling every second would cost for the same freshness.
//
// It builds the service from the working tree, re-creates and migrates a
// database, seeds -streams eaters with one retail order each in P1 (picking,
// the picker named, no phone yet). Each round runs `serve` as a fresh
// subprocess with the stream bounds raised (the fd limit is raised here
// first, so the child inherits it) and:
//
//  0. polls every eater once (warm-up), then measures the service idle
//     without streams: CPU over -idle, heap after GC and RSS (the baseline);
//  1. opens one stream per eater and waits until every stream has its
//     first frame;
//  2. idle: the service's CPU over -idle (from /proc/<pid>/stat), then its
//     heap after a forced GC (/debug/pprof/heap?gc=1) and its RSS;
//  3. events: -rate picker events/s for -d, inserted into River with the
//     River client (the real ingest path), each for a random eater and
//     each bringing a phone that encodes the eater's event number, so a
//     frame says which event it reflects: insert → frame received. By
//     default (-events swap) an event names the eater's next picker, whose
//     phone the seed holds; -events phone sends a new phone for the same
//     picker instead;
//  4. closes the streams, then polling: every eater polls every
//     -poll-every (spread evenly) for -d while the same rate of events is
//     inserted: the service's CPU, the requests' latency, insert → seen.
//
// Per stream = (with − without streams) / -streams, per round. Medians of the rounds go to -out under "## bench:stream". Run it from the
// repository root.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/eats/eats-orders-tracking/platform/benchdoc"
)

const trackingPath = "/eats/v1/eats-orders-tracking/v1/tracking"

type options struct {
	dbURL     string
	redisURL  string
	streams   int
	rate      int
	duration  time.Duration
	idle      time.Duration
	pollEvery time.Duration
	grace     time.Duration
	rounds    int
	events    string
	out       string
	heapProf  string
}

func main() {
	var o options
	flag.StringVar(&o.dbURL, "db", "postgres://root@127.0.0.1:5432/eot_bench_stream?sslmode=disable", "benchmark database (dropped and re-created)")
	flag.StringVar(&o.redisURL, "redis", "redis://127.0.0.1:6379/0", "Redis for the service's phone cache (a key prefix of its own per run)")
	flag.IntVar(&o.streams, "streams", 5000, "eaters, each with one order and one stream")
	flag.IntVar(&o.rate, "rate", 200, "picker events inserted per second, for random eaters")
	flag.DurationVar(&o.duration, "d", 30*time.Second, "duration of the events phase and of the polling phase")
	flag.DurationVar(&o.idle, "idle", 30*time.Second, "idle measurement window (above 15 s, so it holds a heartbeat per stream)")
	flag.DurationVar(&o.pollEvery, "poll-every", time.Second, "polling interval of each eater in the polling phase")
	flag.DurationVar(&o.grace, "grace", 5*time.Second, "after the events stop, how long their frames (or polls) may still arrive")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds (streams idle, streams with events, polling with events)")
	flag.StringVar(&o.events, "events", eventsSwap, "what each event is: swap (a STATUS_CHANGE naming the eater's next picker, who has a phone) or phone (a new phone for the current picker)")
	flag.StringVar(&o.heapProf, "heap-profile", "", "also save the service's heap profile (after GC) with the streams open, of the last round, to this file (go tool pprof -sample_index=inuse_space BIN FILE)")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "where to write the results")
	flag.Parse()
	if o.events != eventsSwap && o.events != eventsPhone {
		fmt.Fprintf(os.Stderr, "bench:stream: -events must be %s or %s (got %q)\n", eventsSwap, eventsPhone, o.events)
		os.Exit(2)
	}
	if o.streams < 1 || o.rate < 1 || o.rounds < 1 || o.duration <= 0 || o.idle <= 0 || o.pollEvery <= 0 {
		fmt.Fprintln(os.Stderr, "bench:stream: -streams, -rate, -rounds, -d, -idle and -poll-every must be positive")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:stream:", err)
		os.Exit(1)
	}
}

// raiseNofile lifts the soft fd limit to the hard one. Calling Setrlimit
// also stops Go from restoring the original limit in children, so the
// service inherits it: it holds one socket per stream, as does this
// process.
func raiseNofile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit NOFILE: %w", err)
	}
	if lim.Max < need {
		return fmt.Errorf("the hard fd limit (%d) is below the %d this run needs: raise it (ulimit -Hn) or pass a smaller -streams", lim.Max, need)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit NOFILE %d: %w", lim.Max, err)
	}
	return nil
}

func run(o options) error {
	if err := raiseNofile(uint64(o.streams) + 2000); err != nil { //nolint:gosec // -streams is checked positive in main
		return err
	}
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "bench-stream-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	step("build the service")
	bin := filepath.Join(tmp, "eats-orders-tracking")
	if err := command("go", "build", "-o", bin, ".").Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	token := randomHex(16)
	addr := freeAddr()
	env := append(os.Environ(),
		"DATABASE_URL="+o.dbURL, "REDIS_URL="+o.redisURL,
		// A prefix per run: a phone cached by an earlier run must not show
		// up as one of this run's events.
		"REDIS_KEY_PREFIX=eot_bench_stream_"+randomHex(4)+":",
		"LOG_LEVEL=warn", "INTERNAL_API_TOKEN="+token, "PICKER_ORDERS_URL=", "HTTP_ADDR="+addr,
		"TRACKING_STREAMS_MAX="+strconv.Itoa(max(10_000, o.streams+100)),
		"TRACKING_STREAMS_PER_EATER=5",
		// No stream may end by age during a run.
		"TRACKING_STREAM_MAX_AGE=24h")
	if err := recreate(ctx, o.dbURL); err != nil {
		return err
	}
	step("migrate")
	m := command(bin, "migrate", "up")
	m.Env, m.Stdout = env, io.Discard
	if err := m.Run(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Pickers with a phone per eater for the swaps: three times the mean
	// number of events an eater gets, plus a margin.
	swaps := 0
	if o.events == eventsSwap {
		perEater := float64(o.rate) * (o.duration + time.Second).Seconds() * float64(2*o.rounds) / float64(o.streams)
		swaps = int(3*perEater) + 20
	}
	step(fmt.Sprintf("seed %d eaters, one retail order each in P1 (%d pickers with phones each)", o.streams, swaps))
	if err := seed(ctx, o.dbURL, o.streams, swaps); err != nil {
		return err
	}

	gen, err := newGenerator(o.dbURL, o.events, o.streams, swaps)
	if err != nil {
		return err
	}
	defer gen.close()
	b := &bench{opts: o, bin: bin, env: env, token: token, base: "http://" + addr, gen: gen, track: newTracker(o.streams)}
	rep := report{opts: o, cpus: runtime.NumCPU(), load: [2]string{loadAvg(), ""}, date: time.Now().UTC()}
	for r := 1; r <= o.rounds; r++ {
		rd, err := b.round(r)
		if err != nil {
			return err
		}
		rep.rounds = append(rep.rounds, rd)
	}
	rep.load[1] = loadAvg()
	text := rep.markdown()
	fmt.Println(text)
	return benchdoc.WriteSection(o.out, "## bench:stream", text)
}

// bench is what the rounds share: the binary and its environment, the
// event generator and the tracker (event numbers go on across rounds).
type bench struct {
	opts        options
	bin         string
	env         []string
	token, base string
	gen         *generator
	track       *tracker
}

// round runs one round on a service process of its own, so its memory
// without and with streams is not that of a process an earlier round
// grew (the runtime returns freed memory to the OS only slowly).
func (b *bench) round(r int) (rd round, err error) {
	o := b.opts
	step(fmt.Sprintf("round %d/%d: start the service", r, o.rounds))
	svc := command(b.bin, "serve")
	svc.Env = b.env
	if err := svc.Start(); err != nil {
		return rd, fmt.Errorf("start the service: %w", err)
	}
	defer func() {
		_ = svc.Process.Signal(os.Interrupt)
		if werr := svc.Wait(); werr != nil && err == nil {
			err = fmt.Errorf("the service exited: %w", werr)
		}
	}()
	if err := waitUp(b.base + "/readyz"); err != nil {
		return rd, err
	}
	pid := svc.Process.Pid
	// The seed puts every eater in P1; later rounds find what the earlier
	// events left.
	step("warm-up: one poll per eater")
	if err := warm(b.base+trackingPath, o.streams, r == 1); err != nil {
		return rd, err
	}
	time.Sleep(2 * time.Second)
	step("baseline: no streams, idle " + o.idle.String())
	if rd.baseCPU, err = cpuOver(pid, o.idle, nil); err != nil {
		return rd, err
	}
	if rd.baseMem, err = memory(b.base, b.token, pid); err != nil {
		return rd, err
	}
	fmt.Printf("  CPU %.3f cores; %s\n", rd.baseCPU.service, rd.baseMem)

	step(fmt.Sprintf("open %d streams", o.streams))
	s, err := openStreams(b.base+trackingPath+"/stream", o.streams, b.track)
	if err != nil {
		return rd, err
	}
	defer s.close() // idempotent: the polling phase closes them first
	rd.opened = s.openedIn
	step("idle " + o.idle.String())
	if rd.idleCPU, err = cpuOver(pid, o.idle, nil); err != nil {
		return rd, err
	}
	if rd.mem, err = memory(b.base, b.token, pid); err != nil {
		return rd, err
	}
	fmt.Printf("  CPU %.3f cores; %s\n", rd.idleCPU.service, rd.mem)
	if o.heapProf != "" && r == o.rounds {
		if err := saveHeapProfile(b.base, b.token, o.heapProf); err != nil {
			return rd, err
		}
	}

	step(fmt.Sprintf("streams: %d events/s for %s", o.rate, o.duration))
	framesBefore := s.frames.Load()
	rd.streamCPU, err = cpuOver(pid, o.duration, func(ctx context.Context) error { return b.gen.run(ctx, o.rate, b.track) })
	if err != nil {
		return rd, err
	}
	rd.streamLat, rd.streamMissing = b.track.drain(o.grace)
	rd.streamFrames = s.frames.Load() - framesBefore
	rd.ended = s.ended.Load()
	s.close()
	fmt.Printf("  CPU %.3f cores (generator %.2f); insert→frame %s; no frame %d; streams ended by the server %d\n",
		rd.streamCPU.service, rd.streamCPU.generator, summary(rd.streamLat), rd.streamMissing, rd.ended)

	time.Sleep(2 * time.Second)
	step(fmt.Sprintf("polling: %d eaters every %s, %d events/s for %s", o.streams, o.pollEvery, o.rate, o.duration))
	p := startPolling(b.base+trackingPath, o.streams, o.pollEvery, b.track)
	rd.pollCPU, err = cpuOver(pid, o.duration, func(ctx context.Context) error { return b.gen.run(ctx, o.rate, b.track) })
	if err == nil {
		rd.pollSeen, rd.pollMissing = b.track.drain(max(o.grace, 2*o.pollEvery))
	}
	rd.poll = p.stop()
	if err != nil {
		return rd, err
	}
	fmt.Printf("  CPU %.3f cores (generator %.2f); %.0f req/s, request %s, %d failed, %d sent late; insert→seen %s; not seen %d\n",
		rd.pollCPU.service, rd.pollCPU.generator, rd.poll.rps, summary(rd.poll.lat), rd.poll.failed, rd.poll.late, summary(rd.pollSeen), rd.pollMissing)
	return rd, nil
}

func step(s string) { fmt.Printf("== %s (%s)\n", s, time.Now().Format(time.TimeOnly)) }

func command(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	return c
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// warm polls every eater once, so the answers a stream's first frame
// serves are built before the baseline. With p1 it checks the seed: each
// eater must be in P1, or the events would not change the answer.
func warm(url string, eaters int, p1 bool) error {
	next := make(chan int)
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			var err error
			for e := range next {
				if err != nil {
					continue
				}
				var body []byte
				body, err = getTracking(http.DefaultClient, url, e)
				if err == nil && p1 && !strings.Contains(string(body), `"picker_contact_us"`) {
					err = fmt.Errorf("eater %d is not in P1 (picker_contact_us): %.300s", e, body)
				}
			}
			errs <- err
		}()
	}
	for e := 1; e <= eaters; e++ {
		next <- e
	}
	close(next)
	var all []error
	for range 16 {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

func getTracking(c *http.Client, url string, eater int) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Eats-User", "user_id="+strconv.Itoa(eater))
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("eater %d: reading the answer: %w", eater, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("eater %d: %s: %.300s", eater, resp.Status, body)
	}
	return body, nil
}
