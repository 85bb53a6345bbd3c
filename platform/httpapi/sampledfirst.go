package httpapi

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// Sampling first. otelhttp does all its work for every request — request
// attributes, wrappers around the body and the response writer, the span,
// response attributes, metric attributes — and the sampler only makes the
// span non-recording: on the tracking endpoint, whose answers come from
// memory, that was +50% CPU per request at 10% sampling (bench:tracing).
// So Traced starts the server span itself first, with otelhttp's own
// tracer; when the sampler drops it, the request goes to the mux with that
// non-recording span in its context (its ids still propagate, as
// otelhttp's would) and otelhttp is skipped; when it records, otelhttp
// runs and is handed that very span instead of starting a second one, so
// the sampler decides once. The sampler sees the span's kind and parent,
// not otelhttp's request attributes (no SDK sampler set from the
// environment reads them).

// preStartedKey carries the span otelhttp is to adopt.
type preStartedKey struct{}

// adoptingProvider gives otelhttp a tracer that adopts the pre-started
// span.
type adoptingProvider struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p adoptingProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return adoptingTracer{Tracer: p.tp.Tracer(name, opts...)}
}

type adoptingTracer struct {
	trace.Tracer
}

// Start returns the pre-started span, renamed and given the attributes and
// links otelhttp asks for, or starts one when there is none.
func (t adoptingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	span, ok := ctx.Value(preStartedKey{}).(trace.Span)
	if !ok || span == nil {
		return t.Tracer.Start(ctx, name, opts...)
	}
	cfg := trace.NewSpanStartConfig(opts...)
	span.SetName(name)
	span.SetAttributes(cfg.Attributes()...)
	for _, l := range cfg.Links() {
		span.AddLink(l)
	}
	// Adopted once: a span started further down with this tracer is new.
	ctx = context.WithValue(ctx, preStartedKey{}, nil)
	return trace.ContextWithSpan(ctx, span), span
}
