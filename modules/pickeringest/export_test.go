package pickeringest

import (
	"context"

	"github.com/jmoiron/sqlx"
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

// BareUpsert runs the statement Apply runs for ev, alone, outside any
// transaction (autocommit, prepared once like Apply's): the benchmark's
// baseline.
func BareUpsert(ctx context.Context, a *Applier, ev Event) error {
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
}
