package pickeringest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/metrics"
)

// Outcomes of a picker event job, the label values of eot_picker_events_total.
const (
	outcomeApplied   = "applied"   // a row changed
	outcomeDuplicate = "duplicate" // a duplicate or older event: nothing changed
	outcomeIgnored   = "ignored"   // ITEM_* or an unknown event type
	outcomeCancelled = "cancelled" // invalid input; the job row keeps the error
	outcomeRetried   = "retried"   // a transient failure; River retries
)

// eventTypeUnknown labels event types this service does not know, so a
// producer cannot grow the label set.
const eventTypeUnknown = "unknown"

// workerMetrics are the worker's counters and histogram.
type workerMetrics struct {
	events           *prometheus.CounterVec
	applySeconds     prometheus.Histogram
	createdAtMissing prometheus.Counter
}

func newWorkerMetrics(reg prometheus.Registerer) (*workerMetrics, error) {
	m := &workerMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "picker_events_total",
			Help: "Picker events worked, by event_type (known types, else unknown) and outcome (applied, duplicate, ignored, cancelled, retried).",
		}, []string{"event_type", "outcome"}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Name: "picker_event_apply_seconds",
			Help:    "Time to apply one picker event: validation, the upsert and the job's completion in one transaction, commit included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		createdAtMissing: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "picker_events_created_at_missing_total",
			Help: "Applied picker events without created_at; the job's insertion time was used.",
		}),
	}
	if err := metrics.Register(reg, "picker-ingest", m.events, m.applySeconds, m.createdAtMissing); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *workerMetrics) count(t tracking.EventType, outcome string) {
	m.events.WithLabelValues(eventTypeLabel(t), outcome).Inc()
}

func eventTypeLabel(t tracking.EventType) string {
	if t.Known() {
		return string(t)
	}
	return eventTypeUnknown
}
