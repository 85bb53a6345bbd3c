// Package apptest starts the whole service inside a test: a fresh database
// cloned from the migrated template, a private Redis key prefix, HTTP on a
// free loopback port, and the internal token set. End-to-end tests use it
// the way a client would.
package apptest

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules"
	"github.com/eats/eats-orders-tracking/platform"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// Token is the internal API token of test apps.
const Token = pgtest.Token

// App is a running service.
type App struct {
	URL    string
	DSN    string
	DB     *sqlx.DB
	Client *queue.Client
	Env    config.Environment
	Logs   *pgtest.SafeBuffer
	fx     *fx.App
}

// Graph is the whole service for environ, as main.go composes it for
// `serve`: the platform's inputs, platform.Module, every module, and what
// serve runs on start. logs may be nil.
func Graph(environ config.Environment, logs io.Writer) fx.Option {
	return fx.Options(
		pgtest.Inputs(environ, logs),
		platform.Module,
		modules.Module,
		platform.Serve(environ),
	)
}

// Start runs the service with pgtest.Env(tb, overrides) plus extra fx options and
// stops it when the test ends.
func Start(tb testing.TB, overrides map[string]string, extra ...fx.Option) *App {
	tb.Helper()
	return StartEnv(tb, pgtest.Env(tb, overrides), extra...)
}

// StartEnv runs the service with exactly environ.
func StartEnv(tb testing.TB, environ config.Environment, extra ...fx.Option) *App {
	tb.Helper()
	a := &App{Env: environ, DSN: environ["DATABASE_URL"], Logs: &pgtest.SafeBuffer{}}
	var srv *httpapi.Server
	fxApp := fx.New(
		Graph(environ, a.Logs),
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
