package otlpsink_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/shutdown"
	"github.com/eats/eats-orders-tracking/platform/tracing"
	"github.com/eats/eats-orders-tracking/platform/tracing/otlpsink"
)

func start(t *testing.T) *otlpsink.Sink {
	t.Helper()
	s, err := otlpsink.Start()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// TestTheServiceExporterDeliversEverySpan: platform/tracing's provider,
// pointed at the sink as an operator would (the traces endpoint variable),
// delivers all N spans by the time it stopped, in more than one export.
func TestTheServiceExporterDeliversEverySpan(t *testing.T) {
	t.Parallel()
	sink := start(t)
	lc := fxtest.NewLifecycle(t)
	tp, err := tracing.New(tracing.Params{
		Lifecycle: lc, Environ: config.Environment{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink.URL()},
		Logger: slog.New(slog.DiscardHandler), Budget: shutdown.NewBudget(10 * time.Second),
	})
	require.NoError(t, err)
	lc.RequireStart()
	const n = 1500 // three of the SDK's default batches (512)
	tracer := tp.Tracer("otlpsink_test")
	for range n {
		_, span := tracer.Start(context.Background(), "work")
		span.End()
	}
	lc.RequireStop()

	got := sink.Stats()
	require.EqualValues(t, n, got.Spans)
	require.GreaterOrEqual(t, got.Requests, int64(3))
	require.Greater(t, got.Bytes, int64(n*20), "a span is more than 20 bytes on the wire")
}

// TestGzipExportsAreCounted: an exporter compressing its bodies
// (OTEL_EXPORTER_OTLP_COMPRESSION=gzip) is decoded too, and Bytes counts
// the compressed body.
func TestGzipExportsAreCounted(t *testing.T) {
	t.Parallel()
	sink := start(t)
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(sink.URL()), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	for range 10 {
		_, span := tp.Tracer("otlpsink_test").Start(context.Background(), "same name every time, so gzip shrinks it")
		span.End()
	}
	require.NoError(t, tp.Shutdown(context.Background()))
	got := sink.Stats()
	require.Equal(t, otlpsink.Stats{Requests: 10, Spans: 10, Bytes: got.Bytes}, got)
	require.Positive(t, got.Bytes)
}

// TestWhatIsNotAnExportIsRefused: a body that is not an
// ExportTraceServiceRequest, another path or content type get 4xx and count
// nothing.
func TestWhatIsNotAnExportIsRefused(t *testing.T) {
	t.Parallel()
	sink := start(t)
	post := func(url, ctype string, body []byte) int {
		resp, err := http.Post(url, ctype, bytes.NewReader(body)) //nolint:gosec // the sink on loopback this test started
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode
	}
	require.Equal(t, http.StatusBadRequest, post(sink.URL(), "application/x-protobuf", []byte("not protobuf at all")))
	require.Equal(t, http.StatusBadRequest, post(sink.URL(), "application/x-protobuf", []byte{0xf8, 0x01, 0x01})) // field 31 only
	require.Equal(t, http.StatusUnsupportedMediaType, post(sink.URL(), "application/json", []byte("{}")))
	require.Equal(t, http.StatusNotFound, post(sink.BaseURL()+"/v1/metrics", "application/x-protobuf", nil))
	require.Equal(t, otlpsink.Stats{}, sink.Stats())
}
