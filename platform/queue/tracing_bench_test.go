package queue_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/eats/eats-orders-tracking/platform/queue"
)

// BenchmarkTracingWork is what the work span costs one job, beside the job
// itself (a no-op here): off, and at never, 10% and always-on, through
// queue.Tracing (the sampler first) and, at 10%, through otelriver alone
// as it was before, exporting OTLP/HTTP to a loopback receiver that
// discards the body. The job's metadata carries a producer's traceparent,
// so otelriver parses it for the link. cpu-µs/op is the process's user +
// system time per job, the batch processor's and exporter's goroutines
// included.
func BenchmarkTracingWork(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer sink.Close()
	job := &rivertype.JobRow{
		ID: 42, Attempt: 1, Kind: "picker_order", Queue: "picker_orders", Priority: 1,
		CreatedAt: time.Now(), ScheduledAt: time.Now(),
		EncodedArgs: []byte(`{"order_nr":"230101-100001"}`),
		Metadata:    []byte(`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`),
	}
	noop := func(context.Context) error { return nil }
	for _, mode := range []struct {
		name   string
		ratio  float64
		before bool // otelriver alone, as before the sampler went first
	}{{"off", -1, false}, {"never", 0, false}, {"10%", 0.1, false}, {"10%-otelriver-alone", 0.1, true}, {"always", 1, false}} {
		b.Run(mode.name, func(b *testing.B) {
			work := func(ctx context.Context, _ *rivertype.JobRow, inner func(context.Context) error) error {
				return inner(ctx)
			}
			var sdk *sdktrace.TracerProvider
			if mode.ratio >= 0 {
				exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(sink.URL+"/v1/traces"))
				if err != nil {
					b.Fatal(err)
				}
				sdk = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
					sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(mode.ratio))))
				defer func() { _ = sdk.Shutdown(context.Background()) }()
				work = queue.Tracing(sdk).Work
				if mode.before {
					work = otelriver.NewMiddleware(&otelriver.MiddlewareConfig{
						EnableTracePropagation: true, EnableWorkSpanJobKindSuffix: true,
						TracerProvider: sdk, MeterProvider: metricnoop.NewMeterProvider(),
					}).Work
				}
			}
			ctx := context.Background()
			b.ReportAllocs()
			before := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				_ = work(ctx, job, noop)
			}
			b.StopTimer()
			if sdk != nil {
				_ = sdk.ForceFlush(context.Background())
			}
			b.ReportMetric(float64((cpuTime()-before).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
