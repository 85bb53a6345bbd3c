package modules_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

func TestServeAnswersProbesMetricsAndSpec(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)

	code, body := a.Get(t, "/healthz", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	code, body = a.Get(t, "/readyz", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"migrations":"ok"`)

	code, body = a.Get(t, "/openapi.yaml", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), "openapi: 3.1.0")

	code, body = a.Get(t, "/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	for _, m := range []string{"eot_http_request_duration_seconds", "eot_river_stats_up 1", "go_goroutines"} {
		require.Contains(t, string(body), m)
	}
}

func TestValidateApp(t *testing.T) {
	t.Parallel()
	require.NoError(t, fx.ValidateApp(apptest.Graph(pgtest.Env(t, nil), nil)))
}

func TestInternalRoutesNeedTheToken(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	for _, path := range []string{"/riverui/", "/debug/pprof/"} {
		code, _ := a.Get(t, path, nil)
		require.Equal(t, http.StatusUnauthorized, code, path)
		code, _ = a.Get(t, path, map[string]string{"Authorization": "Bearer wrong"})
		require.Equal(t, http.StatusUnauthorized, code, path)
		code, _ = a.Get(t, path, apptest.Internal())
		require.Equal(t, http.StatusOK, code, path)
		req, _ := http.NewRequest(http.MethodGet, a.URL+path, nil)
		req.SetBasicAuth("operator", apptest.Token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "basic auth on %s", path)
	}

	off := apptest.Start(t, map[string]string{"INTERNAL_API_TOKEN": ""})
	for _, path := range []string{"/riverui/", "/debug/pprof/"} {
		code, body := off.Get(t, path, apptest.Internal())
		require.Equal(t, http.StatusNotFound, code, path)
		require.Contains(t, string(body), "INTERNAL_API_TOKEN")
	}
}

// slowArgs is a job that takes a while, to prove shutdown waits for it.
type slowArgs struct {
	Sleep time.Duration `json:"sleep"`
}

func (slowArgs) Kind() string { return "test_slow" }

func (slowArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: "test_slow"} }

type slowWorker struct {
	river.WorkerDefaults[slowArgs]
	started chan struct{}
}

func (w *slowWorker) Work(ctx context.Context, job *river.Job[slowArgs]) error {
	close(w.started)
	select {
	case <-time.After(job.Args.Sleep):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestGracefulShutdownFinishesInFlightJob(t *testing.T) {
	t.Parallel()
	w := &slowWorker{started: make(chan struct{})}
	a := apptest.Start(t, nil,
		queue.AsWorkers(func() queue.Workers {
			return func(ws *river.Workers) error { return river.AddWorkerSafely(ws, w) }
		}),
		queue.AsQueue(func() queue.Queue { return queue.Queue{Name: "test_slow", MaxWorkers: 1} }),
	)
	res, err := a.Client.Insert(context.Background(), slowArgs{Sleep: 700 * time.Millisecond}, nil)
	require.NoError(t, err)
	select {
	case <-w.started:
	case <-time.After(10 * time.Second):
		t.Fatal("job never started")
	}
	stopped := time.Now()
	a.Stop(t)
	require.GreaterOrEqual(t, time.Since(stopped), 500*time.Millisecond, "stop must wait for the running job")

	db, err := sql.Open("postgres", a.DSN)
	require.NoError(t, err)
	defer db.Close()
	var state string
	require.NoError(t, db.QueryRow(`SELECT state FROM river_job WHERE id = $1`, res.Job.ID).Scan(&state))
	require.Equal(t, string(rivertype.JobStateCompleted), state)
}

func TestLogsMaskSecrets(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	require.NotContains(t, a.Logs.String(), apptest.Token)
	require.Contains(t, a.Logs.String(), "http listening")
}

func TestExperimentsEndpointShowsTheSetInForce(t *testing.T) {
	t.Parallel()
	// A copy of the shipped file, so the test can replace it.
	shipped, err := os.ReadFile(filepath.Join(pgtest.RepoRoot(), "experiments.yaml"))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "experiments.yaml")
	require.NoError(t, os.WriteFile(path, shipped, 0o644))
	a := apptest.Start(t, map[string]string{"EXPERIMENTS_FILE": path})

	const endpoint = "/internal/eats-orders-tracking/v1/experiments"
	code, _ := a.Get(t, endpoint, nil)
	require.Equal(t, http.StatusUnauthorized, code)
	type status struct {
		Path      string     `json:"path"`
		LoadedAt  *time.Time `json:"loaded_at"`
		LastError *struct {
			At      time.Time `json:"at"`
			Message string    `json:"message"`
		} `json:"last_error"`
		RefusedTotal int            `json:"refused_total"`
		Exps         map[string]any `json:"experiments"`
	}
	get := func() status {
		t.Helper()
		code, body := a.Get(t, endpoint, apptest.Internal())
		require.Equal(t, http.StatusOK, code, string(body))
		var st status
		require.NoError(t, json.Unmarshal(body, &st), string(body))
		return st
	}

	// The shipped set (DESIGN §7): both flags on for everyone, timeouts
	// for new, assigned, picking and picked_up.
	want := map[string]any{
		"eats_orders_tracking_picker_statuses_timeout": map[string]any{"default": []any{
			map[string]any{"status": "new", "timeout": 600.0},
			map[string]any{"status": "assigned", "timeout": 600.0},
			map[string]any{"status": "picking", "timeout": 300.0},
			map[string]any{"status": "picked_up", "timeout": 900.0},
		}},
		"eats_orders_tracking_retail_call_picker": map[string]any{"default": map[string]any{"enabled": true}},
		"eats_orders_tracking_retail_contact_us":  map[string]any{"default": map[string]any{"enabled": true}},
	}
	st := get()
	require.Equal(t, path, st.Path)
	require.NotNil(t, st.LoadedAt)
	require.Nil(t, st.LastError)
	require.Zero(t, st.RefusedTotal)
	require.Equal(t, want, st.Exps)
	loadedAt := *st.LoadedAt

	// A file that can never hold is refused: the endpoint shows why, and
	// the shipped set stays in force.
	require.NoError(t, os.WriteFile(path, []byte(`experiments:
  eats_orders_tracking_retail_call_picker:
    default: {enabled: true}
    clauses:
      - {name: pilot, if: {place_id: {in: []}}, value: {enabled: false}}
`), 0o644))
	pgtest.Eventually(t, 5*time.Second, func() bool { return get().LastError != nil }, "the refusal is shown")
	st = get()
	require.Equal(t, path+`: experiment eats_orders_tracking_retail_call_picker: clause "pilot": if.place_id.in: must list at least one value (an empty in never holds)`, st.LastError.Message)
	require.False(t, st.LastError.At.IsZero())
	require.Equal(t, 1, st.RefusedTotal)
	require.Equal(t, want, st.Exps, "the last good set stays in force")
	require.True(t, loadedAt.Equal(*st.LoadedAt))
}
