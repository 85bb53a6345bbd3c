//go:build system

package systest

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/pickerupdater/pickerfake"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// trackingPath is the app's endpoint (DESIGN §4.1).
const trackingPath = "/eats/v1/eats-orders-tracking/v1/tracking"

// defaultExperiments turns both picker cards on and keeps the updater
// quiet (no order is an hour old), so only the events decide the rows.
const defaultExperiments = `experiments:
  eats_orders_tracking_picker_statuses_timeout:
    default: [{status: new, timeout: 3600}]
  eats_orders_tracking_retail_call_picker:
    default: {enabled: true}
  eats_orders_tracking_retail_contact_us:
    default: {enabled: true}
`

// bundle is one test's world: a fresh database, a Redis key prefix, a fake
// eats-picker-orders, the processes, and the phones every check must not
// find in any log.
type bundle struct {
	t       *testing.T
	dir     string
	dsn     string
	db      *sqlx.DB
	prefix  string
	fake    *pickerfake.Server
	expFile string
	env     map[string]string
	seed    uint64
	seq     int64
	worlds  []*world
	extra   map[string]string // phones used outside a world (digits → as sent)
	procs   []*proc
}

type options struct {
	// emptyDB starts from a database without any migration: the processes
	// migrate it themselves (concurrently, with several replicas).
	emptyDB bool
	// experiments is the YAML the processes load; "" is defaultExperiments.
	experiments string
	// env is added to every process' environment.
	env map[string]string
}

func setup(t *testing.T, o options) *bundle {
	t.Helper()
	b := &bundle{t: t, extra: map[string]string{}}
	b.dir = filepath.Join(logRoot, strings.ReplaceAll(t.Name(), "/", "_"))
	require.NoError(t, os.MkdirAll(b.dir, 0o755))
	b.seed = seedFor(t)
	if o.emptyDB {
		b.dsn = pgtest.NewDatabase(t)
	} else {
		b.dsn = pgtest.Clone(t)
	}
	// Runs after every process has stopped (cleanups run last-in first-out).
	t.Cleanup(b.finalChecks)
	db, err := sqlx.Open("postgres", b.dsn)
	require.NoError(t, err)
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { _ = db.Close() })
	b.db = db
	b.prefix = pgtest.RedisPrefix(t)
	b.fake = pickerfake.New()
	b.fake.Start()
	t.Cleanup(b.fake.Close)
	exp := o.experiments
	if exp == "" {
		exp = defaultExperiments
	}
	b.expFile = filepath.Join(b.dir, "experiments.yaml")
	require.NoError(t, os.WriteFile(b.expFile, []byte(exp), 0o644))
	b.env = map[string]string{
		"DATABASE_URL":            b.dsn,
		"DATABASE_MAX_CONNS":      "10",
		"REDIS_URL":               pgtest.RedisURL(),
		"REDIS_KEY_PREFIX":        b.prefix,
		"INTERNAL_API_TOKEN":      token,
		"EXPERIMENTS_FILE":        b.expFile,
		"PICKER_ORDERS_URL":       b.fake.URL(),
		"PICKER_UPDATER_INTERVAL": "1s",
		"LOG_FORMAT":              "json",
		"LOG_LEVEL":               "debug",
		"SHUTDOWN_TIMEOUT":        "10s",
	}
	for k, v := range o.env {
		b.env[k] = v
	}
	t.Logf("seed %d (SYSTEST_SEED=%d reproduces the events); logs in %s", b.seed, b.seed, b.dir)
	return b
}

// seedFor is SYSTEST_SEED, else one from the clock and the test's name.
func seedFor(t *testing.T) uint64 {
	if s := os.Getenv("SYSTEST_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "SYSTEST_SEED")
		return n
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(t.Name()))
	return h.Sum64() ^ uint64(time.Now().UnixNano())
}

// proc prepares a process with the bundle's environment plus env.
func (b *bundle) proc(name string, env map[string]string) *proc {
	e := make(map[string]string, len(b.env)+len(env))
	for k, v := range b.env {
		e[k] = v
	}
	for k, v := range env {
		e[k] = v
	}
	p := newProc(b.t, b.dir, name, e)
	b.procs = append(b.procs, p)
	return p
}

// world makes a generator of valid events whose phones the log check knows.
func (b *bundle) world(eaters, perEater int) *world {
	w := newWorld(b.seed+uint64(len(b.worlds)), &b.seq, eaters, perEater)
	b.worlds = append(b.worlds, w)
	return w
}

// phones is every phone the test sent, digits → as sent.
func (b *bundle) phones() map[string]string {
	out := make(map[string]string)
	for _, w := range b.worlds {
		w.mu.Lock()
		for d, p := range w.phones {
			out[d] = p
		}
		w.mu.Unlock()
	}
	for d, p := range b.extra {
		out[d] = p
	}
	return out
}

// finalChecks runs when the processes have stopped: no process died
// unasked, and no log line of any of them holds a full phone number.
func (b *bundle) finalChecks() {
	t := b.t
	phones := b.phones()
	lines := 0
	for _, p := range b.procs {
		p.stop()
		for _, d := range p.died() {
			t.Errorf("%s (log %s)", d, p.logPath)
		}
		lines += scanLogsForPhones(t, p.logPath, phones)
	}
	if len(b.procs) > 0 {
		t.Logf("log check: %d lines from %d processes searched for %d phones", lines, len(b.procs), len(phones))
	}
}

// requireViews checks every eater's tracking answer from each process
// against the model, retrying an eater for up to within (the tracking
// cache may lag a commit by up to a second).
func (b *bundle) requireViews(m *model, eaters []string, within time.Duration, procs ...*proc) int {
	t := b.t
	t.Helper()
	deadline := time.Now().Add(within)
	checked := 0
	for _, p := range procs {
		for _, eater := range eaters {
			for {
				msg := b.viewProblem(p, m, eater)
				if msg == "" {
					checked++
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: tracking of %s differs from the model:\n%s", p.name, eater, msg)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return checked
}

// viewProblem returns "" when the answer for eater matches the model.
func (b *bundle) viewProblem(p *proc, m *model, eater string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now()
	code, body, err := p.get(ctx, trackingPath, map[string]string{"X-Eats-User": "user_id=" + eater})
	if err != nil || code != 200 {
		return fmt.Sprintf("GET: %d %v %.300s", code, err, body)
	}
	var a trackingAnswer
	jsonOK(b.t, body, &a)
	got, problems := a.cards()
	if len(problems) > 0 {
		return strings.Join(problems, "\n")
	}
	return cardsDiff(m.view(eater, now), got)
}

// result logs one line a run's summary in docs/reliability.md is made of.
func result(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("RESULT %s: "+format, append([]any{t.Name()}, args...)...)
}
