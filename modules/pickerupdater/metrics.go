package pickerupdater

import (
	"github.com/prometheus/client_golang/prometheus"

	platformmetrics "github.com/eats/eats-orders-tracking/platform/metrics"
)

// metrics are the updater's and the refresh job's own metrics; the
// upstream client registers its own (eot_picker_orders_*), and River's
// middleware counts every job by kind and outcome.
type metrics struct {
	// stale counts the stale orders (no refresh pending) a tick took, by
	// status.
	stale *prometheus.CounterVec
	// enqueued counts refresh jobs a tick inserted, or skipped because one
	// for the order was already pending.
	enqueued *prometheus.CounterVec
	// selection times a tick's selection queries, all statuses together.
	selection prometheus.Histogram
	// capped counts ticks that used their whole PICKER_UPDATER_MAX_ENQUEUE
	// budget with stale orders left for the next ticks.
	capped prometheus.Counter
	// refreshed counts refresh jobs by outcome.
	refreshed *prometheus.CounterVec
	// future counts answers whose status time was more than
	// tracking.MaxFutureSkew after the database's clock: not applied.
	future prometheus.Counter
}

// Refresh outcomes, the values of eot_picker_refresh_total{outcome}.
const (
	refreshApplied     = "applied"      // 200: applied, updated_at moved
	refreshNotFound    = "not_found"    // 404: row left, updated_at moved
	refreshMalformed   = "malformed"    // not applied, job cancelled
	refreshRejected    = "rejected"     // a 4xx other than 404: job cancelled
	refreshUnavailable = "unavailable"  // timeouts, 5xx: River retries
	refreshBreakerOpen = "breaker_open" // not asked: job snoozed
	refreshGone        = "gone"         // the row was deleted meanwhile
	refreshMoved       = "moved"        // the row moved since the tick: not asked
	refreshOff         = "off"          // PICKER_ORDERS_URL is empty
	refreshFuture      = "future"       // status time ahead: not applied, updated_at moved
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: platformmetrics.Namespace, Name: "picker_updater_stale_total",
			Help: "Picker orders the updater found quiet past their status' timeout with no refresh pending, and took for refresh, by status.",
		}, []string{"status"}),
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: platformmetrics.Namespace, Name: "picker_updater_enqueued_total",
			Help: "Refresh jobs the updater enqueued (inserted) or found already pending (duplicate).",
		}, []string{"result"}),
		selection: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: platformmetrics.Namespace, Name: "picker_updater_selection_seconds",
			Help:    "Time a tick spent selecting stale picker orders and enqueuing their refresh jobs.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		capped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: platformmetrics.Namespace, Name: "picker_updater_capped_ticks_total",
			Help: "Ticks that enqueued PICKER_UPDATER_MAX_ENQUEUE refresh jobs and left stale orders for the next ticks.",
		}),
		refreshed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: platformmetrics.Namespace, Name: "picker_refresh_total",
			Help: "Picker order refreshes, by outcome (applied, not_found, malformed, rejected, unavailable, breaker_open, gone, moved, off, future).",
		}, []string{"outcome"}),
		future: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: platformmetrics.Namespace, Name: "picker_updater_future_total",
			Help: "eats-picker-orders answers whose status_updated_at was more than 5 minutes after the database's clock: not applied, updated_at moved.",
		}),
	}
	if err := platformmetrics.Register(reg, "picker updater", m.stale, m.enqueued, m.selection, m.capped, m.refreshed, m.future); err != nil {
		return nil, err
	}
	return m, nil
}
