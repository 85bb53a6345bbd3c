package orderingest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/eats/eats-orders-tracking/modules/tracking"
)

// result is what an upsert did to the row.
type result string

const (
	// resultApplied: the event's snapshot is now the row's content.
	resultApplied result = "applied"
	// resultReordered: an older snapshot arrived late; only first_event_at
	// moved back to its time.
	resultReordered result = "reordered"
	// resultStale: a duplicate or an older event; nothing changed.
	resultStale result = "stale"
)

// statusOrder is tracking.OrderStatuses as a Postgres text[], so SQL ranks
// the stored status with array_position exactly as Go ranks it.
var statusOrder = func() pq.StringArray {
	a := make(pq.StringArray, len(tracking.OrderStatuses))
	for i, s := range tracking.OrderStatuses {
		a[i] = string(s)
	}
	return a
}()

// upsert applies one snapshot; it is the only place that decides how an
// order event changes a row. The conflict rule, in SQL so concurrent
// workers need no locks: the incoming snapshot replaces the row iff
// (event_at, status rank, payload, eater_id) is greater than the stored
// one's — latest created_at wins, then the status later in the list, then
// a fixed order on the content, so the outcome never depends on delivery
// order. first_event_at keeps the earliest time either way. updated_at
// moves only when the row changes (the WHERE skips no-op updates). An
// event time more than tracking.MaxFutureSkew after the database's clock
// writes nothing and is refused (DESIGN §3.1), checked in the same
// statement so it costs no extra round trip.
func upsert(ctx context.Context, tx sqlx.ExtContext, s snapshot) (result, error) {
	payload, err := json.Marshal(s.Payload)
	if err != nil {
		return "", fmt.Errorf("encode payload: %w", err)
	}
	const q = `
WITH chk AS (
    SELECT $4::timestamptz > now() + make_interval(secs => $6) AS future
), up AS (
    INSERT INTO orders AS o (order_nr, eater_id, payload, event_at, first_event_at)
    SELECT $1, $2, $3, $4, $4 FROM chk WHERE NOT chk.future
    ON CONFLICT (order_nr) DO UPDATE SET
        (eater_id, payload, event_at, first_event_at, updated_at) = (
            SELECT CASE WHEN d.newer THEN EXCLUDED.eater_id ELSE o.eater_id END,
                   CASE WHEN d.newer THEN EXCLUDED.payload ELSE o.payload END,
                   CASE WHEN d.newer THEN EXCLUDED.event_at ELSE o.event_at END,
                   LEAST(o.first_event_at, EXCLUDED.first_event_at),
                   now()
            FROM (SELECT (EXCLUDED.event_at, array_position($5::text[], EXCLUDED.payload->>'status'), EXCLUDED.payload, EXCLUDED.eater_id)
                       > (o.event_at, array_position($5::text[], o.payload->>'status'), o.payload, o.eater_id) AS newer) d)
    WHERE (EXCLUDED.event_at, array_position($5::text[], EXCLUDED.payload->>'status'), EXCLUDED.payload, EXCLUDED.eater_id)
        > (o.event_at, array_position($5::text[], o.payload->>'status'), o.payload, o.eater_id)
       OR EXCLUDED.first_event_at < o.first_event_at
    RETURNING o.event_at = $4 AND o.payload = $3::jsonb AND o.eater_id = $2 AS current
)
SELECT chk.future, up.current FROM chk LEFT JOIN up ON true`
	var (
		future  bool
		current sql.NullBool
	)
	err = tx.QueryRowxContext(ctx, q, s.OrderNr, s.EaterID, string(payload), s.EventAt, statusOrder, tracking.MaxFutureSkew.Seconds()).Scan(&future, &current)
	switch {
	case err != nil:
		return "", fmt.Errorf("upsert order %s: %w", s.OrderNr, err)
	case future:
		return "", tracking.InFuture("created_at", s.SentAt)
	case !current.Valid:
		return resultStale, nil
	case current.Bool:
		return resultApplied, nil
	default:
		return resultReordered, nil
	}
}

// permanent reports whether err is a data error that no retry can fix
// (Postgres class 22, e.g. a date out of range): the job is cancelled.
func permanent(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code.Class() == "22"
}
