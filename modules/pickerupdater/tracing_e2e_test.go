package pickerupdater_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// The whole service with tracing on, exporting to the SDK's in-memory
// exporter: a picker event inserted through the River client (so through
// the otelriver middleware) gives an insert span, a work span linked to it
// and a group-commit span under the work span; a tracking request gives a
// server span named by its route; no span anywhere carries the eater's id
// or the phone number. It lives here because picker-updater is the module
// allowed to know picker-ingest; it drives only the service's edges.
func TestTracesFromEventToTrackingCarryNoIdentity(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	app := apptest.Start(t, nil, fx.Decorate(func(trace.TracerProvider) trace.TracerProvider { return tp }))

	const (
		eater = "eater-7f3a9c41"
		phone = "+79995551234"
	)
	orderNr := fmt.Sprintf("trace-%d", time.Now().UnixNano())
	ctx := context.Background()
	_, err := app.Client.Insert(ctx, pickeringest.PickerOrderArgs{
		EventType: tracking.EventStatusChange, OrderNr: orderNr, OrderStatus: tracking.PickerNew,
		PlaceID: "40", CustomerID: eater, PickerID: "picker-1", CreatedAt: time.Now().Add(-time.Minute),
	}, nil)
	require.NoError(t, err)

	workName := "river.work/" + pickeringest.Kind
	var insert, work, commit tracetest.SpanStub
	pgtest.Eventually(t, 30*time.Second, func() bool {
		insert, work, commit = tracetest.SpanStub{}, tracetest.SpanStub{}, tracetest.SpanStub{}
		for _, s := range exp.GetSpans() {
			switch s.Name {
			case "river.insert_many":
				insert = s
			case workName:
				work = s
			case "queue.group_commit":
				commit = s
			}
		}
		return insert.Name != "" && work.Name != "" && commit.Name != ""
	}, "insert, work and commit spans")

	require.Equal(t, trace.SpanKindProducer, insert.SpanKind)
	require.Equal(t, trace.SpanKindConsumer, work.SpanKind)
	require.Len(t, work.Links, 1, "the work span links to the insert span")
	require.Equal(t, insert.SpanContext.SpanID(), work.Links[0].SpanContext.SpanID())
	require.Equal(t, insert.SpanContext.TraceID(), work.Links[0].SpanContext.TraceID())
	require.NotEqual(t, insert.SpanContext.TraceID(), work.SpanContext.TraceID(), "a job starts its own trace (otelriver), linked")
	require.Equal(t, work.SpanContext.SpanID(), commit.Parent.SpanID(), "the commit hangs off the job's work span")
	require.Equal(t, work.SpanContext.TraceID(), commit.SpanContext.TraceID())
	require.Contains(t, attrs(commit), "queue.group_commit.jobs=1")

	// The phone, so it is in flight through insert, work and commit too.
	_, err = app.Client.Insert(ctx, pickeringest.PickerOrderArgs{
		EventType: tracking.EventPickerPhoneForwardingReady, OrderNr: orderNr, PickerID: "picker-1",
		OrderStatus: tracking.PickerNew, PlaceID: "40", CustomerID: eater,
		CustomerPickerPhoneForwarding: &pickeringest.Forwarding{Phone: phone, ExpiresAt: time.Now().Add(time.Hour)},
		CreatedAt:                     time.Now(),
	}, nil)
	require.NoError(t, err)
	pgtest.Eventually(t, 10*time.Second, func() bool {
		return count(exp, workName) == 2 && count(exp, "queue.group_commit") >= 2
	}, "the phone event worked and committed")

	const route = "GET /eats/v1/eats-orders-tracking/v1/tracking"
	code, body := app.Get(t, "/eats/v1/eats-orders-tracking/v1/tracking?order_nr="+orderNr, map[string]string{
		"X-Eats-User": "user_id=" + eater + ", personal_phone_id=" + phone, "X-YaTaxi-User": "eats_user_id=" + eater,
	})
	require.Equal(t, http.StatusOK, code, "%s", body)
	var server tracetest.SpanStub
	pgtest.Eventually(t, 10*time.Second, func() bool {
		for _, s := range exp.GetSpans() {
			if s.SpanKind == trace.SpanKindServer {
				server = s
			}
		}
		return server.Name != ""
	}, "a server span")
	require.Equal(t, route, server.Name, "named by the route pattern, not the raw path")
	require.Contains(t, attrs(server), "http.route=/eats/v1/eats-orders-tracking/v1/tracking")

	// Probes and scrapes are not traced.
	code, _ = app.Get(t, "/readyz", nil)
	require.Equal(t, http.StatusOK, code)

	for _, s := range exp.GetSpans() {
		require.NotEqual(t, "GET /readyz", s.Name)
		for _, text := range append(attrs(s), s.Name, s.Status.Description) {
			for _, secret := range []string{eater, phone, strings.TrimPrefix(phone, "+")} {
				require.NotContains(t, text, secret, "span %q", s.Name)
			}
		}
	}
}

// attrs is every attribute of s (its own, its events' and its links') as key=value.
func attrs(s tracetest.SpanStub) []string {
	var out []string
	for _, kv := range s.Attributes {
		out = append(out, string(kv.Key)+"="+kv.Value.String())
	}
	for _, e := range s.Events {
		out = append(out, e.Name)
		for _, kv := range e.Attributes {
			out = append(out, string(kv.Key)+"="+kv.Value.String())
		}
	}
	for _, l := range s.Links {
		for _, kv := range l.Attributes {
			out = append(out, string(kv.Key)+"="+kv.Value.String())
		}
	}
	return out
}

func count(exp *tracetest.InMemoryExporter, name string) int {
	n := 0
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			n++
		}
	}
	return n
}
