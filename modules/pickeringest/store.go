package pickeringest

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// Applier applies picker events to picker_orders and picker_phones. It is
// the one place that decides how an event changes a row; the worker and
// picker-updater (through its own interface) both use it.
type Applier struct {
	upsertOrder *prepared
	upsertPhone *prepared
	phones      *PhoneLookup
	metrics     *metrics
	now         func() time.Time
}

// newApplier builds the Applier. Its statements are prepared on db (on
// first use), so the transactions given to Apply must come from db.
// phones writes the cache after a commit.
func newApplier(db *sqlx.DB, phones *PhoneLookup, m *metrics) *Applier {
	return &Applier{
		upsertOrder: &prepared{db: db, q: qUpsertPickerOrder},
		upsertPhone: &prepared{db: db, q: qUpsertPickerPhone},
		phones:      phones,
		metrics:     m,
		now:         time.Now,
	}
}

// Applied is what Apply did, and what the caller owes after its commit.
type Applied struct {
	// Changed reports whether a row changed. False for a duplicate or an
	// older event, and for event types that write nothing.
	Changed bool

	phone  *phoneEntry  // the picker_phones row now stored, cached after commit
	phones *PhoneLookup // writes that entry
}

// Apply writes ev's effect inside tx: STATUS_CHANGE upserts picker_orders,
// PICKER_PHONE_FORWARDING_READY upserts picker_phones, other types write
// nothing. Each upsert is one statement whose conflict rule is the DESIGN's
// ordering rule, so concurrent workers need no other coordination. A
// created_at more than tracking.MaxFutureSkew after the database's clock
// writes nothing and returns tracking.InFuture's error (DESIGN §3.1). An
// event that does not satisfy its type's rules returns an error wrapping
// tracking.ErrInvalid (parse never produces one; a hand-built Event might).
// Call AfterCommit on the result once tx has committed.
func (a *Applier) Apply(ctx context.Context, tx *sqlx.Tx, ev Event) (Applied, error) {
	switch ev.Type {
	case tracking.EventStatusChange:
		if err := checkStatusChange(ev); err != nil {
			return Applied{}, err
		}
		changed, err := upsertPickerOrder(a.upsertOrder.query(ctx, tx), ev)
		if errors.Is(err, tracking.ErrInvalid) {
			return Applied{}, err // the time, as the job's error names it
		}
		if err != nil {
			return Applied{}, fmt.Errorf("apply picker event %s for order %s: %w", ev.Type, ev.OrderNr, err)
		}
		return Applied{Changed: changed}, nil
	case tracking.EventPickerPhoneForwardingReady:
		if err := checkPhoneReady(ev); err != nil {
			return Applied{}, err
		}
		upserted := a.now() // the cache entry's life counts from here (PhoneLookup)
		stored, changed, err := upsertPickerPhone(a.upsertPhone.query(ctx, tx), ev)
		if errors.Is(err, tracking.ErrInvalid) {
			return Applied{}, err
		}
		if err != nil {
			return Applied{}, fmt.Errorf("apply picker event %s for order %s: %w", ev.Type, ev.OrderNr, err)
		}
		if !changed {
			return Applied{}, nil
		}
		if !stored.ExpiresAt.After(a.now()) {
			a.metrics.expiredOnArrival.Inc()
		}
		// A changed row is the event's: its event_at is the event's created_at.
		entry := &phoneEntry{key: tracking.PhoneKey{OrderNr: ev.OrderNr, PickerID: ev.PickerID}, phone: stored,
			eventAt: tracking.Normalize(ev.CreatedAt), readAt: upserted}
		return Applied{Changed: true, phone: entry, phones: a.phones}, nil
	default:
		return Applied{}, nil
	}
}

// AfterCommit writes the Redis phone cache entry of a phone event that
// changed picker_phones (DESIGN §6), unless a newer phone's entry is there
// already. A failure is logged with the phone masked and counted, never
// returned: readers fall back to PostgreSQL, and PHONE_CACHE_TTL bounds how
// long the entry it should have replaced is served.
func (a Applied) AfterCommit(ctx context.Context) {
	if a.phone == nil {
		return
	}
	a.phones.store(ctx, *a.phone)
}

func checkStatusChange(ev Event) error {
	var errs []error
	if ev.OrderNr == "" {
		errs = append(errs, tracking.Missing(fieldOrderNr))
	}
	if !ev.Status.Valid() {
		errs = append(errs, tracking.Invalid(fieldStatus, "unknown picker order status", tracking.Truncate(string(ev.Status))))
	}
	if ev.CreatedAt.IsZero() {
		errs = append(errs, tracking.Missing(fieldCreatedAt))
	}
	return errors.Join(errs...)
}

func checkPhoneReady(ev Event) error {
	var errs []error
	if ev.OrderNr == "" {
		errs = append(errs, tracking.Missing(fieldOrderNr))
	}
	if ev.PickerID == "" {
		errs = append(errs, tracking.Missing(fieldPickerID))
	}
	if ev.CreatedAt.IsZero() {
		errs = append(errs, tracking.Missing(fieldCreatedAt))
	}
	if f := ev.Forwarding; f == nil {
		errs = append(errs, tracking.Missing(fieldForwarding))
	} else {
		field := fieldForwarding + "." + fieldPhone
		if p, err := tracking.NormalizePhone(field, f.Phone); err != nil {
			errs = append(errs, err)
		} else if p != f.Phone {
			errs = append(errs, tracking.Invalid(field, "not normalized", tracking.MaskPhone(f.Phone)))
		}
		if f.ExpiresAt.IsZero() {
			errs = append(errs, tracking.Missing(fieldForwarding+"."+fieldExpiresAt))
		}
	}
	return errors.Join(errs...)
}

// statusOrder is the contract's status list as SQL sees it: a status'
// position breaks ties between events with the same created_at.
var statusOrder = func() pq.StringArray {
	out := make(pq.StringArray, len(tracking.PickerStatuses))
	for i, s := range tracking.PickerStatuses {
		out[i] = string(s)
	}
	return out
}()

// The conflict rule of picker_orders, as SQL over the stored row (po) and
// the event ($2 status, $3 picker_id or NULL, $4 created_at, $5 history key
// or NULL, $7 the status list):
//
//   - the status in force is the one of the greatest (created_at, rank);
//   - the picker_id is the one of the greatest (created_at, rank, picker_id)
//     among events that named a picker (absent = "not said");
//   - status_history keeps the earliest created_at per key.
//
// Each is a maximum (or minimum) over the set of events seen, so any
// delivery order, duplicates included, ends in the same row.
const (
	poStatusWins = `(($4::timestamptz, array_position($7::text[], $2::text))
		> (po.status_event_at, array_position($7::text[], po.status)))`
	poPickerWins = `($3::text IS NOT NULL AND (po.picker_event_at IS NULL
		OR ($4::timestamptz, array_position($7::text[], $2::text), $3::text COLLATE "C")
		 > (po.picker_event_at, array_position($7::text[], po.picker_event_status), (po.payload->>'picker_id') COLLATE "C")))`
	poHistoryWins = `($5::text IS NOT NULL AND ((po.payload->'status_history'->>$5::text) IS NULL
		OR (po.payload->'status_history'->>$5::text)::timestamptz > $4::timestamptz))`
)

// qUpsertPickerOrder applies a STATUS_CHANGE ($1 order_nr, $2 status, $3
// picker_id or NULL, $4 created_at, $5 history key or NULL, $6 created_at as
// RFC 3339, $7 the status list, $8 tracking.MaxFutureSkew in seconds). It
// returns whether created_at is in the future (then it wrote nothing) and
// whether it changed the row: a duplicate or an event older in every
// respect writes nothing, so updated_at stays. The future check is part of
// the statement: the database's clock, the one every replica shares, at
// no extra round trip (DESIGN §3.1).
const qUpsertPickerOrder = `
	WITH chk AS (
	    SELECT $4::timestamptz > now() + make_interval(secs => $8) AS future
	), up AS (
	INSERT INTO picker_orders AS po (order_nr, payload, status_event_at, picker_event_at, picker_event_status)
	SELECT $1,
	        jsonb_strip_nulls(jsonb_build_object(
	            'picker_id', $3::text,
	            'status', $2::text,
	            'status_history', CASE WHEN $5::text IS NULL THEN '{}'::jsonb ELSE jsonb_build_object($5::text, $6::text) END)),
	        $4::timestamptz,
	        CASE WHEN $3::text IS NULL THEN NULL ELSE $4::timestamptz END,
	        CASE WHEN $3::text IS NULL THEN NULL ELSE $2::text END
	FROM chk WHERE NOT chk.future
	ON CONFLICT (order_nr) DO UPDATE SET
	    payload = jsonb_strip_nulls(jsonb_build_object(
	        'picker_id', CASE WHEN ` + poPickerWins + ` THEN $3::text ELSE po.payload->>'picker_id' END,
	        'status', CASE WHEN ` + poStatusWins + ` THEN $2::text ELSE po.status END,
	        'status_history', CASE WHEN ` + poHistoryWins + `
	            THEN po.payload->'status_history' || jsonb_build_object($5::text, $6::text)
	            ELSE po.payload->'status_history' END)),
	    status_event_at = CASE WHEN ` + poStatusWins + ` THEN $4::timestamptz ELSE po.status_event_at END,
	    picker_event_at = CASE WHEN ` + poPickerWins + ` THEN $4::timestamptz ELSE po.picker_event_at END,
	    picker_event_status = CASE WHEN ` + poPickerWins + ` THEN $2::text ELSE po.picker_event_status END,
	    updated_at = now()
	WHERE ` + poStatusWins + ` OR ` + poPickerWins + ` OR ` + poHistoryWins + `
	RETURNING 1 AS one
	)
	SELECT chk.future, up.one IS NOT NULL FROM chk LEFT JOIN up ON true`

// upsertPickerOrder runs qUpsertPickerOrder and reports whether the row changed.
func upsertPickerOrder(query func(args ...any) *sqlx.Row, ev Event) (bool, error) {
	var picker, historyKey sql.NullString
	if ev.PickerID != "" {
		picker = sql.NullString{String: ev.PickerID, Valid: true}
	}
	if k := ev.Status.HistoryKey(); k != "" {
		historyKey = sql.NullString{String: k, Valid: true}
	}
	at := tracking.Normalize(ev.CreatedAt)
	var future, changed bool
	err := query(ev.OrderNr, string(ev.Status), picker, at, historyKey, formatTime(at), statusOrder,
		tracking.MaxFutureSkew.Seconds()).Scan(&future, &changed)
	switch {
	case err != nil:
		return false, fmt.Errorf("upsert picker_orders: %w", err)
	case future:
		return false, inFuture(ev)
	}
	return changed, nil
}

// inFuture is the error for an event whose created_at the database found
// more than tracking.MaxFutureSkew ahead, naming the time as it was sent.
func inFuture(ev Event) error {
	return tracking.InFuture(fieldCreatedAt, cmp.Or(ev.createdAtSent, formatTime(ev.CreatedAt)))
}

// qUpsertPickerPhone applies a PICKER_PHONE_FORWARDING_READY for (order_nr,
// picker_id): the later expires_at wins, then the later created_at, then
// the greater phone. It returns whether created_at ($5) is more than $6
// seconds ahead of the database's clock (then it wrote nothing), and the
// row as stored when it changed.
const qUpsertPickerPhone = `
	WITH chk AS (
	    SELECT $5::timestamptz > now() + make_interval(secs => $6) AS future
	), up AS (
	INSERT INTO picker_phones AS pp (order_nr, picker_id, phone, expires_at, event_at)
	SELECT $1, $2, $3, $4, $5 FROM chk WHERE NOT chk.future
	ON CONFLICT (order_nr, picker_id) DO UPDATE SET
	    phone = EXCLUDED.phone,
	    expires_at = EXCLUDED.expires_at,
	    event_at = EXCLUDED.event_at,
	    updated_at = now()
	WHERE (EXCLUDED.expires_at, EXCLUDED.event_at, EXCLUDED.phone COLLATE "C")
	    > (pp.expires_at, pp.event_at, pp.phone COLLATE "C")
	RETURNING phone, expires_at
	)
	SELECT chk.future, up.phone, up.expires_at FROM chk LEFT JOIN up ON true`

// upsertPickerPhone runs qUpsertPickerPhone.
func upsertPickerPhone(query func(args ...any) *sqlx.Row, ev Event) (tracking.Phone, bool, error) {
	var (
		future  bool
		number  sql.NullString
		expires sql.NullTime
	)
	err := query(ev.OrderNr, ev.PickerID, ev.Forwarding.Phone,
		tracking.Normalize(ev.Forwarding.ExpiresAt), tracking.Normalize(ev.CreatedAt),
		tracking.MaxFutureSkew.Seconds()).Scan(&future, &number, &expires)
	switch {
	case err != nil:
		return tracking.Phone{}, false, fmt.Errorf("upsert picker_phones: %w", err)
	case future:
		return tracking.Phone{}, false, inFuture(ev)
	case !number.Valid:
		return tracking.Phone{}, false, nil
	}
	return tracking.Phone{Number: number.String, ExpiresAt: expires.Time.UTC()}, true, nil
}

// formatTime is how times are written inside payload JSON: RFC 3339 in UTC.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// prepared is a statement prepared once for the pool; database/sql then
// prepares it once per connection, so each use is one round trip without
// parsing or planning. Until it is ready, the statement is sent unprepared:
// preparing needs a connection of its own, and waiting for one while
// holding a transaction's connection could exhaust the pool.
type prepared struct {
	db *sqlx.DB
	q  string

	mu        sync.Mutex
	stmt      *sqlx.Stmt
	preparing bool
	retryAt   time.Time
}

// query returns how to run the statement inside tx (which must come from p.db).
func (p *prepared) query(ctx context.Context, tx *sqlx.Tx) func(args ...any) *sqlx.Row {
	if stmt := p.ready(); stmt != nil {
		s := tx.StmtxContext(ctx, stmt)
		return func(args ...any) *sqlx.Row { return s.QueryRowxContext(ctx, args...) }
	}
	return func(args ...any) *sqlx.Row { return tx.QueryRowxContext(ctx, p.q, args...) }
}

// ready returns the prepared statement, or nil after starting to prepare
// it in the background (at most once a second after a failure).
func (p *prepared) ready() *sqlx.Stmt {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stmt != nil || p.preparing || time.Now().Before(p.retryAt) {
		return p.stmt
	}
	p.preparing = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stmt, err := p.db.PreparexContext(ctx, p.q)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.preparing = false
		if err != nil {
			p.retryAt = time.Now().Add(time.Second)
			return
		}
		p.stmt = stmt
	}()
	return nil
}

// enqueue inserts an event's job, unless its created_at is more than
// tracking.MaxFutureSkew after the database's clock: the worker would
// cancel it, so the producer is told now (422). The check runs in the
// insert's transaction, by the clock the worker's check uses.
func enqueue(ctx context.Context, db *sqlx.DB, client *queue.Client, args PickerOrderArgs, ev Event) (int64, error) {
	const q = `SELECT $1::timestamptz > now() + make_interval(secs => $2)`
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("enqueue picker event: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after commit
	if ev.Type.Applied() && !ev.CreatedAtFromJob {
		var future bool
		if err := tx.GetContext(ctx, &future, q, ev.CreatedAt, tracking.MaxFutureSkew.Seconds()); err != nil {
			return 0, fmt.Errorf("enqueue picker event: check created_at: %w", err)
		}
		if future {
			return 0, inFuture(ev)
		}
	}
	res, err := client.InsertTx(ctx, tx.Tx, args, nil)
	if err != nil {
		return 0, fmt.Errorf("enqueue picker event: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("enqueue picker event: commit: %w", err)
	}
	return res.Job.ID, nil
}
