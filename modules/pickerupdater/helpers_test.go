package pickerupdater

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/pickerupdater/pickerfake"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform"
	"github.com/eats/eats-orders-tracking/platform/cache"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// fastTuning keeps retries and the breaker's delay short in tests.
var fastTuning = &tuning{Upstream: upstreamConfig{
	AttemptTimeout:  time.Second, // loopback answers in ms, but -race on a busy machine is slow
	MaxAttempts:     2,
	BackoffMin:      5 * time.Millisecond,
	BackoffMax:      20 * time.Millisecond,
	BreakerFailures: 3,
	BreakerDelay:    500 * time.Millisecond,
}}

// testApp is the module running on the real platform: PostgreSQL (a fresh
// database), Redis (a private prefix), River, experiments, picker-ingest.
type testApp struct {
	t       testing.TB
	env     config.Environment
	DB      *sqlx.DB
	Client  *queue.Client
	Store   *experiments.Store
	Reg     *prometheus.Registry
	Applier *pickeringest.Applier
	Updater *updater
	Redis   *cache.Redis
	Fake    *pickerfake.Server
	Logs    *pgtest.SafeBuffer
	// ExperimentsFile is the app's experiments file; rewrite it with
	// writeTimeouts.
	ExperimentsFile string
	fx              *fxtest.App
}

// testEnv is a fresh database, a fake upstream and an experiments file
// listing timeouts (YAML flow sequence, e.g. "[{status: picking, timeout:
// 300}]"; "" leaves the experiment out).
func testEnv(t testing.TB, fake *pickerfake.Server, timeouts string, overrides map[string]string) config.Environment {
	t.Helper()
	path := filepath.Join(t.TempDir(), "experiments.yaml")
	writeTimeouts(t, path, timeouts)
	env := pgtest.Env(t, map[string]string{
		"EXPERIMENTS_FILE":        path,
		"PICKER_ORDERS_URL":       fake.URL(),
		"PICKER_UPDATER_INTERVAL": "1h", // ticks are driven by the test unless it says otherwise
		"SHUTDOWN_TIMEOUT":        "5s",
	})
	return env.With(overrides)
}

// newFake starts a fake eats-picker-orders on loopback.
func newFake(t testing.TB) *pickerfake.Server {
	t.Helper()
	fake := pickerfake.New()
	fake.Start()
	t.Cleanup(fake.Close)
	return fake
}

// startApp starts the module with env; it stops when the test ends.
func startApp(t testing.TB, fake *pickerfake.Server, env config.Environment, tune *tuning) *testApp {
	t.Helper()
	a := &testApp{t: t, env: env, Fake: fake, Logs: &pgtest.SafeBuffer{}, ExperimentsFile: env["EXPERIMENTS_FILE"]}
	opts := []fx.Option{
		pgtest.Inputs(env, a.Logs),
		platform.Module,
		pickeringest.Module,
		Module,
		// The binding modules/modules.go makes for the service.
		fx.Provide(fx.Annotate(func(a *pickeringest.Applier) *pickeringest.Applier { return a }, fx.As(new(Applier)))),
		fx.Populate(&a.DB, &a.Client, &a.Store, &a.Reg, &a.Applier, &a.Updater, &a.Redis),
	}
	if tune != nil {
		opts = append(opts, fx.Supply(tune))
	}
	a.fx = fxtest.New(t, opts...)
	a.fx.RequireStart()
	t.Cleanup(a.fx.RequireStop)
	return a
}

// writeTimeouts writes the experiments file atomically (rename), as a
// ConfigMap roll-out would.
func writeTimeouts(t testing.TB, path, timeouts string) {
	t.Helper()
	body := "experiments: {}\n"
	if timeouts != "" {
		body = fmt.Sprintf("experiments:\n  %s:\n    default: %s\n", StatusesTimeout.Name(), timeouts)
	}
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(body), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// awaitTimeouts waits until the store has the given statuses in force.
func (a *testApp) awaitTimeouts(want []StatusTimeout) {
	a.t.Helper()
	pgtest.Eventually(a.t, 10*time.Second, func() bool {
		got, _ := StatusesTimeout.Get(a.Store, experiments.Kwargs{})
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}, "experiment %v not in force", want)
}

// seedOrder writes a picker order through picker-ingest's apply path, then
// ages its updated_at by quiet.
func (a *testApp) seedOrder(orderNr string, status tracking.PickerStatus, pickerID string, eventAt time.Time, quiet time.Duration) {
	a.t.Helper()
	ctx := a.t.Context()
	tx, err := a.DB.BeginTxx(ctx, nil)
	require.NoError(a.t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = a.Applier.Apply(ctx, tx, pickeringest.Event{
		Type: tracking.EventStatusChange, OrderNr: orderNr, Status: status,
		PlaceID: "40", PickerID: pickerID, CreatedAt: tracking.Normalize(eventAt),
	})
	require.NoError(a.t, err)
	_, err = tx.ExecContext(ctx, `UPDATE picker_orders SET updated_at = now() - make_interval(secs => $2) WHERE order_nr = $1`, orderNr, quiet.Seconds())
	require.NoError(a.t, err)
	require.NoError(a.t, tx.Commit())
}

// row is a picker_orders row as the tests compare it.
type row struct {
	Payload   string    `db:"payload"`
	UpdatedAt time.Time `db:"updated_at"`
	Status    string    `db:"status"`
}

func (a *testApp) row(orderNr string) row {
	a.t.Helper()
	var r row
	require.NoError(a.t, a.DB.GetContext(a.t.Context(), &r, `SELECT payload::text AS payload, updated_at, status FROM picker_orders WHERE order_nr = $1`, orderNr))
	return r
}

// payload decodes a row's payload.
func (r row) payload(t testing.TB) map[string]any {
	t.Helper()
	var p map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Payload), &p))
	return p
}

// refreshJob is the latest refresh job of an order.
type refreshJob struct {
	ID      int64  `db:"id"`
	State   string `db:"state"`
	Attempt int    `db:"attempt"`
	Errors  string `db:"errors"`
}

func (a *testApp) refreshJob(orderNr string) (refreshJob, bool) {
	a.t.Helper()
	var j refreshJob
	err := a.DB.GetContext(a.t.Context(), &j, `
SELECT id, state, attempt, coalesce(errors::text, '') AS errors FROM river_job
WHERE kind = $1 AND args->>'order_nr' = $2 ORDER BY id DESC LIMIT 1`, RefreshKind, orderNr)
	if errors.Is(err, sql.ErrNoRows) {
		return j, false
	}
	require.NoError(a.t, err)
	return j, true
}

// awaitJob waits until the order's latest refresh job is in state.
func (a *testApp) awaitJob(orderNr, state string, within time.Duration) refreshJob {
	a.t.Helper()
	var j refreshJob
	pgtest.Eventually(a.t, within, func() bool {
		var ok bool
		j, ok = a.refreshJob(orderNr)
		return ok && j.State == state
	}, "refresh job of %s not %s (last seen %+v)", orderNr, state, &j)
	return j
}

// enqueuedOrders lists the order_nr of every refresh job, sorted.
func (a *testApp) enqueuedOrders() []string {
	a.t.Helper()
	var out []string
	require.NoError(a.t, a.DB.SelectContext(a.t.Context(), &out, `SELECT args->>'order_nr' FROM river_job WHERE kind = $1 ORDER BY 1`, RefreshKind))
	return out
}

// refresh enqueues a refresh job as the updater would.
func (a *testApp) refresh(orderNr string) {
	a.t.Helper()
	_, err := a.Client.Insert(a.t.Context(), RefreshArgs{OrderNr: orderNr}, nil)
	require.NoError(a.t, err)
}

// metric sums the series of a family whose labels include want.
func (a *testApp) metric(name string, want map[string]string) float64 {
	a.t.Helper()
	families, err := a.Reg.Gather()
	require.NoError(a.t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// tickNow runs one tick of a's updater with the app's client, outside River.
func (a *testApp) tickNow() tickResult {
	a.t.Helper()
	res, err := a.Updater.tick(a.t.Context(), a.Client)
	require.NoError(a.t, err)
	return res
}

// containing keeps the lines that contain substr.
func containing(lines []string, substr string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}
