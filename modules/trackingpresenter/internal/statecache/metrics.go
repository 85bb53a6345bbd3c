package statecache

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eats/eats-orders-tracking/platform/metrics"
)

// registerMetrics registers the cache's gauges. (The presenter counts
// requests by Result, eot_tracking_state_cache_total, itself: it also
// counts them while the cache is off.)
func registerMetrics[S State](reg prometheus.Registerer, c *stateCache[S]) error {
	for _, col := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "tracking", Name: "change_feed_lag_seconds",
			Help: "How far behind committed changes the tracking cache may be; -1 while unproven (the cache is then bypassed).",
		}, func() float64 {
			l := c.lag(time.Now())
			if l < 0 {
				return -1
			}
			return l.Seconds()
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "tracking", Name: "state_cache_entries",
			Help: "Eaters whose tracking state this replica holds in memory.",
		}, func() float64 { return float64(c.size()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "tracking", Name: "answer_memo_bytes",
			Help: "Bytes of encoded answers (and their keys) the tracking cache's entries hold, served to polls and streams until the entry changes.",
		}, func() float64 { return float64(c.derivedBytes.Load()) }),
	} {
		if err := reg.Register(col); err != nil {
			return err
		}
	}
	return nil
}
