package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
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
	h.ServeHTTP(httptest.NewRecorder(), req)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/readyz", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nothing/"+eater, nil))

	spans := exp.GetSpans()
	require.Len(t, spans, 2, "the probe is not traced")
	require.Equal(t, "GET /eats/v1/eats-orders-tracking/v1/tracking", spans[0].Name)
	require.Equal(t, trace.SpanKindServer, spans[0].SpanKind)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", spans[0].Parent.TraceID().String(), "the caller's trace is continued")
	require.Equal(t, "GET", spans[1].Name, "an unmatched path never names a span")
	for _, s := range spans {
		for _, kv := range s.Attributes {
			v := kv.Value.String()
			require.NotContains(t, v, eater, "span %s attribute %s", s.Name, kv.Key)
			require.NotContains(t, v, phone[1:], "span %s attribute %s", s.Name, kv.Key)
		}
	}
}
