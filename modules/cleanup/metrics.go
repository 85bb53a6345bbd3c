package cleanup

import (
	"github.com/prometheus/client_golang/prometheus"

	platformmetrics "github.com/eats/eats-orders-tracking/platform/metrics"
)

// metrics are the module's: rows deleted and batch durations, by table.
type metrics struct {
	deleted *prometheus.CounterVec
	batch   *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: platformmetrics.Namespace, Name: "cleanup_deleted_total",
			Help: "Rows the cleanup deleted, by table.",
		}, []string{"table"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: platformmetrics.Namespace, Name: "cleanup_batch_duration_seconds",
			Help:    "Duration of one cleanup DELETE batch (its whole transaction), by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"table"}),
	}
	if err := platformmetrics.Register(reg, "cleanup", m.deleted, m.batch); err != nil {
		return nil, err
	}
	return m, nil
}
