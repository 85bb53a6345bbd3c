package pickeringest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	platformmetrics "github.com/eats/eats-orders-tracking/platform/metrics"
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

// Cache lookup results, the label values of eot_picker_phone_cache_total.
const (
	cacheHit   = "hit"
	cacheMiss  = "miss"
	cacheError = "error"
)

// metrics are picker-ingest's: the worker's, the apply path's and the phone
// cache's.
type metrics struct {
	events           *prometheus.CounterVec
	applySeconds     prometheus.Histogram
	createdAtMissing prometheus.Counter
	expiredOnArrival prometheus.Counter
	phoneLookups     *prometheus.CounterVec
	phoneWriteErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	ns := platformmetrics.Namespace
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "picker_events_total",
			Help: "Picker events worked, by event_type (known types, else unknown) and outcome (applied, duplicate, ignored, cancelled, retried).",
		}, []string{"event_type", "outcome"}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "picker_event_apply_seconds",
			Help:    "Time to apply one picker event: validation, the upsert and the job's completion in one transaction, commit included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		createdAtMissing: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "picker_events_created_at_missing_total",
			Help: "Applied picker events without created_at; the job's insertion time was used.",
		}),
		expiredOnArrival: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "picker_phone_expired_on_arrival_total",
			Help: "Forwarding phones stored although their expiry had already passed (never shown).",
		}),
		phoneLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "picker_phone_cache_total",
			Help: "Phone cache lookups by result: hit, miss (read from PostgreSQL), error (Redis failed; read from PostgreSQL).",
		}, []string{"result"}),
		phoneWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "picker_phone_cache_write_errors_total",
			Help: "Phone cache entries that could not be written to Redis (after an applied event or a fill on a miss).",
		}),
	}
	if err := platformmetrics.Register(reg, "picker-ingest",
		m.events, m.applySeconds, m.createdAtMissing, m.expiredOnArrival, m.phoneLookups, m.phoneWriteErrors); err != nil {
		return nil, err
	}
	for _, r := range []string{cacheHit, cacheMiss, cacheError} {
		m.phoneLookups.WithLabelValues(r) // every result shows from the start
	}
	return m, nil
}

func (m *metrics) count(t tracking.EventType, outcome string) {
	m.events.WithLabelValues(eventTypeLabel(t), outcome).Inc()
}

func eventTypeLabel(t tracking.EventType) string {
	if t.Known() {
		return string(t)
	}
	return eventTypeUnknown
}
