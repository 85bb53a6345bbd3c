package pickeringest_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// service is the whole service on a fresh database, plus its metrics.
type service struct {
	*apptest.App
	metrics prometheus.Gatherer
}

func start(t *testing.T, overrides map[string]string, extra ...fx.Option) *service {
	t.Helper()
	s := &service{}
	env := map[string]string{"DATABASE_MAX_CONNS": "8"} // many test apps share one server
	for k, v := range overrides {
		env[k] = v
	}
	s.App = apptest.Start(t, env, append(extra, fx.Populate(&s.metrics))...)
	return s
}

// insertSQL enqueues raw args the way a plain-SQL producer does.
func (s *service) insertSQL(t *testing.T, args string) int64 {
	t.Helper()
	var id int64
	tx, err := s.DB.Beginx()
	require.NoError(t, err)
	defer tx.Rollback() //nolint:errcheck
	require.NoError(t, tx.Get(&id, `INSERT INTO river_job (kind, queue, args) VALUES ($1, $1, $2) RETURNING id`, pickeringest.Kind, args))
	_, err = tx.Exec(`SELECT pg_notify(current_schema() || '.river_insert', '{"queue":"eats_orders_tracking_picker_orders"}')`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	return id
}

type jobRow struct {
	State     string    `db:"state"`
	Attempt   int       `db:"attempt"`
	Errors    string    `db:"errors"`
	CreatedAt time.Time `db:"created_at"`
}

func (j jobRow) errorTexts(t *testing.T) []string {
	t.Helper()
	var errs []struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(j.Errors), &errs))
	var out []string
	for _, e := range errs {
		out = append(out, e.Error)
	}
	return out
}

func (s *service) job(t *testing.T, id int64) jobRow {
	t.Helper()
	var j jobRow
	require.NoError(t, s.DB.Get(&j, `SELECT state::text AS state, attempt, COALESCE(array_to_json(errors), '[]')::text AS errors, created_at FROM river_job WHERE id = $1`, id))
	return j
}

// waitJob waits until the job is finalized (or waits to be retried).
func (s *service) waitJob(t *testing.T, id int64) jobRow {
	t.Helper()
	return s.waitJobWhere(t, id, "finalized", func(j jobRow) bool {
		switch j.State {
		case "completed", "cancelled", "discarded", "retryable":
			return true
		}
		return false
	})
}

// waitJobWhere waits until the job's row satisfies cond.
func (s *service) waitJobWhere(t *testing.T, id int64, what string, cond func(jobRow) bool) jobRow {
	t.Helper()
	var j jobRow
	pgtest.Eventually(t, 15*time.Second, func() bool {
		j = s.job(t, id)
		return cond(j)
	}, "job %d %s (last state %s)", id, what, j.State)
	return j
}

// failedOnce holds once the job's first attempt has failed.
func (s *service) failedOnce(t *testing.T, id int64) jobRow {
	t.Helper()
	return s.waitJobWhere(t, id, "failed once", func(j jobRow) bool {
		return len(j.errorTexts(t)) == 1 && j.State != "running"
	})
}

func (s *service) payload(t *testing.T, orderNr string) (string, bool) {
	t.Helper()
	var p string
	err := s.DB.Get(&p, `SELECT payload::text FROM picker_orders WHERE order_nr = $1`, orderNr)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false
	}
	require.NoError(t, err)
	return p, true
}

func (s *service) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	require.NoError(t, s.DB.Get(&n, `SELECT count(*) FROM `+table))
	return n
}

// metric reads a counter (or a histogram's count) by name and labels; 0
// when the series does not exist.
func (s *service) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := s.metrics.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// requireMetric waits for a metric to reach want: the worker counts just
// after its commit, which a test can see first.
func (s *service) requireMetric(t *testing.T, want float64, name string, labels map[string]string) {
	t.Helper()
	var got float64
	pgtest.Eventually(t, 5*time.Second, func() bool {
		got = s.metric(t, name, labels)
		return got == want
	}, "%s%v = %v, want %v", name, labels, got, want)
}

func events(eventType, outcome string) map[string]string {
	return map[string]string{"event_type": eventType, "outcome": outcome}
}

func eventJSON(t *testing.T, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	require.NoError(t, err)
	return string(b)
}

func statusChange(order string) map[string]any {
	return map[string]any{
		"event_type": "STATUS_CHANGE", "order_nr": order, "order_status": "picking",
		"place_id": "40", "picker_id": "p-1", "created_at": "2025-03-01T10:00:00Z",
	}
}

func phoneReady(order string, expires time.Time) map[string]any {
	ev := statusChange(order)
	ev["event_type"] = "PICKER_PHONE_FORWARDING_READY"
	ev["customer_picker_phone_forwarding"] = map[string]any{"phone": "+7 999 123-45-67", "expires_at": expires.UTC().Format(time.RFC3339Nano)}
	return ev
}

func withField(ev map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for key, val := range ev {
		out[key] = val
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}
