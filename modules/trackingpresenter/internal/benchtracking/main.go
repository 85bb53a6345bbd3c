// Command benchtracking is `go tool task bench:tracking`: it seeds a
// database with 1,000,000 orders of 200,000 eaters (a tenth retail, with
// picker orders and phones), then drives three servers with wrk, one after
// the other, each request for an eater drawn at random:
//
//   - the floor: a bare net/http handler that runs one SQL query returning
//     the rows the endpoint shows (orders, picker orders, valid phones) and
//     writes them as JSON (`benchtracking floor`);
//   - the ceiling: a bare net/http handler writing one fixed P2 answer from
//     memory (`benchtracking ceiling`), what a poll served from memory
//     costs at best;
//   - the service itself (`eats-orders-tracking serve`), built from the
//     working tree, on GET /eats/v1/eats-orders-tracking/v1/tracking.
//
// Each gets the same warm-up, then every round measures each in turn
// (servers lists them: add a variant there); medians go to
// docs/benchmarks.md under "## bench:tracking", with the memory the
// service's cache then takes. Run it from the repository root.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/eats/eats-orders-tracking/platform/benchdoc"
)

type options struct {
	dbURL    string
	redisURL string
	eaters   int
	orders   int
	conns    int
	threads  int
	duration time.Duration
	warmup   time.Duration
	rounds   int
	out      string
	skipSeed bool
	floorMax int
	tracing  bool
}

func main() {
	if len(os.Args) > 1 {
		if sub, ok := map[string]func([]string) error{"floor": floor, "ceiling": ceiling}[os.Args[1]]; ok {
			if err := sub(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
				os.Exit(1)
			}
			return
		}
	}
	var o options
	flag.StringVar(&o.dbURL, "db", "postgres://root@127.0.0.1:5432/eot_bench?sslmode=disable", "benchmark database (dropped and re-created unless -skip-seed)")
	flag.StringVar(&o.redisURL, "redis", "redis://127.0.0.1:6379/0", "Redis for the service's phone cache")
	flag.IntVar(&o.eaters, "eaters", 200_000, "eaters")
	flag.IntVar(&o.orders, "orders", 1_000_000, "orders")
	flag.IntVar(&o.conns, "c", 64, "wrk connections")
	flag.IntVar(&o.threads, "t", 2, "wrk threads")
	flag.DurationVar(&o.duration, "d", 20*time.Second, "wrk duration of each measured run")
	flag.DurationVar(&o.warmup, "warmup", 10*time.Second, "unmeasured wrk run against each server first")
	flag.IntVar(&o.rounds, "rounds", 3, "measured rounds (floor, ceiling, then endpoint, each round)")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "where to write the results")
	flag.BoolVar(&o.skipSeed, "skip-seed", false, "reuse the database as seeded by a previous run")
	flag.IntVar(&o.floorMax, "floor-conns", 20, "the floor's pool size (the service's DATABASE_MAX_CONNS default)")
	flag.BoolVar(&o.tracing, "tracing", false, "measure the service with tracing off (twice), at 10%, always-on and 1% instead of the floor and the ceiling (tracing.go); writes \""+tracingHeading+"\" instead of \"## bench:tracking\"")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:tracking:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "bench-tracking-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	step("build the service")
	bin := filepath.Join(tmp, "eats-orders-tracking")
	if err := command("go", "build", "-o", bin, ".").Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	env := append(os.Environ(),
		"DATABASE_URL="+o.dbURL, "REDIS_URL="+o.redisURL, "REDIS_KEY_PREFIX=eot_bench:",
		"LOG_LEVEL=warn", "INTERNAL_API_TOKEN=", "PICKER_ORDERS_URL=")
	if !o.skipSeed {
		if err := recreate(ctx, o.dbURL); err != nil {
			return err
		}
		step("migrate")
		m := command(bin, "migrate", "up")
		m.Env, m.Stdout = env, io.Discard
		if err := m.Run(); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		step(fmt.Sprintf("seed %d orders of %d eaters", o.orders, o.eaters))
		start := time.Now()
		if err := seed(ctx, o.dbURL, o.orders, o.eaters); err != nil {
			return err
		}
		fmt.Printf("  seeded in %s\n", time.Since(start).Round(time.Second))
	}

	floorAddr, ceilAddr, svcAddr := freeAddr(), freeAddr(), freeAddr()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	floorCmd := command(self, "floor", "-addr", floorAddr, "-db", o.dbURL, "-conns", strconv.Itoa(o.floorMax))
	svcCmd := command(bin, "serve")
	svcCmd.Env = append(env, "HTTP_ADDR="+svcAddr)
	if o.tracing {
		svcCmd.Env = append(svcCmd.Env, "TRACKING_CACHE_MAX_AGE="+tracingCacheMaxAge.String(), "DATABASE_MAX_CONNS="+strconv.Itoa(tracingMaxConns))
	}
	for _, c := range []*exec.Cmd{floorCmd, svcCmd} {
		if err := c.Start(); err != nil {
			return err
		}
		defer func() { _ = c.Process.Signal(os.Interrupt); _ = c.Wait() }()
	}
	floorURL := "http://" + floorAddr + trackingPath
	svcURL := "http://" + svcAddr + trackingPath
	metricsURL := "http://" + svcAddr + "/metrics"
	if err := waitUp("http://"+svcAddr+"/readyz", floorURL); err != nil {
		return err
	}
	step("check both answer the same orders")
	if err := sameOrders(floorURL, svcURL, o.eaters); err != nil {
		return err
	}
	script := filepath.Join(tmp, "eaters.lua")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(luaScript, o.eaters)), 0o600); err != nil {
		return err
	}
	wrkArgs := func(d time.Duration, target string) []string {
		return []string{"-t", strconv.Itoa(o.threads), "-c", strconv.Itoa(o.conns), "-d", d.String(), "--latency", "-s", script, target}
	}
	wrkCmd := strings.Replace("wrk "+strings.Join(wrkArgs(o.duration, "<url>"), " "), script, "eaters.lua", 1)
	if o.tracing { // other instances and runs: bench:tracking's own figures stay as they are
		step("start the service again, off, and with tracing at " + fmt.Sprint(len(tracingSamplers)) + " samplers")
		tb, stop, err := startTraced(bin, svcCmd.Env, svcCmd.Process.Pid, svcURL)
		if err != nil {
			return err
		}
		defer stop()
		text, err := tb.measure(o, wrkArgs, wrkCmd)
		if err != nil {
			return err
		}
		fmt.Println(text)
		return benchdoc.WriteSection(o.out, tracingHeading, text)
	}
	// The ceiling writes a real P2 answer of the service, when one is found.
	p2 := filepath.Join(tmp, "p2.json")
	ceilArgs := []string{"ceiling", "-addr", ceilAddr}
	if body, err := findP2(svcURL, o.eaters); err == nil {
		if err := os.WriteFile(p2, body, 0o600); err != nil {
			return err
		}
		ceilArgs = append(ceilArgs, "-body", p2)
	} else {
		fmt.Println("  ceiling: built-in P2 answer:", err)
	}
	ceilCmd := command(self, ceilArgs...)
	if err := ceilCmd.Start(); err != nil {
		return err
	}
	defer func() { _ = ceilCmd.Process.Signal(os.Interrupt); _ = ceilCmd.Wait() }()
	ceilURL := "http://" + ceilAddr + trackingPath
	if err := waitUp(ceilURL); err != nil {
		return err
	}

	// The servers every round measures, in this order.
	servers := []*server{
		{name: "floor", label: "floor: net/http + one SQL query, JSON rows", url: floorURL},
		{name: "ceiling", label: "ceiling: net/http writing one fixed P2 answer from memory", url: ceilURL},
		{name: "endpoint", label: "endpoint: the service", url: svcURL},
	}
	if o.warmup > 0 {
		step("warm-up " + o.warmup.String() + " each")
		for _, sv := range servers {
			if _, err := runWrk(wrkArgs(o.warmup, sv.url)); err != nil {
				return err
			}
		}
	}
	load0 := loadAvg()
	hits0, err := cacheCounts(metricsURL)
	if err != nil {
		return err
	}
	for r := 1; r <= o.rounds; r++ {
		step(fmt.Sprintf("round %d/%d", r, o.rounds))
		for _, sv := range servers {
			w, err := runWrk(wrkArgs(o.duration, sv.url))
			if err != nil {
				return err
			}
			fmt.Printf("  %-9s %8.0f req/s  p50 %-8s p99 %s  (load %s)\n", sv.name, w.rps, w.p50.Round(10*time.Microsecond), w.p99.Round(10*time.Microsecond), loadAvg())
			sv.runs = append(sv.runs, w)
		}
	}
	hits1, err := cacheCounts(metricsURL)
	if err != nil {
		return err
	}
	mem, err := readGauges(metricsURL, memoryGauges)
	if err != nil {
		return err
	}
	rep := report{opts: o, servers: servers, cache: diff(hits1, hits0), memory: mem, cpus: runtime.NumCPU(), load: [2]string{load0, loadAvg()},
		wrkCmd: wrkCmd}
	text := rep.markdown()
	fmt.Println(text)
	return benchdoc.WriteSection(o.out, "## bench:tracking", text)
}

// trackingPath is the route every server answers.
const trackingPath = "/eats/v1/eats-orders-tracking/v1/tracking"

// server is one server measured in every round.
type server struct {
	name  string // short, in the progress lines and the report's lookups
	label string // the report's row
	url   string
	runs  []wrkResult
}

func step(s string) { fmt.Printf("== %s (%s)\n", s, time.Now().Format(time.TimeOnly)) }

func command(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	return c
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUp(urls ...string) error {
	deadline := time.Now().Add(time.Minute)
	for _, u := range urls {
		for {
			resp, err := http.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not up within a minute", u)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// recreate drops and creates the benchmark database.
func recreate(ctx context.Context, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return err
	}
	name := strings.Trim(u.Path, "/")
	u.Path = "/postgres"
	admin, err := sql.Open("postgres", u.String())
	if err != nil {
		return err
	}
	defer admin.Close()
	step("re-create database " + name)
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
		return err
	}
	_, err = admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	return err
}

// seedOrders, seedPickerOrders and seedPhones fill the tables with
// generate_series. Order i belongs to eater
// ((i-1) mod E)+1, so each eater has N/E orders: the last one active (a
// status cycling through the active ones), some of the one before
// delivered 5 minutes ago (still listed), the rest finished hours ago. A
// tenth of the orders (i mod 10 = 0) are retail, each with a picker order
// (active ones cycling through assigned, picking, picking, picked_up,
// paid; finished ones complete) and a phone (valid for active orders,
// expired for finished ones). Triggers are off: no change feed for a seed.
const seedOrders = `
WITH s AS (
    SELECT i, ((i - 1) % $2::int) + 1 AS eater, i > $1::int - $2::int AS active, (i > $1::int - 2 * $2::int AND i % 7 = 0) AS recent
    FROM generate_series(1, $1::int) AS i
), t AS (
    SELECT s.*,
           CASE WHEN i % 10 = 0 THEN 'retail' ELSE (ARRAY['native','native','native','shop','marketplace','pickup','native','native','native'])[i % 10] END AS flow,
           CASE WHEN active THEN (ARRAY['created','call_center_confirmed','place_confirmed','taken','arrived_to_customer'])[(i / 10) % 5 + 1]
                WHEN recent THEN 'delivered'
                WHEN i % 20 = 1 THEN 'cancelled'
                ELSE 'delivered' END AS status,
           CASE WHEN active THEN now() - make_interval(mins => (i % 50) + 1)
                WHEN recent THEN now() - interval '50 minutes'
                ELSE now() - make_interval(hours => 2 + i % 60) END AS first_at
    FROM s
)
INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at)
SELECT 'B' || lpad(i::text, 7, '0'), eater::text,
       jsonb_build_object('flow_type', flow, 'status', status,
           'place', jsonb_build_object('id', (i % 5000)::text, 'name', 'Place ' || (i % 5000), 'phone', '+7999' || lpad((i % 10000000)::text, 7, '0')))
       || CASE WHEN status IN ('taken', 'arrived_to_customer')
               THEN jsonb_build_object('courier', jsonb_build_object('name', 'Courier', 'phone', '+7998' || lpad((i % 10000000)::text, 7, '0')))
               ELSE '{}' END
       || CASE WHEN active THEN jsonb_build_object('eta', to_char((first_at + interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
               ELSE '{}' END,
       CASE WHEN recent THEN now() - interval '5 minutes' WHEN active THEN first_at + interval '1 minute' ELSE first_at + interval '40 minutes' END,
       first_at
FROM t`

const seedPickerOrders = `
WITH r AS (
    SELECT order_nr, (substr(order_nr, 2)::int) AS i, payload->>'status' AS status FROM orders WHERE payload->>'flow_type' = 'retail'
), p AS (
    SELECT order_nr, i, 'picker-' || (i % 3000) AS picker,
           CASE WHEN status IN ('delivered', 'cancelled') THEN 'complete'
                ELSE (ARRAY['assigned','picking','picking','picked_up','paid'])[(i / 10) % 5 + 1] END AS pstatus
    FROM r
)
INSERT INTO picker_orders (order_nr, payload, status_event_at)
SELECT order_nr,
       jsonb_build_object('picker_id', picker, 'status', pstatus, 'status_history',
           jsonb_build_object('new_at', to_char(now() AT TIME ZONE 'UTC' - interval '30 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                              'assigned_at', to_char(now() AT TIME ZONE 'UTC' - interval '25 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
           || CASE WHEN pstatus IN ('picking', 'picked_up', 'paid', 'complete') THEN jsonb_build_object('picking_at', to_char(now() AT TIME ZONE 'UTC' - interval '20 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) ELSE '{}' END
           || CASE WHEN pstatus IN ('picked_up', 'paid', 'complete') THEN jsonb_build_object('picked_up_at', to_char(now() AT TIME ZONE 'UTC' - interval '10 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) ELSE '{}' END
           || CASE WHEN pstatus IN ('paid', 'complete') THEN jsonb_build_object('paid_at', to_char(now() AT TIME ZONE 'UTC' - interval '5 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) ELSE '{}' END),
       now()
FROM p`

const seedPhones = `
INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at)
SELECT order_nr, payload->>'picker_id', '+7997' || lpad(substr(order_nr, 2), 7, '0') || ',,' || (substr(order_nr, 2)::int % 1000),
       CASE WHEN payload->>'status' = 'complete' THEN now() - interval '1 hour' ELSE now() + interval '1 day' END, now()
FROM picker_orders`

func seed(ctx context.Context, dbURL string, orders, eaters int) error {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	// Triggers off: a seed needs no change feed.
	if _, err := tx.ExecContext(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if _, err := tx.ExecContext(ctx, seedOrders, orders, eaters); err != nil {
		return fmt.Errorf("seed orders: %w", err)
	}
	if _, err := tx.ExecContext(ctx, seedPickerOrders); err != nil {
		return fmt.Errorf("seed picker orders: %w", err)
	}
	if _, err := tx.ExecContext(ctx, seedPhones); err != nil {
		return fmt.Errorf("seed phones: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "VACUUM ANALYZE orders, picker_orders, picker_phones")
	return err
}

// luaScript draws an eater at random for every request, each wrk thread
// with its own seed.
const luaScript = `
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end
function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end
request = function()
  return wrk.format("GET", nil, {["X-Eats-User"] = "user_id=" .. math.random(1, %d)})
end
`

type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
	requests int
}

var (
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	reReqs    = regexp.MustCompile(`(\d+) requests in`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reErrors  = regexp.MustCompile(`Socket errors: .*`)
)

func runWrk(args []string) (wrkResult, error) {
	out, err := exec.Command("wrk", args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	s := string(out)
	if m := reNon2xx.FindStringSubmatch(s); m != nil {
		return wrkResult{}, fmt.Errorf("wrk: %s non-2xx answers\n%s", m[1], s)
	}
	if m := reErrors.FindString(s); m != "" {
		fmt.Println("  wrk:", m)
	}
	var r wrkResult
	m := reRPS.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("wrk output without Requests/sec:\n%s", s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := reReqs.FindStringSubmatch(s); m != nil {
		r.requests, _ = strconv.Atoi(m[1])
	}
	for _, m := range reLatency.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if r.p50 == 0 || r.p99 == 0 {
		return r, fmt.Errorf("wrk output without latency distribution:\n%s", s)
	}
	return r, nil
}

// sameOrders checks, for a sample of eaters, that the floor and the
// endpoint list the same orders in the same order.
func sameOrders(floorURL, svcURL string, eaters int) error {
	get := func(u string, eater int) ([]string, error) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-Eats-User", "user_id="+strconv.Itoa(eater))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", u, resp.Status)
		}
		var body struct {
			Rows []struct {
				OrderNr string `json:"order_nr"`
			} `json:"rows"`
			Payload struct {
				TrackedOrders []struct {
					Order struct{ OrderNr string }
				} `json:"trackedOrders"`
			} `json:"payload"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return nil, err
		}
		var nrs []string
		for _, r := range body.Rows {
			nrs = append(nrs, r.OrderNr)
		}
		for _, o := range body.Payload.TrackedOrders {
			nrs = append(nrs, o.Order.OrderNr)
		}
		return nrs, nil
	}
	shown := 0
	for e := 1; e <= eaters; e += max(1, eaters/500) {
		f, err := get(floorURL, e)
		if err != nil {
			return err
		}
		s, err := get(svcURL, e)
		if err != nil {
			return err
		}
		if !slices.Equal(f, s) {
			return fmt.Errorf("eater %d: floor lists %v, the endpoint %v", e, f, s)
		}
		shown += len(s)
	}
	if shown == 0 {
		return errors.New("no orders listed for any sampled eater: the seed is wrong")
	}
	return nil
}

// cacheCounts reads eot_tracking_state_cache_total by result.
func cacheCounts(metricsURL string) (map[string]float64, error) {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	re := regexp.MustCompile(`^eot_tracking_state_cache_total\{result="(\w+)"\} ([0-9.e+]+)$`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]], _ = strconv.ParseFloat(m[2], 64)
		}
	}
	return out, sc.Err()
}

// memoryGauges are the series the report reads from the service after the
// rounds: what its tracking cache holds, and its heap and RSS.
var memoryGauges = []string{
	"eot_tracking_state_cache_entries", "eot_tracking_answer_memo_bytes",
	"go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes",
}

// readGauges reads unlabelled series from a scrape; a missing one is absent
// from the map.
func readGauges(metricsURL string, names []string) (map[string]float64, error) {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if ok && slices.Contains(names, name) {
			out[name], _ = strconv.ParseFloat(v, 64)
		}
	}
	return out, sc.Err()
}

// findP2 returns the service's answer of the first eater it finds in P2
// ("call the picker"), the ceiling's fixed answer.
func findP2(svcURL string, eaters int) ([]byte, error) {
	for e := 1; e <= min(eaters, 5000); e++ {
		req, _ := http.NewRequest(http.MethodGet, svcURL, nil)
		req.Header.Set("X-Eats-User", "user_id="+strconv.Itoa(e))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusOK && strings.Count(string(body), `"status":"picker_call"`) == 1 &&
			strings.Contains(string(body), `"count":1}`) {
			return body, nil
		}
	}
	return nil, errors.New("no eater with one order in P2 among the first 5000")
}

func diff(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range a {
		out[k] = v - b[k]
	}
	return out
}

type report struct {
	opts    options
	servers []*server
	cache   map[string]float64
	memory  map[string]float64 // memoryGauges after the rounds
	cpus    int
	load    [2]string // 1-minute load average before and after the rounds
	wrkCmd  string
}

// runsOf is the runs of the server named name.
func (r report) runsOf(name string) []wrkResult {
	for _, s := range r.servers {
		if s.name == name {
			return s.runs
		}
	}
	panic("no server " + name)
}

// loadAvg is the 1-minute load average: the machine is shared, so the
// report says how busy it was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func median[T any](xs []T, key func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = key(x)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (r report) markdown() string {
	rps := func(w wrkResult) float64 { return w.rps }
	p50 := func(w wrkResult) float64 { return float64(w.p50) }
	p99 := func(w wrkResult) float64 { return float64(w.p99) }
	ms := func(ns float64) string { return fmt.Sprintf("%.2f ms", ns/1e6) }
	floorRuns, ceilRuns, svcRuns := r.runsOf("floor"), r.runsOf("ceiling"), r.runsOf("endpoint")
	fRPS, cRPS, sRPS := median(floorRuns, rps), median(ceilRuns, rps), median(svcRuns, rps)
	sP99 := time.Duration(median(svcRuns, p99))
	names := make([]string, len(r.servers))
	for i, s := range r.servers {
		names[i] = s.name
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## bench:tracking\n\n")
	fmt.Fprintf(&b, "Run %s on %d CPUs (`go tool task bench:tracking`): %d orders of %d eaters, a tenth retail with picker orders and phones; "+
		"each eater has one active order, 1 in 7 of them also one delivered 5 minutes ago. `%s`, one eater drawn at random per request "+
		"(`X-Eats-User: user_id=<1..%d>`). A %s warm-up against each server first, then %d rounds of %s in turn; medians of the rounds.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), r.cpus, r.opts.orders, r.opts.eaters, r.wrkCmd, r.opts.eaters, r.opts.warmup, r.opts.rounds,
		strings.Join(names, ", "))
	fmt.Fprintf(&b, "| server | requests/s | p50 | p99 |\n|---|---|---|---|\n")
	for _, s := range r.servers {
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s |\n", s.label, median(s.runs, rps), ms(median(s.runs, p50)), ms(median(s.runs, p99)))
	}
	fmt.Fprintf(&b, "\nRounds (req/s %s; p99 %s): ", strings.Join(names, " / "), strings.Join(names, " / "))
	for i := range r.opts.rounds {
		if i > 0 {
			b.WriteString(", ")
		}
		var reqs, lat []string
		for _, s := range r.servers {
			reqs, lat = append(reqs, fmt.Sprintf("%.0f", s.runs[i].rps)), append(lat, ms(float64(s.runs[i].p99)))
		}
		fmt.Fprintf(&b, "%s; %s", strings.Join(reqs, " / "), strings.Join(lat, " / "))
	}
	total := 0.0
	for _, v := range r.cache {
		total += v
	}
	if total > 0 {
		fmt.Fprintf(&b, ". Endpoint state cache during the measured rounds: %.0f%% hits, %.0f%% misses, %.0f%% bypassed (change feed not proven fresh)",
			100*r.cache["hit"]/total, 100*r.cache["miss"]/total, 100*r.cache["behind"]/total)
	}
	fmt.Fprintf(&b, ". 1-minute load average %s before the rounds, %s after (the machine is shared; anything above ~2 is other work competing for the 2 CPUs)", r.load[0], r.load[1])
	b.WriteString(".\n\n")
	verdict := func(ok bool) string {
		if ok {
			return "reached"
		}
		return "**not reached**"
	}
	fmt.Fprintf(&b, "Target ≥ 0.85× the ceiling's requests/s: %.2f× — %s. Target p99 ≤ 12 ms: %s — %s. "+
		"Against the floor (target ≥ 1.0×): %.2f× — %s.\n",
		sRPS/cRPS, verdict(sRPS >= 0.85*cRPS), ms(float64(sP99)), verdict(sP99 <= 12*time.Millisecond),
		sRPS/fRPS, verdict(sRPS >= fRPS))
	mib := func(name string) string {
		v, ok := r.memory[name]
		if !ok {
			return "?"
		}
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	fmt.Fprintf(&b, "\nMemory of the service after the rounds (its /metrics, no forced GC): %.0f eaters' states cached "+
		"(`eot_tracking_state_cache_entries`), %s of encoded answers on them (`eot_tracking_answer_memo_bytes`); "+
		"heap in use %s (allocated %s), RSS %s.\n",
		r.memory["eot_tracking_state_cache_entries"], mib("eot_tracking_answer_memo_bytes"),
		mib("go_memstats_heap_inuse_bytes"), mib("go_memstats_heap_alloc_bytes"), mib("process_resident_memory_bytes"))
	b.WriteString("\nHow the endpoint gets there: each replica holds every listed order of every eater in memory (loaded at start, " +
		"then kept exact by a LISTEN on change notifications that triggers of migration 00003 send for every committed change; " +
		"answers are served from memory only while a heartbeat through the same channel proves the feed is less than 900 ms behind), " +
		"so a poll does no database round trip; the floor does one per request. Each eater's answer is also kept encoded on its cache entry " +
		"(per language and experiments version, until the entry changes or the answer changes by itself), so a poll writes those bytes; the ceiling writes one fixed answer and does nothing else. eaters.lua is the driver's `luaScript` (modules/trackingpresenter/internal/benchtracking).\n")
	b.WriteString("\nThe service runs with `serve`'s collector defaults (platform/gctune: GOGC 400 unless set). The cache is a ~110 MB live heap " +
		"of small objects; with Go's default GOGC 100 the collector re-marks it more than once a second at this rate, and the p99 was " +
		"26–36 ms (this command at 22:32 on 2026-11-25: 26.47 ms median; by hand, wrk 10 s × 3 on the same database, GOGC 100: 32.9 / 34.4 / 35.8 ms " +
		"at 18.9–22.0k req/s against GOGC 400: 19.9 / 21.4 / 21.5 ms at 22.5–24.1k req/s).\n")
	return b.String()
}
