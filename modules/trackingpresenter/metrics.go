package trackingpresenter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eats/eats-orders-tracking/modules/trackingpresenter/internal/statecache"
	"github.com/eats/eats-orders-tracking/platform/metrics"
)

// cacheOff labels requests answered with the cache turned off; the other
// labels are statecache's Results.
const cacheOff = "off"

// presenterMetrics are the endpoint's own (eot_tracking_state_cache_total,
// eot_tracking_answers_capped_total); the state cache registers its
// gauges (eot_tracking_change_feed_lag_seconds,
// eot_tracking_state_cache_entries).
type presenterMetrics struct {
	// cache counts requests by where their state came from.
	cache *prometheus.CounterVec
	// capped counts answers cut to TRACKING_MAX_ORDERS_PER_EATER.
	capped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*presenterMetrics, error) {
	m := &presenterMetrics{cache: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "tracking", Name: "state_cache_total",
		Help: "Tracking requests by where the state came from: hit (memory), miss (no valid entry), behind (change feed not proven fresh: database), off (cache disabled).",
	}, []string{"result"}),
		capped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "tracking", Name: "answers_capped_total",
			Help: "Tracking answers that listed fewer orders than the eater has, cut to TRACKING_MAX_ORDERS_PER_EATER.",
		}),
	}
	for _, r := range []string{string(statecache.Hit), string(statecache.Miss), string(statecache.Behind), cacheOff} {
		m.cache.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.cache, m.capped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
