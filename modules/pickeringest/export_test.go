package pickeringest

import (
	"context"
	"log/slog"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/tracking"
)

// WithHooks runs before inside the worker's transaction, after the upsert
// and the job's completion and before the commit (an error rolls both
// back), and after once the commit is done. Either may be nil.
func WithHooks(before func(ctx context.Context, tx *sqlx.Tx, jobID int64, attempt int) error, after func(jobID int64, args PickerOrderArgs)) fx.Option {
	h := &hooks{}
	if before != nil {
		h.beforeCommit = func(ctx context.Context, tx *sqlx.Tx, job *river.Job[PickerOrderArgs]) error {
			return before(ctx, tx, job.ID, job.Attempt)
		}
	}
	if after != nil {
		h.afterCommit = func(job *river.Job[PickerOrderArgs]) { after(job.ID, job.Args) }
	}
	return fx.Supply(h)
}

// ParseConfig is parseConfig, for the benchmark's report of the defaults.
var ParseConfig = parseConfig

// EventsPath is the internal endpoint's path, for the HTTP tests.
const EventsPath = eventsPath

// NewBareUpsert returns a function that runs the statement Apply runs for
// ev, alone, outside any transaction (autocommit, prepared once like
// Apply's): the benchmark's baseline.
func NewBareUpsert(db *sqlx.DB) (func(ctx context.Context, ev Event) error, error) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	a := newApplier(db, newPhoneLookup(Config{PhoneCacheTTL: maxPhoneCacheTTL}, nil, m, slog.New(slog.DiscardHandler)), m)
	return func(ctx context.Context, ev Event) error {
		p := a.upsertOrder
		if ev.Type == tracking.EventPickerPhoneForwardingReady {
			p = a.upsertPhone
		}
		query := func(args ...any) *sqlx.Row { return p.db.QueryRowxContext(ctx, p.q, args...) }
		if stmt := p.ready(); stmt != nil {
			query = func(args ...any) *sqlx.Row { return stmt.QueryRowxContext(ctx, args...) }
		}
		var err error
		if p == a.upsertPhone {
			_, _, err = upsertPickerPhone(query, ev)
		} else {
			_, err = upsertPickerOrder(query, ev)
		}
		return err
	}, nil
}
