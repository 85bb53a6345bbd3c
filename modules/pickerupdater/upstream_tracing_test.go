package pickerupdater

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eats/eats-orders-tracking/modules/pickerupdater/pickerfake"
)

func spanAttrs(s tracetest.SpanStub) map[string]string {
	out := map[string]string{}
	for _, kv := range s.Attributes {
		out[string(kv.Key)] = kv.Value.String()
	}
	return out
}

// TestUpstreamCallSpanCarriesTheBreakerState: each call is one client span
// under the caller's span, with the breaker's state before and after it,
// the attempts and the outcome; the call that opens the breaker says so,
// and the next one, refused, says it was open. No phone in any attribute.
func TestUpstreamCallSpanCarriesTheBreakerState(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	b := setupUpstream(t, upstreamConfig{MaxAttempts: 2, BreakerFailures: 2, BreakerDelay: time.Minute})
	b.up.setTracing(tp)
	const phone = "+79001234567"
	b.fake.Set("251120-1", pickerfake.Order{Status: "picking", PickerID: "p", PlaceID: 1, Phone: phone, PhoneExpiresAt: time.Now().Add(time.Hour)})
	b.fake.SetBehaviour("251120-2", pickerfake.Respond(http.StatusServiceUnavailable, `{"code":"down"}`))

	ctx, parent := tp.Tracer("test").Start(context.Background(), "river.work/picker_order_refresh")
	_, err := b.up.Order(ctx, "251120-1")
	require.NoError(t, err)
	_, err = b.up.Order(ctx, "251120-2")
	require.ErrorIs(t, err, errUpstreamUnavailable)
	_, err = b.up.Order(ctx, "251120-1")
	require.ErrorIs(t, err, errBreakerOpen)
	parent.End()

	var calls []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "eats-picker-orders GET /api/v1/order" {
			calls = append(calls, s)
		}
		for _, kv := range s.Attributes {
			require.NotContains(t, kv.Value.String(), phone[1:])
		}
	}
	require.Len(t, calls, 3)
	for _, c := range calls {
		require.Equal(t, trace.SpanKindClient, c.SpanKind)
		require.Equal(t, parent.SpanContext().SpanID(), c.Parent.SpanID())
	}
	require.Equal(t, map[string]string{
		attrBreakerState: "closed", attrBreakerStateAfter: "closed", attrAttempts: "1", attrOutcome: outcomeOK,
	}, spanAttrs(calls[0]))
	require.Equal(t, map[string]string{
		attrBreakerState: "closed", attrBreakerStateAfter: "open", attrAttempts: "2", attrOutcome: outcomeError,
	}, spanAttrs(calls[1]))
	require.Equal(t, map[string]string{
		attrBreakerState: "open", attrBreakerStateAfter: "open", attrAttempts: "0", attrOutcome: outcomeBreakerOpen,
	}, spanAttrs(calls[2]))
	require.Equal(t, "Error", calls[2].Status.Code.String())
}

// TestUpstreamPropagatesTraceContext: eats-picker-orders gets a W3C
// traceparent naming our call's trace, so a traced upstream continues it.
func TestUpstreamPropagatesTraceContext(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider()
	got := make(chan string, 4)
	b := setupUpstream(t, upstreamConfig{})
	b.up.setTracing(tp)
	b.up.client.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got <- r.Header.Get("Traceparent")
		return nil, errors.New("not sent")
	})
	ctx, span := tp.Tracer("test").Start(context.Background(), "work")
	defer span.End()
	_, _ = b.up.Order(ctx, "251120-3")
	require.Contains(t, <-got, span.SpanContext().TraceID().String())
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
