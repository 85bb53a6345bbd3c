package tracing_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/platform"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/shutdown"
	"github.com/eats/eats-orders-tracking/platform/tracing"
)

func TestEnabledOnlyWithAnEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  config.Environment
		want bool
	}{
		{"nothing set", config.Environment{}, false},
		{"empty endpoint", config.Environment{"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, false},
		{"endpoint", config.Environment{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}, true},
		{"traces endpoint", config.Environment{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://otel:4318/v1/traces"}, true},
		{"sdk disabled", config.Environment{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{"exporter none", config.Environment{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tracing.Enabled(tc.env))
		})
	}
}

func TestOffIsTheNoopProviderWithNothingStarted(t *testing.T) {
	t.Parallel()
	lc := fxtest.NewLifecycle(t)
	tp, err := tracing.New(tracing.Params{Lifecycle: lc, Environ: config.Environment{}, Logger: slog.New(slog.DiscardHandler), Budget: shutdown.NewBudget(time.Second)})
	require.NoError(t, err)
	require.IsType(t, noop.TracerProvider{}, tp)
	require.True(t, tracing.Off(tp))
	require.True(t, tracing.Off(nil))
	lc.RequireStart().RequireStop() // no hooks: nothing to start or flush
}

func TestOnlyHTTPProtobufIsAccepted(t *testing.T) {
	t.Parallel()
	_, err := tracing.New(tracing.Params{
		Lifecycle: fxtest.NewLifecycle(t), Logger: slog.New(slog.DiscardHandler), Budget: shutdown.NewBudget(time.Second),
		Environ: config.Environment{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
	})
	require.ErrorContains(t, err, "OTEL_EXPORTER_OTLP_PROTOCOL")
}

func TestABadEndpointStopsTheStart(t *testing.T) {
	t.Parallel()
	for _, endpoint := range []string{"otel-collector:4318", "ftp://otel", "http://"} {
		_, err := tracing.New(tracing.Params{
			Lifecycle: fxtest.NewLifecycle(t), Logger: slog.New(slog.DiscardHandler), Budget: shutdown.NewBudget(time.Second),
			Environ: config.Environment{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint},
		})
		require.ErrorContains(t, err, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
	}
}

// TestStopFlushesToTheOTLPEndpoint: a span ended just before stop reaches
// the collector as OTLP/HTTP protobuf on /v1/traces (the general endpoint
// with the signal's path appended), sent by the flush on stop.
func TestStopFlushesToTheOTLPEndpoint(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		paths    []string
		ctypes   []string
		received int
	)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths = append(paths, r.URL.Path)
		ctypes = append(ctypes, r.Header.Get("Content-Type"))
		received += len(b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(sink.Close)

	lc := fxtest.NewLifecycle(t)
	tp, err := tracing.New(tracing.Params{
		Lifecycle: lc, Environ: config.Environment{"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL + "/"},
		Logger: slog.New(slog.DiscardHandler), Budget: shutdown.NewBudget(5 * time.Second),
	})
	require.NoError(t, err)
	require.False(t, tracing.Off(tp))
	lc.RequireStart()
	_, span := tp.Tracer("test").Start(context.Background(), "one")
	span.End()
	lc.RequireStop()

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"/v1/traces"}, paths)
	require.Equal(t, []string{"application/x-protobuf"}, ctypes)
	require.Positive(t, received)
}

// TestPlatformExportsWhenAnEndpointIsSet: platform.Module as the service
// builds it, with only OTEL_EXPORTER_OTLP_ENDPOINT added, serves traced
// requests and sends their spans to the collector by the time it stopped.
func TestPlatformExportsWhenAnEndpointIsSet(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		posts int
	)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" && r.Method == http.MethodPost {
			mu.Lock()
			posts++
			mu.Unlock()
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(sink.Close)

	env := pgtest.Env(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL})
	var (
		tp  trace.TracerProvider
		srv *httpapi.Server
	)
	app := fxtest.New(t, pgtest.Inputs(env, nil), platform.Module, platform.Serve(env), fx.Populate(&tp, &srv))
	app.RequireStart()
	require.False(t, tracing.Off(tp))
	req, err := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+"/debug/pprof/", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+pgtest.Token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	app.RequireStop()

	mu.Lock()
	defer mu.Unlock()
	require.Positive(t, posts, "the server span was flushed to the collector on stop")
}
