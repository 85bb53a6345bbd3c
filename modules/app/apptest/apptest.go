// Package apptest starts the whole service inside a test: a fresh database
// cloned from the migrated template, a private Redis key prefix, HTTP on a
// free loopback port, and the internal token set. End-to-end tests use it
// the way a client would.
package apptest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/app"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/logging"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// Token is the internal API token of test apps.
const Token = "test-internal-token"

// App is a running service.
type App struct {
	URL    string
	DSN    string
	DB     *sqlx.DB
	Client *queue.Client
	Env    config.Environment
	Logs   *SafeBuffer
	fx     *fx.App
}

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Env is the environment of a test app on a fresh database; overrides win.
func Env(tb testing.TB, overrides map[string]string) config.Environment {
	tb.Helper()
	base := config.Environment{
		"DATABASE_URL":       pgtest.Clone(tb, app.MigrationSource()),
		"REDIS_URL":          pgtest.RedisURL(),
		"REDIS_KEY_PREFIX":   pgtest.RedisPrefix(tb),
		"HTTP_ADDR":          "127.0.0.1:0",
		"INTERNAL_API_TOKEN": Token,
		"EXPERIMENTS_FILE":   filepath.Join(RepoRoot(), "experiments.yaml"),
		"SHUTDOWN_TIMEOUT":   "10s",
		"LOG_LEVEL":          "debug",
	}
	return base.With(overrides)
}

// Start runs the service with Env(tb, overrides) plus extra fx options and
// stops it when the test ends.
func Start(tb testing.TB, overrides map[string]string, extra ...fx.Option) *App {
	tb.Helper()
	return StartEnv(tb, Env(tb, overrides), extra...)
}

// StartEnv runs the service with exactly environ.
func StartEnv(tb testing.TB, environ config.Environment, extra ...fx.Option) *App {
	tb.Helper()
	a := &App{Env: environ, DSN: environ["DATABASE_URL"], Logs: &SafeBuffer{}}
	var srv *httpapi.Server
	fxApp := fx.New(
		app.Serve(environ),
		fx.Provide(func() logging.Output { return a.Logs }),
		fx.Populate(&a.DB, &a.Client, &srv),
		fx.Options(extra...),
	)
	require.NoError(tb, fxApp.Err())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(tb, fxApp.Start(ctx), "logs:\n%s", a.Logs.String())
	a.fx = fxApp
	a.URL = "http://" + srv.Addr()
	tb.Cleanup(func() { a.Stop(tb) })
	return a
}

// Stop shuts the app down gracefully (idempotent).
func (a *App) Stop(tb testing.TB) {
	if a.fx == nil {
		return
	}
	f := a.fx
	a.fx = nil
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(tb, f.Stop(ctx))
}

// Do sends a request with the given headers and returns status and body.
func (a *App) Do(tb testing.TB, method, path string, body io.Reader, headers map[string]string) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, a.URL+path, body)
	require.NoError(tb, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, resp.Header, b
}

// Get is Do for GET without a body.
func (a *App) Get(tb testing.TB, path string, headers map[string]string) (int, []byte) {
	tb.Helper()
	code, _, b := a.Do(tb, http.MethodGet, path, nil, headers)
	return code, b
}

// Internal returns the headers that carry the internal token.
func Internal() map[string]string { return map[string]string{"Authorization": "Bearer " + Token} }

// Eventually polls cond every 10 ms until it holds or the deadline passes.
func Eventually(tb testing.TB, within time.Duration, cond func() bool, msg string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %s: "+msg, append([]any{within}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SafeBuffer collects log output from many goroutines.
type SafeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SafeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SafeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the log lines containing substr.
func (b *SafeBuffer) Lines(substr string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}
