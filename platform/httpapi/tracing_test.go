package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eats/eats-orders-tracking/platform/httpapi"
)

// TestTracedNamesSpansByRouteAndRecordsNoIdentity: a matched request's span
// is named by the mux pattern, an unmatched one by its method only; the
// caller's traceparent is continued; probes are not traced; and neither
// identity headers nor the query string become attributes.
func TestTracedNamesSpansByRouteAndRecordsNoIdentity(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("GET /eats/v1/eats-orders-tracking/v1/tracking", ok)
	mux.Handle("GET /readyz", ok)
	h := httpapi.Traced(mux, tp)

	const eater, phone = "eater-991", "+79990001122"
	req := httptest.NewRequest(http.MethodGet, "/eats/v1/eats-orders-tracking/v1/tracking?phone="+phone[1:]+"&eater="+eater, nil)
	req.Header.Set("X-Eats-User", "user_id="+eater+", personal_phone_id="+phone)
	req.Header.Set("X-YaTaxi-User", "eats_user_id="+eater)
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	const customer, gateway = "203.0.113.77", "198.51.100.9"
	req.Header.Set("X-Forwarded-For", customer)
	req.RemoteAddr = gateway + ":51234"
	req.Header.Set("User-Agent", "eats-app/7.1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/readyz", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nothing/"+eater, nil))

	spans := exp.GetSpans()
	require.Len(t, spans, 2, "the probe is not traced")
	require.Equal(t, "GET /eats/v1/eats-orders-tracking/v1/tracking", spans[0].Name)
	require.Equal(t, trace.SpanKindServer, spans[0].SpanKind)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", spans[0].Parent.TraceID().String(), "the caller's trace is continued")
	require.Contains(t, spans[0].Attributes, attribute.String("http.route", "/eats/v1/eats-orders-tracking/v1/tracking"))
	require.Contains(t, spans[0].Attributes, attribute.String("url.path", "/eats/v1/eats-orders-tracking/v1/tracking"))
	require.Equal(t, "GET", spans[1].Name, "an unmatched path never names a span")
	require.Contains(t, spans[1].Attributes, attribute.String("url.path", "unmatched"))
	require.Contains(t, spans[0].Attributes, attribute.String("user_agent.original", "eats-app/7.1"), "otelhttp's other attributes stay")
	for _, s := range spans {
		paths := 0
		for _, kv := range s.Attributes {
			v := kv.Value.String()
			require.NotContains(t, v, eater, "span %s attribute %s", s.Name, kv.Key)
			require.NotContains(t, v, phone[1:], "span %s attribute %s", s.Name, kv.Key)
			require.NotContains(t, v, customer, "span %s attribute %s: the customer's address", s.Name, kv.Key)
			require.NotContains(t, v, gateway, "span %s attribute %s: the peer's address", s.Name, kv.Key)
			require.NotContains(t, []attribute.Key{"client.address", "network.peer.address", "network.peer.port"}, kv.Key, "span %s", s.Name)
			if kv.Key == "url.path" {
				paths++
			}
		}
		require.Equal(t, 1, paths, "span %s: url.path once, the route's", s.Name)
	}
}

// TestTheSamplerDecidesOnceBeforeOtelhttp: at a 50% ratio about half the
// requests are recorded, one root span each, with otelhttp's attributes on
// the span it adopted (not a child of the one Traced started); an unsampled request still
// carries the caller's trace, unsampled, to the handler, so calls it makes
// propagate the decision.
func TestTheSamplerDecidesOnceBeforeOtelhttp(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.5))))
	var seen []trace.SpanContext
	mux := http.NewServeMux()
	mux.Handle("GET /eats/v1/eats-orders-tracking/v1/tracking", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, trace.SpanContextFromContext(r.Context()))
		w.WriteHeader(http.StatusOK)
	}))
	h := httpapi.Traced(mux, tp)

	const n = 2000
	for range n {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/eats/v1/eats-orders-tracking/v1/tracking", nil))
	}
	spans := exp.GetSpans()
	require.InDelta(t, n/2, len(spans), n/10, "recorded %d of %d at 50%%", len(spans), n)
	sampled := 0
	for _, sc := range seen {
		require.True(t, sc.IsValid(), "every request has a span context")
		if sc.IsSampled() {
			sampled++
		}
	}
	require.Len(t, spans, sampled, "the recorded spans are the sampled requests, one each")
	for _, s := range spans {
		require.Equal(t, "GET /eats/v1/eats-orders-tracking/v1/tracking", s.Name)
		require.Equal(t, trace.SpanKindServer, s.SpanKind)
		require.False(t, s.Parent.IsValid(), "a root, not the child of a span that was started and never ended")
		require.Equal(t, "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", s.InstrumentationScope.Name)
		var status int64
		for _, kv := range s.Attributes {
			if kv.Key == "http.response.status_code" {
				status = kv.Value.AsInt64()
			}
		}
		require.EqualValues(t, http.StatusOK, status, "otelhttp's response attributes are on the adopted span")
	}

	// A caller that did not sample: nothing recorded, its trace goes on unsampled.
	exp.Reset()
	seen = nil
	req := httptest.NewRequest(http.MethodGet, "/eats/v1/eats-orders-tracking/v1/tracking", nil)
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	h.ServeHTTP(httptest.NewRecorder(), req)
	require.Empty(t, exp.GetSpans())
	require.Len(t, seen, 1)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", seen[0].TraceID().String())
	require.False(t, seen[0].IsSampled())

	// A caller that sampled: recorded, as its child.
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	spans = exp.GetSpans()
	require.Len(t, spans, 1)
	require.Equal(t, "00f067aa0ba902b7", spans[0].Parent.SpanID().String())
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", spans[0].SpanContext.TraceID().String())
}
