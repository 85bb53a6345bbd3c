package pickeringest

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/cache"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// testBundle is an Applier and a PhoneLookup on a fresh database and a
// private Redis prefix.
type testBundle struct {
	db      *sqlx.DB
	redis   *cache.Redis
	phones  *PhoneLookup
	applier *Applier
	logs    *pgtest.SafeBuffer
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db, _ := pgtest.Open(t)
	r := &cache.Redis{Client: pgtest.Redis(t), Prefix: pgtest.RedisPrefix(t)}
	return setupWith(t, db, r)
}

func setupWith(t *testing.T, db *sqlx.DB, r *cache.Redis) *testBundle {
	t.Helper()
	logs := &pgtest.SafeBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	require.NoError(t, err)
	phones := newPhoneLookup(Config{PhoneCacheTTL: maxPhoneCacheTTL}, r, m, logger)
	applier := newApplier(db, phones, m)
	return &testBundle{db: db, redis: r, phones: phones, applier: applier, logs: logs}
}

// apply runs one event in its own transaction, as the worker does.
func (b *testBundle) apply(t testing.TB, ev Event) Applied {
	t.Helper()
	ctx := context.Background()
	tx, err := b.db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback() //nolint:errcheck
	applied, err := b.applier.Apply(ctx, tx, ev)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	applied.AfterCommit(ctx)
	return applied
}

// pickerOrderRow is what picker_orders holds for an order, minus the
// bookkeeping times.
type pickerOrderRow struct {
	Payload           string         `db:"payload"`
	StatusEventAt     time.Time      `db:"status_event_at"`
	PickerEventAt     sql.NullTime   `db:"picker_event_at"`
	PickerEventStatus sql.NullString `db:"picker_event_status"`
	Status            string         `db:"status"`
}

func (b *testBundle) pickerOrder(t testing.TB, orderNr string) (pickerOrderRow, bool) {
	t.Helper()
	var row pickerOrderRow
	err := b.db.Get(&row, `SELECT payload::text AS payload, status_event_at, picker_event_at, picker_event_status, status
		FROM picker_orders WHERE order_nr = $1`, orderNr)
	if errors.Is(err, sql.ErrNoRows) {
		return row, false
	}
	require.NoError(t, err)
	row.StatusEventAt = row.StatusEventAt.UTC()
	if row.PickerEventAt.Valid {
		row.PickerEventAt.Time = row.PickerEventAt.Time.UTC()
	}
	return row, true
}

type phoneRow struct {
	PickerID  string    `db:"picker_id"`
	Phone     string    `db:"phone"`
	ExpiresAt time.Time `db:"expires_at"`
	EventAt   time.Time `db:"event_at"`
}

func (b *testBundle) phoneRows(t testing.TB, orderNr string) []phoneRow {
	t.Helper()
	var rows []phoneRow
	require.NoError(t, b.db.Select(&rows, `SELECT picker_id, phone, expires_at, event_at FROM picker_phones
		WHERE order_nr = $1 ORDER BY picker_id`, orderNr))
	for i := range rows {
		rows[i].ExpiresAt, rows[i].EventAt = rows[i].ExpiresAt.UTC(), rows[i].EventAt.UTC()
	}
	return rows
}

// value reads a counter or a histogram's sample count.
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	require.NoError(t, m.Write(&out))
	if h := out.GetHistogram(); h != nil {
		return float64(h.GetSampleCount())
	}
	return out.GetCounter().GetValue()
}

// phoneKey is the cache key of (order, picker) as the service writes it.
func (b *testBundle) phoneKey(order, picker string) string {
	return b.phones.key(tracking.PhoneKey{OrderNr: order, PickerID: picker})
}
