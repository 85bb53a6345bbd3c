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
// eot_tracking_answers_capped_total, eot_tracking_answer_memo_total); the
// state cache registers its gauges (eot_tracking_change_feed_lag_seconds,
// eot_tracking_state_cache_entries, eot_tracking_answer_memo_bytes).
type presenterMetrics struct {
	// cache counts requests by where their state came from.
	cache *prometheus.CounterVec
	// capped counts answers cut to TRACKING_MAX_ORDERS_PER_EATER.
	capped prometheus.Counter
	// memo counts answers whose states the cache held, by whether their
	// bytes were pre-encoded (memo.go).
	memo *prometheus.CounterVec

	// The streams (DESIGN §4.4).
	streamsOpen     prometheus.Gauge
	streamFrames    prometheus.Counter
	streamCoalesced prometheus.Counter
	streamDropped   prometheus.Counter
	streamsEnded    *prometheus.CounterVec
	streamLatency   prometheus.Histogram
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
	m.memo = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "tracking", Name: "answer_memo_total",
		Help: "Tracking answers (polls and stream frames) built from the cache's states, by result: hit (pre-encoded bytes served), miss (rendered and encoded, then kept on the cache entry).",
	}, []string{"result"})
	m.streamsOpen = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Subsystem: "tracking", Name: "streams_open",
		Help: "Tracking streams open on this replica.",
	})
	m.streamFrames = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "tracking", Name: "stream_frames_total",
		Help: "Tracking frames written to streams.",
	})
	m.streamCoalesced = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "tracking", Name: "stream_frames_coalesced_total",
		Help: "Tracking frames replaced by a newer answer before they were written (a burst, or a slow reader).",
	})
	m.streamDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "tracking", Name: "stream_frames_dropped_total",
		Help: "Tracking frames never delivered: the write failed or the client left with a frame pending.",
	})
	m.streamsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "tracking", Name: "streams_ended_total",
		Help: "Tracking streams ended, by reason: client_gone, write_failed (slow or dead reader), max_age, replaced (TRACKING_STREAMS_PER_EATER), feed_unproven, shutdown.",
	}, []string{"reason"})
	m.streamLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: metrics.Namespace, Subsystem: "tracking", Name: "stream_change_to_frame_seconds",
		Help:    "From a change's notification reaching this replica to its frame written.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	for _, r := range endReasons {
		m.streamsEnded.WithLabelValues(r)
	}
	for _, r := range []string{memoHit, memoMiss} {
		m.memo.WithLabelValues(r)
	}
	for _, r := range []string{string(statecache.Hit), string(statecache.Miss), string(statecache.Behind), cacheOff} {
		m.cache.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.cache, m.capped, m.memo, m.streamsOpen, m.streamFrames, m.streamCoalesced, m.streamDropped, m.streamsEnded, m.streamLatency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
