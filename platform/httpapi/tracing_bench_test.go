package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/eats/eats-orders-tracking/platform/httpapi"
)

// BenchmarkTraced is what the server span costs one tracking request, off,
// at 10% and always-on, exporting OTLP/HTTP to a loopback receiver that
// discards the body. cpu-µs/op is the process's user+system time per
// request: it includes the batch processor's and the exporter's
// goroutines, which ns/op (wall time of the loop) hides on a second core.
func BenchmarkTraced(b *testing.B) {
	answer := []byte(`{"payload":{"trackedOrders":[{"orderNr":"230101-100001","title":"` + strings.Repeat("x", 400) + `"}]},"meta":{"checkAfter":15}}`)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer sink.Close()
	for _, mode := range []struct {
		name  string
		ratio float64
	}{{"off", -1}, {"never", 0}, {"10%", 0.1}, {"always", 1}} {
		b.Run(mode.name, func(b *testing.B) {
			mux := http.NewServeMux()
			mux.Handle("GET /eats/v1/eats-orders-tracking/v1/tracking", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(answer)
			}))
			var h http.Handler = mux
			var tp trace.TracerProvider = noop.NewTracerProvider()
			if mode.ratio >= 0 {
				exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(sink.URL+"/v1/traces"))
				if err != nil {
					b.Fatal(err)
				}
				sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
					sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(mode.ratio))))
				defer func() { _ = sdk.Shutdown(context.Background()) }()
				tp = sdk
				h = httpapi.Traced(mux, tp)
			}
			req := httptest.NewRequest(http.MethodGet, "/eats/v1/eats-orders-tracking/v1/tracking", nil)
			req.Header.Set("X-Eats-User", "user_id=100, personal_phone_id=p1")
			req.Header.Set("User-Agent", "wrk")
			req.RemoteAddr = "127.0.0.1:40000"
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			before := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
			b.StopTimer()
			if sdk, ok := tp.(*sdktrace.TracerProvider); ok {
				_ = sdk.ForceFlush(context.Background())
			}
			b.ReportMetric(float64((cpuTime()-before).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
