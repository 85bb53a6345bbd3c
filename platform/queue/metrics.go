package queue

import (
	"context"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/eats/eats-orders-tracking/platform/metrics"
)

// workMetrics times every job by kind and outcome.
type workMetrics struct {
	river.MiddlewareDefaults
	worked   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *workMetrics {
	m := &workMetrics{
		worked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "river_jobs_worked_total",
			Help: "Jobs worked, by kind and outcome (completed, cancelled, snoozed, error).",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Name: "river_job_duration_seconds",
			Help:    "Time spent in Work, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"kind"}),
	}
	reg.MustRegister(m.worked, m.duration)
	return m
}

// Work implements rivertype.WorkerMiddleware.
func (m *workMetrics) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	start := time.Now()
	err := doInner(ctx)
	m.duration.WithLabelValues(job.Kind).Observe(time.Since(start).Seconds())
	m.worked.WithLabelValues(job.Kind, outcome(err)).Inc()
	return err
}

func outcome(err error) string {
	var cancel *rivertype.JobCancelError
	var snooze *rivertype.JobSnoozeError
	switch {
	case err == nil:
		return "completed"
	case errors.As(err, &cancel):
		return "cancelled"
	case errors.As(err, &snooze):
		return "snoozed"
	default:
		return "error"
	}
}

// stateCollector reports job counts by queue and state, and each queue's lag
// (age of its oldest job ready to run), read at scrape time.
type stateCollector struct {
	db    *sqlx.DB
	count *prometheus.Desc
	lag   *prometheus.Desc
	up    *prometheus.Desc
}

func newStateCollector(db *sqlx.DB) *stateCollector {
	return &stateCollector{
		db:    db,
		count: prometheus.NewDesc(metrics.Namespace+"_river_jobs", "River jobs by queue and state.", []string{"queue", "state"}, nil),
		lag:   prometheus.NewDesc(metrics.Namespace+"_river_queue_lag_seconds", "Age of the oldest available job per queue.", []string{"queue"}, nil),
		up:    prometheus.NewDesc(metrics.Namespace+"_river_stats_up", "1 if the last scrape could read river_job.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
	ch <- c.lag
	ch <- c.up
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	const q = `
		SELECT queue, state::text AS state, count(*) AS n,
		       COALESCE(EXTRACT(EPOCH FROM now() - min(scheduled_at) FILTER (WHERE state = 'available')), 0) AS lag
		FROM river_job GROUP BY queue, state`
	var rows []struct {
		Queue string  `db:"queue"`
		State string  `db:"state"`
		N     float64 `db:"n"`
		Lag   float64 `db:"lag"`
	}
	if err := c.db.SelectContext(ctx, &rows, q); err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, r.N, r.Queue, r.State)
		if r.State == "available" {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, r.Lag, r.Queue)
		}
	}
}
