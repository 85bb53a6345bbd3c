package orderingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	platformmetrics "github.com/eats/eats-orders-tracking/platform/metrics"
)

// Outcome labels besides the upsert's results.
const (
	outcomeInvalid = "invalid"
	outcomeError   = "error"
)

// metrics are the module's: order events by outcome.
type metrics struct {
	events *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: platformmetrics.Namespace, Subsystem: "order_ingest", Name: "events_total",
		Help: "Order events by outcome: applied, reordered (only first_event_at moved), stale (older or duplicate), invalid (job cancelled), error (retried).",
	}, []string{"outcome"})}
	for _, o := range []string{string(resultApplied), string(resultReordered), string(resultStale), outcomeInvalid, outcomeError} {
		m.events.WithLabelValues(o)
	}
	if err := reg.Register(m.events); err != nil {
		return nil, fmt.Errorf("order-ingest: register metrics: %w", err)
	}
	return m, nil
}
