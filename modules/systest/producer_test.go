//go:build system

package systest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
)

// eventsPath is the internal endpoint that enqueues a picker event.
const eventsPath = "/internal/eats-orders-tracking/v1/picker-orders/events"

// producer plays procaas and the order pipeline: it inserts jobs at a
// steady rate, by plain SQL into river_job with pg_notify in the same
// transaction (docs/producers.md), or — for picker events, when urls are
// set — through the internal endpoint, round-robin over the replicas. It
// must not lose an event itself when the database or a replica goes away:
// a job stays pending until an insert is confirmed (committed, or 202),
// and is retried until then. A commit whose answer is lost may insert a
// job twice; the events are idempotent, and the checks count such
// duplicates.
type producer struct {
	t      testing.TB
	db     *sqlx.DB
	urls   []string
	client *http.Client

	mu        sync.Mutex
	confirmed []job
	failures  int   // delivery attempts that failed and were retried
	lastErr   error // the last of them
	rejected  int   // good picker events the endpoint refused (a test failure)
	rr        int
}

func newProducer(t testing.TB, dsn string, urls []string) *producer {
	t.Helper()
	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { _ = db.Close() })
	return &producer{
		t: t, db: db, urls: urls,
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
	}
}

// run emits rate jobs per second from next until ctx ends, then delivers
// whatever is still pending, retrying for up to two minutes.
func (p *producer) run(ctx context.Context, rate float64, next func() job) {
	p.runVarying(ctx, func() float64 { return rate }, next)
}

// runVarying is run with a rate that may change while it runs.
func (p *producer) runVarying(ctx context.Context, rate func() float64, next func() job) {
	last := time.Now()
	budget := 0.0
	var pending []job
	var backoff time.Duration
	var retryAt time.Time
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		now := time.Now()
		budget += rate() * now.Sub(last).Seconds()
		last = now
		for ; budget >= 1; budget-- {
			pending = append(pending, next())
		}
		if now.Before(retryAt) {
			continue
		}
		var err error
		if pending, err = p.deliver(pending); err != nil {
			backoff = min(max(2*backoff, 50*time.Millisecond), time.Second)
			retryAt = time.Now().Add(backoff)
		} else {
			backoff = 0
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			p.t.Errorf("producer: %d events still not inserted two minutes after the run; last error: %v", len(pending), p.lastErr)
			return
		}
		var err error
		if pending, err = p.deliver(pending); err != nil {
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// deliver inserts what it can of pending and returns the rest, in order.
func (p *producer) deliver(pending []job) ([]job, error) {
	if len(pending) == 0 {
		return nil, nil
	}
	var viaSQL, viaHTTP []job
	for _, j := range pending {
		if len(p.urls) > 0 && j.Queue == pickerQueue && j.good() {
			viaHTTP = append(viaHTTP, j)
		} else {
			viaSQL = append(viaSQL, j)
		}
	}
	var rest []job
	var firstErr error
	if len(viaSQL) > 0 {
		n := min(len(viaSQL), 500)
		if err := p.insertSQL(viaSQL[:n]); err != nil {
			firstErr = err
			rest = append(rest, viaSQL...)
		} else {
			rest = append(rest, viaSQL[n:]...)
		}
	}
	if len(viaHTTP) > 0 {
		failed, err := p.postHTTP(viaHTTP)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		rest = append(rest, failed...)
	}
	if firstErr != nil {
		p.mu.Lock()
		p.failures++
		p.lastErr = firstErr
		p.mu.Unlock()
	}
	// Keep the emission order for what is left.
	sort.SliceStable(rest, func(i, k int) bool { return rest[i].Seq < rest[k].Seq })
	return rest, firstErr
}

// insertSQL inserts the batch and wakes the workers, in one transaction,
// as docs/producers.md tells producers to. The sequence number also goes
// into the job's tags, so even args that are not a JSON object are found.
func (p *producer) insertSQL(batch []job) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	queues := make(pq.StringArray, len(batch))
	args := make(pq.StringArray, len(batch))
	seqs := make(pq.Int64Array, len(batch))
	for i, j := range batch {
		queues[i], args[i], seqs[i] = j.Queue, string(j.Args), j.Seq
	}
	tx, err := p.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	const insert = `
		INSERT INTO river_job (kind, queue, args, tags)
		SELECT q, q, a::jsonb, ARRAY['systest_seq_' || s]
		FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(q, a, s)`
	if _, err := tx.ExecContext(ctx, insert, queues, args, seqs); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	const notify = `
		SELECT pg_notify(current_schema() || '.river_insert', json_build_object('queue', q)::text)
		FROM (SELECT DISTINCT q FROM unnest($1::text[]) AS q) AS qs`
	if _, err := tx.ExecContext(ctx, notify, queues); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	p.mu.Lock()
	p.confirmed = append(p.confirmed, batch...)
	p.mu.Unlock()
	return nil
}

// postHTTP posts picker events to the replicas round-robin, eight at a
// time, and returns those that were not accepted (to retry).
func (p *producer) postHTTP(batch []job) ([]job, error) {
	var later []job
	if len(batch) > 200 {
		batch, later = batch[:200], batch[200:]
	}
	type result struct {
		j   job
		err error
	}
	results := make([]result, len(batch))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, j := range batch {
		p.mu.Lock()
		url := p.urls[p.rr%len(p.urls)]
		p.rr++
		p.mu.Unlock()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = result{j: j, err: p.post(url, j)}
		}()
	}
	wg.Wait()
	failed := later
	var firstErr error
	for _, r := range results {
		switch {
		case r.err == nil:
			p.mu.Lock()
			p.confirmed = append(p.confirmed, r.j)
			p.mu.Unlock()
		case errors.Is(r.err, errRejected):
			// reported by post; not retried
		default:
			failed = append(failed, r.j)
			if firstErr == nil {
				firstErr = r.err
			}
		}
	}
	return failed, firstErr
}

var errRejected = fmt.Errorf("rejected")

func (p *producer) post(url string, j job) error {
	req, err := http.NewRequest(http.MethodPost, url+eventsPath, bytes.NewReader(j.Args))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusAccepted:
		return nil
	case resp.StatusCode >= 500:
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, body)
	default:
		p.mu.Lock()
		p.rejected++
		p.mu.Unlock()
		p.t.Errorf("POST %s refused a good event (seq %d): %d %s", url, j.Seq, resp.StatusCode, body)
		return errRejected
	}
}

// jobs returns the confirmed jobs.
func (p *producer) jobs() []job {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.confirmed)
}

func (p *producer) stats() (confirmed, failures int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.confirmed), p.failures
}

// ---- what became of the jobs ----

// jobRow is one row of river_job in the two event queues.
type jobRow struct {
	ID          int64      `db:"id"`
	Seq         *int64     `db:"seq"`
	Queue       string     `db:"queue"`
	State       string     `db:"state"`
	Attempt     int        `db:"attempt"`
	Err         string     `db:"err"`
	CreatedAt   time.Time  `db:"created_at"`
	FinalizedAt *time.Time `db:"finalized_at"`
	AttemptedBy []string   `db:"-"`
	attempted   pq.StringArray
}

func readJobs(ctx context.Context, t testing.TB, db *sqlx.DB) []jobRow {
	t.Helper()
	const q = `
		SELECT id,
		       COALESCE(substring(tags[1] from '^systest_seq_([0-9]+)$'), args->>'systest_seq')::bigint AS seq,
		       queue, state::text AS state, attempt,
		       COALESCE(errors[array_length(errors, 1)]->>'error', '') AS err,
		       created_at, finalized_at, COALESCE(attempted_by, '{}') AS attempted_by
		FROM river_job
		WHERE queue IN ($1, $2)
		ORDER BY id`
	rows, err := db.QueryContext(ctx, q, pickerQueue, ordersQueue)
	require.NoError(t, err)
	defer rows.Close()
	var out []jobRow
	for rows.Next() {
		var r jobRow
		require.NoError(t, rows.Scan(&r.ID, &r.Seq, &r.Queue, &r.State, &r.Attempt, &r.Err, &r.CreatedAt, &r.FinalizedAt, &r.attempted))
		r.AttemptedBy = r.attempted
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// jobReport is what the checks found, for the test's RESULT line.
type jobReport struct {
	Jobs        int // rows in the two queues
	Produced    int // events confirmed by the producer
	Duplicates  int // events inserted more than once by the producer
	Retried     int // rows worked more than once (River retries, rescues)
	MaxAttempt  int
	Cancelled   int
	ApplyP50    time.Duration // created_at → finalized_at of good jobs
	ApplyP99    time.Duration
	ByReplica   map[string]int // good jobs by the River client that finished them
	Unfinalized int
	good        []jobRow
}

// apply is the p50 and p99 of created_at → finalized_at of the good jobs
// inserted in [from, to).
func (r jobReport) apply(from, to time.Time) (p50, p99 time.Duration, n int) {
	var lat []time.Duration
	for _, j := range r.good {
		if j.FinalizedAt != nil && !j.CreatedAt.Before(from) && j.CreatedAt.Before(to) {
			lat = append(lat, j.FinalizedAt.Sub(j.CreatedAt))
		}
	}
	return percentile(lat, 0.5), percentile(lat, 0.99), len(lat)
}

// requireJobsDone checks that every produced job is in river_job, that
// every good one completed and every malformed one was cancelled with an
// error naming its field; it reports what it saw.
func requireJobsDone(t testing.TB, db *sqlx.DB, produced []job) jobReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows := readJobs(ctx, t, db)
	bySeq := make(map[int64][]jobRow, len(rows))
	for _, r := range rows {
		if r.Seq != nil {
			bySeq[*r.Seq] = append(bySeq[*r.Seq], r)
		}
	}
	rep := jobReport{Jobs: len(rows), Produced: len(produced), ByReplica: map[string]int{}}
	var lat []time.Duration
	var problems []string
	fail := func(format string, args ...any) {
		if len(problems) < 25 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for _, j := range produced {
		rs := bySeq[j.Seq]
		if len(rs) == 0 {
			fail("seq %d (%s): no job in river_job: the event was lost", j.Seq, j.Queue)
			continue
		}
		if len(rs) > 1 {
			rep.Duplicates++
		}
		for _, r := range rs {
			if r.Attempt > 1 {
				rep.Retried++
			}
			rep.MaxAttempt = max(rep.MaxAttempt, r.Attempt)
			switch {
			case j.good() && r.State != "completed":
				fail("job %d (seq %d, %s): state %s after %d attempts, want completed; error: %.300s", r.ID, j.Seq, j.Queue, r.State, r.Attempt, r.Err)
			case !j.good() && r.State != "cancelled":
				fail("job %d (seq %d, malformed %s): state %s after %d attempts, want cancelled; error: %.300s", r.ID, j.Seq, j.Bad, r.State, r.Attempt, r.Err)
			case !j.good() && !strings.Contains(r.Err, "invalid "+j.Bad+":"):
				fail("job %d (seq %d): the error does not name %q: %.300s", r.ID, j.Seq, j.Bad, r.Err)
			}
			if r.State == "cancelled" {
				rep.Cancelled++
			}
			if j.good() && r.FinalizedAt != nil {
				rep.good = append(rep.good, r)
				lat = append(lat, r.FinalizedAt.Sub(r.CreatedAt))
				if n := len(r.AttemptedBy); n > 0 {
					rep.ByReplica[r.AttemptedBy[n-1]]++
				}
			}
			if r.FinalizedAt == nil {
				rep.Unfinalized++
			}
		}
	}
	rep.ApplyP50, rep.ApplyP99 = percentile(lat, 0.50), percentile(lat, 0.99)
	if len(problems) > 0 {
		t.Fatalf("%d jobs checked; what went wrong:\n%s", len(produced), strings.Join(problems, "\n"))
	}
	return rep
}

// waitDrained waits until no job of the event queues is waiting, running
// or retrying, and returns how long that took.
func waitDrained(t testing.TB, db *sqlx.DB, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	const q = `
		SELECT state::text AS state, count(*) AS n FROM river_job
		WHERE queue IN ($1, $2) AND state NOT IN ('completed', 'cancelled', 'discarded')
		GROUP BY state`
	var last []struct {
		State string `db:"state"`
		N     int    `db:"n"`
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		last = last[:0]
		err := db.SelectContext(ctx, &last, q, pickerQueue, ordersQueue)
		cancel()
		if err == nil && len(last) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("event queues not drained within %s: %+v (last error %v)", within, last, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tryDrain is waitDrained that reports instead of failing.
func tryDrain(db *sqlx.DB, within time.Duration) (time.Duration, error) {
	start := time.Now()
	const q = `SELECT count(*) FROM river_job WHERE queue IN ($1, $2) AND state NOT IN ('completed', 'cancelled', 'discarded')`
	for {
		var n int
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := db.GetContext(ctx, &n, q, pickerQueue, ordersQueue)
		cancel()
		if err == nil && n == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > within {
			if err != nil {
				return time.Since(start), fmt.Errorf("%d jobs still not done %s later (last error %w)", n, within, err)
			}
			return time.Since(start), fmt.Errorf("%d jobs still not done %s later", n, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitSettled waits until every job of the event queues is finalized or
// has failed at least twice (retrying with backoff: stuck, for the checks
// to report), and returns how long that took.
func waitSettled(t testing.TB, db *sqlx.DB, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	const q = `
		SELECT count(*) FROM river_job
		WHERE queue IN ($1, $2)
		  AND (state IN ('available', 'running', 'pending', 'scheduled') OR (state = 'retryable' AND attempt < 2))`
	for {
		var n int
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := db.GetContext(ctx, &n, q, pickerQueue, ordersQueue)
		cancel()
		if err == nil && n == 0 {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("event queues not settled within %s: %d jobs still waiting or running (last error %v)", within, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// percentile of ds (unsorted), 0 when empty.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// jsonOK decodes an answer or fails.
func jsonOK(t testing.TB, b []byte, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(b, v), "%.500s", b)
}
