package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eats/eats-orders-tracking/platform/tracing"
)

// TestAdoptingDropsTheNamedAttributes: a library's tracer from Adopting
// with keys to drop removes them from the attributes it starts a span
// with, whether it adopts the pre-started span or starts its own, and
// keeps everything else it asked for: the other attributes, the links, the
// kind, the timestamp, a new root. The adopted span is adopted once.
func TestAdoptingDropsTheNamedAttributes(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	lib := tracing.Adopting(tp, "client.address", "url.path").Tracer("lib")
	const customer = "203.0.113.77"
	linked := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	asked := []trace.SpanStartOption{
		trace.WithAttributes(attribute.String("client.address", customer), attribute.String("http.request.method", "GET"),
			attribute.String("url.path", "/raw/eater-991")),
		trace.WithLinks(trace.Link{SpanContext: linked}),
		trace.WithSpanKind(trace.SpanKindServer),
	}
	kept := func(s tracetest.SpanStub) {
		t.Helper()
		require.Equal(t, []attribute.KeyValue{attribute.String("http.request.method", "GET")}, s.Attributes, "span %s", s.Name)
		require.Len(t, s.Links, 1)
		require.Equal(t, linked, s.Links[0].SpanContext)
	}

	// Adopting the pre-started span.
	ctx, pre := tp.Tracer("caller").Start(context.Background(), "GET", trace.WithSpanKind(trace.SpanKindServer))
	ctx, span := lib.Start(tracing.WithPreStarted(ctx, pre), "GET /route", asked...)
	require.Equal(t, pre, span, "the pre-started span is adopted")
	_, child := lib.Start(ctx, "inner")
	require.NotEqual(t, pre, child, "adopted once: a span started under it is new")
	child.End()
	span.End()
	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	require.Equal(t, "GET /route", spans[1].Name)
	kept(spans[1])
	require.Equal(t, spans[1].SpanContext.SpanID(), spans[0].Parent.SpanID())

	// Starting its own, as a new root at a given time, under a parent.
	exp.Reset()
	parent, parentSpan := tp.Tracer("caller").Start(context.Background(), "parent")
	at := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	_, own := lib.Start(parent, "own", append(asked, trace.WithTimestamp(at), trace.WithNewRoot())...)
	own.End()
	parentSpan.End()
	spans = exp.GetSpans()
	require.Len(t, spans, 2)
	require.Equal(t, "own", spans[0].Name)
	kept(spans[0])
	require.Equal(t, trace.SpanKindServer, spans[0].SpanKind)
	require.Equal(t, at, spans[0].StartTime)
	require.False(t, spans[0].Parent.IsValid(), "a new root, as asked")
}
