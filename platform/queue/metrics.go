package queue

import (
	"context"
	"errors"
	"slices"
	"sync"
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

func newMetrics(reg prometheus.Registerer) (*workMetrics, error) {
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
	return m, metrics.Register(reg, "queue", m.worked, m.duration)
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

// activeStates are the states a job is in until River finalizes it. At any
// moment they hold few rows (the backlog), and river_job_prioritized_fetching_index
// (state, queue, priority, scheduled_at, id) finds them without reading the
// finalized rows River keeps for a day (completed) or JOB_RETENTION
// (cancelled, discarded): tens of millions at target rates.
var activeStates = []string{"available", "pending", "retryable", "running", "scheduled"}

const (
	// statsTTL is how long one read of river_job serves scrapes: every
	// replica reads the same table, so scraping more often (or scraping
	// many replicas) adds no load past one query per replica per TTL.
	statsTTL = 5 * time.Second
	// statsTimeout bounds the read, so a slow database costs one
	// connection for at most this long per TTL.
	statsTimeout = 2 * time.Second
)

// statsQuery reads the active jobs through the index that leads with state;
// the state list is literal so the planner sees it (a test checks the plan).
// river_queue adds the queues that have no jobs.
const statsQuery = `
	SELECT queue, state::text AS state, count(*)::float8 AS n,
	       CASE WHEN state = 'available'
	            THEN GREATEST(EXTRACT(EPOCH FROM now() - min(scheduled_at))::float8, 0) ELSE 0 END AS lag
	FROM river_job
	WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
	GROUP BY queue, state
	UNION ALL
	SELECT name, '', 0, 0 FROM river_queue`

// stateCollector reports the not-yet-finalized job counts by queue and
// state, and each queue's lag (age of its oldest job ready to run). It reads
// river_job at most once per statsTTL, whatever the scrape rate, and reports
// 0 for every known queue and state with no jobs, so a series never
// vanishes when a queue drains. Known queues: those configured on this
// replica, those River records in river_queue (every replica's, kept a day
// after last use), and any with jobs.
type stateCollector struct {
	db     *sqlx.DB
	queues []string
	ttl    time.Duration
	now    func() time.Time

	count *prometheus.Desc
	lag   *prometheus.Desc
	up    *prometheus.Desc

	mu   sync.Mutex // held during a read, so concurrent scrapes share it
	read time.Time  // when last is from; zero before the first read
	last *jobStats  // nil when the last read failed
}

// jobStats is one read of river_job.
type jobStats struct {
	queues []string                      // sorted
	counts map[string]map[string]float64 // queue → state → jobs
	lag    map[string]float64            // queue → seconds
}

// newStateCollector reads through db; queues are the queues configured on
// this replica, reported (as 0) even before River records them.
func newStateCollector(db *sqlx.DB, queues ...string) *stateCollector {
	return &stateCollector{
		db:     db,
		queues: queues,
		ttl:    statsTTL,
		now:    time.Now,
		count: prometheus.NewDesc(metrics.Namespace+"_river_jobs",
			"River jobs not yet finalized, by queue and state (available, pending, retryable, running, scheduled); "+
				"0 for a known queue with none. Finalized jobs (completed, cancelled, discarded) are not counted: "+
				"River keeps them for hours to days and counting them means reading them all; "+
				"see "+metrics.Namespace+"_river_jobs_worked_total. Read at most every 5 s.",
			[]string{"queue", "state"}, nil),
		lag: prometheus.NewDesc(metrics.Namespace+"_river_queue_lag_seconds",
			"Age of the oldest available job per queue (0 if none). Read at most every 5 s.", []string{"queue"}, nil),
		up: prometheus.NewDesc(metrics.Namespace+"_river_stats_up", "1 if the last read of river_job succeeded.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
	ch <- c.lag
	ch <- c.up
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	if s == nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, q := range s.queues {
		for _, st := range activeStates {
			ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, s.counts[q][st], q, st)
		}
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, s.lag[q], q)
	}
}

// stats returns the last read if it is fresh, else reads again. A failed
// read is kept for the TTL too, so a struggling database is not asked again
// by every scrape.
func (c *stateCollector) stats() *jobStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.read.IsZero() || now.Sub(c.read) >= c.ttl {
		c.last = c.readStats()
		c.read = now
	}
	return c.last
}

func (c *stateCollector) readStats() *jobStats {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	var rows []struct {
		Queue string  `db:"queue"`
		State string  `db:"state"`
		N     float64 `db:"n"`
		Lag   float64 `db:"lag"`
	}
	if err := c.db.SelectContext(ctx, &rows, statsQuery); err != nil {
		return nil
	}
	s := &jobStats{counts: map[string]map[string]float64{}, lag: map[string]float64{}}
	known := func(queue string) {
		if _, ok := s.counts[queue]; !ok {
			s.counts[queue] = map[string]float64{}
			s.queues = append(s.queues, queue)
		}
	}
	for _, q := range c.queues {
		known(q)
	}
	for _, r := range rows {
		known(r.Queue)
		if r.State != "" {
			s.counts[r.Queue][r.State] = r.N
		}
		if r.State == "available" {
			s.lag[r.Queue] = r.Lag
		}
	}
	slices.Sort(s.queues)
	return s
}
