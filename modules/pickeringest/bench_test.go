package pickeringest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/postgres"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// BenchmarkIngest is `go tool task bench:ingest` (run it with -benchtime 1x;
// each phase gets a fresh database):
//
//  1. bare: the upsert statements alone (no transaction, no River), from as
//     many goroutines as the pool has connections;
//  2. ingest: the same events as River jobs, inserted up front, worked by
//     the picker-ingest worker (group-commit transaction: upserts, the jobs'
//     completion, commit; then the cache write);
//  3. noop: as many no-op River jobs, same worker count;
//  4. latency: events inserted one by one at a steady rate, time from the
//     insert call to the worker's commit.
//
// Sizes and tuning come from the environment: BENCH_EVENTS (100000),
// BENCH_ORDERS (20000), BENCH_RATE (500/s), BENCH_LATENCY_SECONDS (20),
// PICKER_INGEST_MAX_WORKERS, PICKER_INGEST_COMMIT_LANES and
// DATABASE_MAX_CONNS (the service's defaults).
// BENCH_TRACING=1 measures the ingest phase with tracing off, at 10% and
// always-on instead (`go tool task bench:tracing`; bench_tracing_test.go).
// Diagnostics: BENCH_ONLY=bare|ingest|noop|latency runs one phase;
// BENCH_FEED_TRIGGERS=off disables the tables' NOTIFY triggers in every phase;
// BENCH_PRODUCER_COOLDOWN sets the latency producer's River FetchCooldown.
func BenchmarkIngest(b *testing.B) {
	cfg := benchConfig{
		events:  envInt(b, "BENCH_EVENTS", 100_000),
		orders:  envInt(b, "BENCH_ORDERS", 20_000),
		rate:    envInt(b, "BENCH_RATE", 500),
		seconds: envInt(b, "BENCH_LATENCY_SECONDS", 20),
		env:     map[string]string{"LOG_LEVEL": "warn"},
		noFeed:  os.Getenv("BENCH_FEED_TRIGGERS") == "off",
	}
	for _, k := range []string{"PICKER_INGEST_MAX_WORKERS", "PICKER_INGEST_COMMIT_LANES", "DATABASE_MAX_CONNS"} {
		if v := os.Getenv(k); v != "" {
			cfg.env[k] = v
		}
	}
	platform, err := config.ParsePlatform(config.Environment(cfg.env))
	require.NoError(b, err)
	ingestCfg, err := pickeringest.ParseConfig(config.Environment(cfg.env))
	require.NoError(b, err)
	cfg.conns, cfg.workers, cfg.lanes = platform.DatabaseMaxConns, ingestCfg.Workers, ingestCfg.CommitLanes
	events := benchEvents(cfg.events, cfg.orders)
	if os.Getenv("BENCH_TRACING") == "1" { // the cost of tracing: bench_tracing_test.go
		for range b.N {
			benchTracingCost(b, cfg, events)
		}
		return
	}

	if only := os.Getenv("BENCH_ONLY"); only != "" { // tuning: one phase
		for range b.N {
			var v float64
			start := time.Now()
			switch only {
			case "bare":
				v = benchBare(b, cfg, events)
			case "ingest":
				v = benchIngest(b, cfg, events)
			case "noop":
				v = benchNoop(b, cfg)
			case "latency":
				p50, p99, _, _ := benchLatency(b, cfg)
				fmt.Fprintf(os.Stderr, "latency p50 %s p99 %s\n", p50, p99)
			}
			fmt.Fprintf(os.Stderr, "%s: %.0f /s (%s, load %s)\n", only, v, time.Since(start).Round(time.Second), loadavg())
		}
		return
	}
	for range b.N {
		// The baseline runs before and after the River phases, and their mean
		// is the reference, so a change in the machine's load during the run
		// does not favour either side.
		phase := func(name string, run func() float64) (float64, string) {
			start := time.Now()
			v := run()
			load := loadavg()
			fmt.Fprintf(os.Stderr, "%s: %.0f /s (%s, load %s)\n", name, v, time.Since(start).Round(time.Second), load)
			return v, load
		}
		bare1, load1 := phase("bare", func() float64 { return benchBare(b, cfg, events) })
		ingest, load2 := phase("ingest", func() float64 { return benchIngest(b, cfg, events) })
		noop, load3 := phase("noop", func() float64 { return benchNoop(b, cfg) })
		bare2, load4 := phase("bare", func() float64 { return benchBare(b, cfg, events) })
		bare := (bare1 + bare2) / 2
		p50, p99, pmax, n := benchLatency(b, cfg)
		load5 := loadavg()

		b.ReportMetric(bare, "bare_upserts/s")
		b.ReportMetric(ingest, "ingest_events/s")
		b.ReportMetric(noop, "noop_jobs/s")
		b.ReportMetric(ingest/bare, "ingest/bare")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
		fmt.Fprintf(os.Stderr, "\nbench:ingest — %d events over %d orders, Workers %d, commit lanes %d, DATABASE_MAX_CONNS %d, change-feed triggers %s\n",
			cfg.events, cfg.orders, cfg.workers, cfg.lanes, cfg.conns, map[bool]string{true: "off", false: "on"}[cfg.noFeed])
		fmt.Fprintf(os.Stderr, "load average (1 min) after each phase: %s %s %s %s %s\n", load1, load2, load3, load4, load5)
		fmt.Fprintf(os.Stderr, "| bare upsert (%d conns) | %.0f /s (before %.0f, after %.0f) |\n", cfg.conns, bare, bare1, bare2)
		fmt.Fprintf(os.Stderr, "| ingest (River jobs applied) | %.0f /s | %.0f%% of bare |\n", ingest, 100*ingest/bare)
		fmt.Fprintf(os.Stderr, "| no-op River jobs | %.0f /s | ingest = %.0f%% of no-op |\n", noop, 100*ingest/noop)
		fmt.Fprintf(os.Stderr, "| insert→applied at %d/s (%d events after 1 s warm-up) | p50 %s, p99 %s, max %s |\n\n",
			cfg.rate, n, p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond), pmax.Round(100*time.Microsecond))
	}
}

// loadavg is the machine's 1-minute load average, for the record.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

type benchConfig struct {
	events, orders, rate, seconds int
	conns, workers, lanes         int
	env                           map[string]string
	// noFeed disables the tables' NOTIFY triggers (the tracking change
	// feed), to show what they cost: each commit that notifies holds a
	// database-wide lock until its WAL is flushed.
	noFeed bool
}

// freshEnv is the service's environment on a fresh database.
func freshEnv(b *testing.B, cfg benchConfig) config.Environment {
	b.Helper()
	env := pgtest.Env(b, cfg.env)
	if cfg.noFeed {
		db, err := postgres.Open(env["DATABASE_URL"], 1)
		require.NoError(b, err)
		defer db.Close()
		for _, table := range []string{"picker_orders", "picker_phones"} {
			_, err := db.Exec(`ALTER TABLE ` + table + ` DISABLE TRIGGER USER`)
			require.NoError(b, err)
		}
	}
	return env
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(b, err, name)
	return n
}

// benchEvents is the workload: per order four status changes (one naming
// the picker) and a forwarding phone, shuffled across orders.
func benchEvents(n, orders int) []pickeringest.Event {
	base := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	expires := base.Add(3 * time.Hour)
	var events []pickeringest.Event
	for i := 0; len(events) < n; i++ {
		order := fmt.Sprintf("bench-%07d", i%orders)
		at := base.Add(time.Duration(i/orders) * 5 * time.Second)
		picker := fmt.Sprintf("picker-%d", i%97)
		for j, st := range []tracking.PickerStatus{"new", "assigned", "picking", "", "picked_up"} {
			ev := pickeringest.Event{Type: tracking.EventStatusChange, OrderNr: order, Status: st, PlaceID: "40",
				CreatedAt: at.Add(time.Duration(j) * time.Second)}
			if st == "assigned" {
				ev.PickerID = picker
			}
			if st == "" {
				ev.Type, ev.Status, ev.PickerID = tracking.EventPickerPhoneForwardingReady, "picking", picker
				ev.Forwarding = &pickeringest.Forwarding{Phone: "+7999" + fmt.Sprintf("%07d", i%orders), ExpiresAt: expires}
			}
			events = append(events, ev)
		}
	}
	events = events[:n]
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	return events
}

func argsJSON(ev pickeringest.Event) []byte {
	b, _ := json.Marshal(pickeringest.PickerOrderArgs{
		EventType: ev.Type, OrderNr: ev.OrderNr, OrderStatus: ev.Status, PlaceID: ev.PlaceID,
		PickerID: ev.PickerID, CustomerPickerPhoneForwarding: ev.Forwarding, CreatedAt: ev.CreatedAt,
	})
	return b
}

func benchBare(b *testing.B, cfg benchConfig, events []pickeringest.Event) float64 {
	b.Helper()
	env := freshEnv(b, cfg)
	db, err := postgres.Open(env["DATABASE_URL"], cfg.conns)
	require.NoError(b, err)
	defer db.Close()
	ctx := context.Background()
	bareUpsert, err := pickeringest.NewBareUpsert(db)
	require.NoError(b, err)
	next := make(chan pickeringest.Event, len(events))
	for _, ev := range events {
		next <- ev
	}
	close(next)
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range cfg.conns {
		wg.Go(func() {
			for ev := range next {
				if err := bareUpsert(ctx, ev); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	require.Zero(b, failed.Load())
	return float64(len(events)) / elapsed.Seconds()
}

// startService runs the platform and picker-ingest (plus extra) on env.
func startService(b *testing.B, env config.Environment, extra ...fx.Option) (*fx.App, *sqlx.DB, *queue.Client) {
	b.Helper()
	var db *sqlx.DB
	var client *queue.Client
	a := fx.New(
		pgtest.Inputs(env, nil),
		fx.NopLogger,
		platform.Module,
		pickeringest.Module,
		fx.Options(extra...),
		fx.Populate(&db, &client),
	)
	require.NoError(b, a.Err())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(b, a.Start(ctx))
	return a, db, client
}

func stopService(b *testing.B, a *fx.App) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(b, a.Stop(ctx))
}

// insertJobs puts raw args into river_job in bulk, before any worker runs.
func insertJobs(b *testing.B, dsn, kind string, args [][]byte) {
	b.Helper()
	db, err := postgres.Open(dsn, 2)
	require.NoError(b, err)
	defer db.Close()
	for i := 0; i < len(args); i += 5000 {
		batch := make(pq.StringArray, 0, 5000)
		for _, a := range args[i:min(i+5000, len(args))] {
			batch = append(batch, string(a))
		}
		_, err := db.Exec(`INSERT INTO river_job (kind, queue, args) SELECT $1, $1, a::jsonb FROM unnest($2::text[]) AS a`, kind, batch)
		require.NoError(b, err)
	}
	_, err = db.Exec(`ANALYZE river_job`)
	require.NoError(b, err)
}

// waitDone waits until done reaches n (counted in-process, so polling
// costs the database nothing), checks the jobs' rows once, and returns when
// the n-th job finished.
func waitDone(b *testing.B, db *sqlx.DB, kind string, n int, done *atomic.Int64) time.Time {
	b.Helper()
	deadline := time.Now().Add(30 * time.Minute)
	for done.Load() < int64(n) {
		require.True(b, time.Now().Before(deadline), "only %d of %d done", done.Load(), n)
		time.Sleep(5 * time.Millisecond)
	}
	end := time.Now()
	var bad int
	require.NoError(b, db.Get(&bad, `SELECT count(*) FROM river_job WHERE state IN ('cancelled', 'discarded', 'retryable') AND kind = $1`, kind))
	require.Zero(b, bad, "jobs failed")
	return end
}

func benchIngest(b *testing.B, cfg benchConfig, events []pickeringest.Event) float64 {
	b.Helper()
	env := freshEnv(b, cfg)
	args := make([][]byte, len(events))
	for i, ev := range events {
		args[i] = argsJSON(ev)
	}
	insertJobs(b, env["DATABASE_URL"], pickeringest.Kind, args)
	var done atomic.Int64
	start := time.Now()
	a, db, _ := startService(b, env, pickeringest.WithHooks(nil, func(int64, pickeringest.PickerOrderArgs) { done.Add(1) }))
	defer stopService(b, a)
	end := waitDone(b, db, pickeringest.Kind, len(events), &done)
	return float64(len(events)) / end.Sub(start).Seconds()
}

type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done *atomic.Int64
}

func (w noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	w.done.Add(1)
	return nil
}

func benchNoop(b *testing.B, cfg benchConfig) float64 {
	b.Helper()
	env := freshEnv(b, cfg)
	args := make([][]byte, cfg.events)
	for i := range args {
		args[i] = []byte(`{"n":` + strconv.Itoa(i) + `}`)
	}
	insertJobs(b, env["DATABASE_URL"], "bench_noop", args)
	var done atomic.Int64
	start := time.Now()
	a, db, _ := startService(b, env,
		queue.AsWorkers(func() queue.Workers {
			return func(ws *river.Workers) error { return river.AddWorkerSafely(ws, noopWorker{done: &done}) }
		}),
		queue.AsQueue(func() queue.Queue { return queue.Queue{Name: "bench_noop", MaxWorkers: cfg.workers} }),
	)
	defer stopService(b, a)
	end := waitDone(b, db, "bench_noop", cfg.events, &done)
	return float64(cfg.events) / end.Sub(start).Seconds()
}

// benchLatency offers cfg.rate events/s for cfg.seconds through River's
// InsertTx from a producer's own pool and measures insert call → commit.
func benchLatency(b *testing.B, cfg benchConfig) (p50, p99, pmax time.Duration, n int) {
	b.Helper()
	env := freshEnv(b, cfg)
	total := cfg.rate * cfg.seconds
	events := benchEvents(total, max(total/5, 1))
	var mu sync.Mutex
	applied := make(map[int64]time.Time, total)
	a, _, _ := startService(b, env, pickeringest.WithHooks(nil, func(jobID int64, _ pickeringest.PickerOrderArgs) {
		now := time.Now()
		mu.Lock()
		applied[jobID] = now
		mu.Unlock()
	}))
	defer stopService(b, a)

	producerDB, err := postgres.Open(env["DATABASE_URL"], 8)
	require.NoError(b, err)
	defer producerDB.Close()
	// A River client notifies the workers of its inserts at most once per
	// FetchCooldown per queue (default 100 ms); the rest wait for the next
	// notification. BENCH_PRODUCER_COOLDOWN shows the difference.
	producerCfg := &river.Config{}
	if v := os.Getenv("BENCH_PRODUCER_COOLDOWN"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(b, err)
		producerCfg.FetchCooldown = d
	}
	producer, err := river.NewClient(riverdatabasesql.New(producerDB.DB), producerCfg)
	require.NoError(b, err)

	type sent struct {
		id int64
		at time.Time
	}
	results := make([]sent, total)
	due := make(chan int, total)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for i := range due {
				at := time.Now()
				res, err := producer.Insert(context.Background(), pickeringest.PickerOrderArgs{
					EventType: events[i].Type, OrderNr: events[i].OrderNr, OrderStatus: events[i].Status,
					PlaceID: events[i].PlaceID, PickerID: events[i].PickerID,
					CustomerPickerPhoneForwarding: events[i].Forwarding, CreatedAt: events[i].CreatedAt,
				}, nil)
				if err != nil {
					failed.Add(1)
					continue
				}
				results[i] = sent{id: res.Job.ID, at: at}
			}
		})
	}
	interval := time.Second / time.Duration(cfg.rate)
	start := time.Now()
	for i := range total {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		due <- i
	}
	close(due)
	wg.Wait()
	require.Zero(b, failed.Load())
	deadline := time.Now().Add(10 * time.Minute) // a backlog drains at the ingest rate
	for {
		mu.Lock()
		done := len(applied)
		mu.Unlock()
		if done >= total {
			break
		}
		require.True(b, time.Now().Before(deadline), "only %d of %d applied", done, total)
		time.Sleep(10 * time.Millisecond)
	}
	var lat []time.Duration
	warmup := cfg.rate // the first second
	for i, s := range results {
		if i < warmup {
			continue
		}
		lat = append(lat, applied[s.id].Sub(s.at))
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return pct(0.50), pct(0.99), lat[len(lat)-1], len(lat)
}
