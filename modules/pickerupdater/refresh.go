package pickerupdater

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// errOff cancels refresh jobs while PICKER_ORDERS_URL is empty: there is
// nobody to ask. The updater enqueues none then; these came from elsewhere.
var errOff = errors.New("picker updater is off: PICKER_ORDERS_URL is empty")

// Applier is picker-ingest's apply function, the one place that decides how
// an event changes the tables; the refresh applies eats-picker-orders'
// answers through it like events. modules/modules.go binds
// *pickeringest.Applier to it. The result's AfterCommit writes the phone
// cache once tx has committed.
type Applier interface {
	Apply(ctx context.Context, tx *sqlx.Tx, ev pickeringest.Event) (pickeringest.Applied, error)
}

// orderSource is eats-picker-orders (*upstream).
type orderSource interface {
	Order(ctx context.Context, orderNr string) (upstreamOrder, error)
}

// refresher is the picker_order_refresh worker.
type refresher struct {
	river.WorkerDefaults[RefreshArgs]

	db      *sqlx.DB
	up      orderSource // nil when the updater is off
	snooze  func(snoozes int) time.Duration
	applier Applier
	metrics *metrics
	logger  *slog.Logger
}

// Work asks eats-picker-orders for the order and applies the answer, unless
// the row moved since the tick saw it stale (then nothing is asked):
//   - 200: applied like a STATUS_CHANGE (and a phone event when the answer
//     has a forwarding), updated_at moved, job completed, one transaction;
//   - 200 with a status time more than 5 minutes ahead of the database's
//     clock: not applied, updated_at moved, counted;
//   - 404: the row is left as it is, updated_at moved;
//   - malformed or rejected: logged, counted, cancelled; updated_at stays,
//     so the next tick asks again;
//   - unavailable (timeouts, 5xx after the client's retries): an error, so
//     River retries with backoff; after the last attempt the next tick
//     enqueues the order again;
//   - breaker open: snoozed until the breaker lets a probe through (longer
//     with each snooze, at most a minute), which uses up no attempt.
func (w *refresher) Work(ctx context.Context, job *river.Job[RefreshArgs]) error {
	orderNr := job.Args.OrderNr
	if orderNr == "" {
		return river.JobCancel(tracking.Missing("order_nr"))
	}
	if w.up == nil {
		w.metrics.refreshed.WithLabelValues(refreshOff).Inc()
		return river.JobCancel(errOff)
	}
	if seen := job.Args.SeenUpdatedAt; seen != nil {
		moved, exists, err := movedSince(ctx, w.db, orderNr, *seen)
		switch {
		case err != nil:
			return err
		case !exists:
			w.metrics.refreshed.WithLabelValues(refreshGone).Inc()
			return nil
		case moved:
			// Not stale any more: an event arrived, or a refresh that
			// completed as this one was enqueued.
			w.metrics.refreshed.WithLabelValues(refreshMoved).Inc()
			return nil
		}
	}
	order, err := w.up.Order(ctx, orderNr)
	switch {
	case err == nil:
		return w.apply(ctx, job, order)
	case errors.Is(err, errUpstreamNotFound):
		return w.notFound(ctx, job)
	case errors.Is(err, errUpstreamMalformed):
		w.metrics.refreshed.WithLabelValues(refreshMalformed).Inc()
		w.logger.Warn("malformed answer from eats-picker-orders; not applied", "order_nr", orderNr, "error", err)
		return river.JobCancel(err)
	case errors.Is(err, errUpstreamRejected):
		w.metrics.refreshed.WithLabelValues(refreshRejected).Inc()
		w.logger.Warn("eats-picker-orders rejected the refresh", "order_nr", orderNr, "error", err)
		return river.JobCancel(err)
	case errors.Is(err, errBreakerOpen):
		w.metrics.refreshed.WithLabelValues(refreshBreakerOpen).Inc()
		return river.JobSnooze(w.snooze(snoozes(job)))
	default:
		if ctx.Err() == nil {
			w.metrics.refreshed.WithLabelValues(refreshUnavailable).Inc()
		}
		return err // River logs it and retries with backoff
	}
}

// apply writes the answer through picker-ingest's apply path, moves
// updated_at and completes the job in one transaction, then lets
// picker-ingest write the cache.
func (w *refresher) apply(ctx context.Context, job *river.Job[RefreshArgs], o upstreamOrder) error {
	o, err := normalize(o)
	if err != nil {
		// The answer decoded but is not what an event may carry (a phone
		// that is not a phone, say): nothing of it is applied.
		w.metrics.refreshed.WithLabelValues(refreshMalformed).Inc()
		w.logger.Warn("invalid answer from eats-picker-orders; not applied", "order_nr", o.OrderNr, "error", err)
		return river.JobCancel(fmt.Errorf("%w: %w", errUpstreamMalformed, err))
	}
	tx, err := w.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("refresh picker order %s: begin: %w", o.OrderNr, err)
	}
	defer func() { _ = tx.Rollback() }()

	storedPicker, future, exists, err := lockOrder(ctx, tx, o.OrderNr, o.StatusUpdatedAt)
	if err != nil {
		return err
	}
	if !exists {
		// Cleanup deleted it since the tick; refreshing would bring it back.
		if err := w.complete(ctx, tx, job); err != nil {
			return err
		}
		w.metrics.refreshed.WithLabelValues(refreshGone).Inc()
		w.logger.Debug("picker order gone before its refresh", "order_nr", o.OrderNr)
		return nil
	}

	if future {
		return w.future(ctx, tx, job, o)
	}

	events := []pickeringest.Event{{
		Type:      tracking.EventStatusChange,
		OrderNr:   o.OrderNr,
		Status:    o.Status,
		PlaceID:   o.PlaceID,
		PickerID:  o.PickerID,
		CreatedAt: o.StatusUpdatedAt,
	}}
	if f := o.Forwarding; f != nil {
		// The forwarding belongs to the answer's picker, or to the stored one
		// when the answer names none (DESIGN §5).
		if picker := cmp.Or(o.PickerID, storedPicker); picker != "" {
			events = append(events, pickeringest.Event{
				Type:       tracking.EventPickerPhoneForwardingReady,
				OrderNr:    o.OrderNr,
				Status:     o.Status,
				PlaceID:    o.PlaceID,
				PickerID:   picker,
				Forwarding: &pickeringest.Forwarding{Phone: f.Phone, ExpiresAt: f.ExpiresAt},
				CreatedAt:  o.StatusUpdatedAt,
			})
		} else {
			w.logger.Warn("phone forwarding without a picker; status applied, phone skipped", "order_nr", o.OrderNr, "forwarding", f)
		}
	}

	applied := make([]pickeringest.Applied, 0, len(events))
	for _, ev := range events {
		a, err := w.applier.Apply(ctx, tx, ev)
		if errors.Is(err, tracking.ErrInvalid) {
			w.metrics.refreshed.WithLabelValues(refreshMalformed).Inc()
			w.logger.Warn("invalid answer from eats-picker-orders; not applied", "order_nr", o.OrderNr, "event_type", ev.Type, "error", err)
			return river.JobCancel(fmt.Errorf("%w: %w", errUpstreamMalformed, err))
		}
		if err != nil {
			return fmt.Errorf("refresh picker order %s: %w", o.OrderNr, err)
		}
		applied = append(applied, a)
	}
	if err := touch(ctx, tx, o.OrderNr); err != nil {
		return err
	}
	if err := w.complete(ctx, tx, job); err != nil {
		return err
	}
	for _, a := range applied {
		a.AfterCommit(ctx)
	}
	w.metrics.refreshed.WithLabelValues(refreshApplied).Inc()
	return nil
}

// future handles an answer whose status time is more than
// tracking.MaxFutureSkew ahead of the database's clock (DESIGN §3.1, §5):
// applied, it would win the ordering rule against every later real event
// and freeze the order until cleanup. Nothing of it is applied (nor its
// forwarding, stamped with the same time); updated_at moves, so the order
// is asked again at its next timeout rather than every tick, and the job
// completes.
func (w *refresher) future(ctx context.Context, tx *sqlx.Tx, job *river.Job[RefreshArgs], o upstreamOrder) error {
	if err := touch(ctx, tx, o.OrderNr); err != nil {
		return err
	}
	if err := w.complete(ctx, tx, job); err != nil {
		return err
	}
	w.metrics.future.Inc()
	w.metrics.refreshed.WithLabelValues(refreshFuture).Inc()
	w.logger.Warn("eats-picker-orders answered a status time in the future; not applied",
		"order_nr", o.OrderNr, "status_updated_at", o.StatusUpdatedAt.Format(time.RFC3339Nano))
	return nil
}

// notFound leaves the row as it is but moves updated_at, so an order the
// upstream does not know is asked again only after its timeout.
func (w *refresher) notFound(ctx context.Context, job *river.Job[RefreshArgs]) error {
	orderNr := job.Args.OrderNr
	tx, err := w.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("refresh picker order %s: begin: %w", orderNr, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := touch(ctx, tx, orderNr); err != nil {
		return err
	}
	if err := w.complete(ctx, tx, job); err != nil {
		return err
	}
	w.metrics.refreshed.WithLabelValues(refreshNotFound).Inc()
	w.logger.Debug("picker order not found upstream; row left as is", "order_nr", orderNr)
	return nil
}

// complete marks the job completed inside tx and commits.
func (w *refresher) complete(ctx context.Context, tx *sqlx.Tx, job *river.Job[RefreshArgs]) error {
	if _, err := river.JobCompleteTx[*queue.Driver](ctx, tx.Tx, job); err != nil {
		return fmt.Errorf("refresh picker order %s: complete job: %w", job.Args.OrderNr, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("refresh picker order %s: commit: %w", job.Args.OrderNr, err)
	}
	return nil
}

// normalize holds the answer to what picker-ingest accepts from procaas
// (pickeringest's parse), since Apply trusts its events: times in UTC at
// microsecond precision, a picker_id that fits, a phone that is a phone
// (normalized). Errors wrap tracking.ErrInvalid and mask the phone.
func normalize(o upstreamOrder) (upstreamOrder, error) {
	o.StatusUpdatedAt = tracking.Normalize(o.StatusUpdatedAt)
	if err := tracking.CheckID("picker_id", o.PickerID); err != nil {
		return o, err
	}
	if f := o.Forwarding; f != nil {
		phone, err := tracking.NormalizePhone("customer_picker_phone_forwarding.phone", f.Phone)
		if err != nil {
			return o, err
		}
		o.Forwarding = &upstreamForwarding{Phone: phone, ExpiresAt: tracking.Normalize(f.ExpiresAt)}
	}
	return o, nil
}

// maxBreakerSnooze caps a job's wait for the breaker, so refreshes resume
// within a minute of the upstream's return.
const maxBreakerSnooze = time.Minute

// breakerSnooze is how long a job waits when the breaker is open: until the
// breaker lets a probe through, doubling with each snooze of the job (a
// long outage with thousands of pending refreshes must not wake them all
// every few seconds), plus jitter so they do not all come back at once.
func breakerSnooze(u *upstream) func(snoozes int) time.Duration {
	return func(snoozes int) time.Duration {
		backoff := min(u.cfg.BreakerDelay<<min(snoozes, 10), maxBreakerSnooze)
		if snoozes == 0 {
			backoff = 0
		}
		base := max(u.breaker.RemainingDelay(), backoff, 50*time.Millisecond)
		jitter := time.Duration(rand.Int64N(int64(base/4) + 1)) //nolint:gosec // spreads retries in time; nothing to guess
		return base + jitter
	}
}

// snoozes is how many times River has snoozed the job so far.
func snoozes(job *river.Job[RefreshArgs]) int {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(job.Metadata, &m) // absent or unreadable: none
	return m.Snoozes
}
