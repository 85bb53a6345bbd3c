package tracing

import (
	"context"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// Sampling first. The instrumentation libraries we use (otelhttp,
// otelriver) do all their work for every request or job — attributes,
// wrappers, metric attribute sets, parsing a job's metadata for a link —
// and the sampler only makes the span non-recording: on this service's
// hot paths that was most of tracing's cost at 10% sampling. So the
// caller starts the span itself first, with the library's own tracer
// scope; when the sampler drops it, the work runs with that non-recording
// span in its context (its ids still propagate) and the library is
// skipped; when it records, the library runs and is handed that very span
// (Adopting) instead of starting a second one, so the sampler decides
// once. The sampler sees the span's kind and parent, not the attributes
// and links the library would add (no SDK sampler set from the
// environment reads them).

// preStartedKey carries the span a library's tracer is to adopt.
type preStartedKey struct{}

// WithPreStarted marks span as the one the next Start of an Adopting
// tracer under ctx returns.
func WithPreStarted(ctx context.Context, span trace.Span) context.Context {
	return context.WithValue(ctx, preStartedKey{}, span)
}

// Adopting gives a library tracers that adopt the span WithPreStarted put
// in the context, and start spans from tp otherwise. The attributes named
// in drop are removed from those a library starts a span with, before the
// span holds them: what the service must not keep (a customer's address),
// or what the caller sets better later (the raw path, before the route is
// known). Fewer attributes are also less to copy, encode and export.
// Attributes the library sets later on the span are not filtered.
func Adopting(tp trace.TracerProvider, drop ...attribute.Key) trace.TracerProvider {
	return adoptingProvider{tp: tp, drop: drop}
}

type adoptingProvider struct {
	embedded.TracerProvider
	tp   trace.TracerProvider
	drop []attribute.Key
}

func (p adoptingProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return adoptingTracer{Tracer: p.tp.Tracer(name, opts...), drop: p.drop}
}

type adoptingTracer struct {
	trace.Tracer
	drop []attribute.Key
}

// kept removes the dropped keys from attrs, in place: a SpanStartConfig's
// attributes are its own copy.
func (t adoptingTracer) kept(attrs []attribute.KeyValue) []attribute.KeyValue {
	return slices.DeleteFunc(attrs, func(kv attribute.KeyValue) bool { return slices.Contains(t.drop, kv.Key) })
}

// Start returns the pre-started span, renamed and given the attributes and
// links the library asks for, or starts one when there is none.
func (t adoptingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	span, ok := ctx.Value(preStartedKey{}).(trace.Span)
	adopt := ok && span != nil
	if !adopt && len(t.drop) == 0 {
		return t.Tracer.Start(ctx, name, opts...)
	}
	cfg := trace.NewSpanStartConfig(opts...)
	attrs := t.kept(cfg.Attributes())
	if !adopt {
		opts = []trace.SpanStartOption{trace.WithAttributes(attrs...), trace.WithLinks(cfg.Links()...),
			trace.WithSpanKind(cfg.SpanKind()), trace.WithTimestamp(cfg.Timestamp())}
		if cfg.NewRoot() {
			opts = append(opts, trace.WithNewRoot())
		}
		return t.Tracer.Start(ctx, name, opts...)
	}
	span.SetName(name)
	span.SetAttributes(attrs...)
	for _, l := range cfg.Links() {
		span.AddLink(l)
	}
	// Adopted once: a span started further down with this tracer is new.
	ctx = context.WithValue(ctx, preStartedKey{}, nil)
	return trace.ContextWithSpan(ctx, span), span
}
