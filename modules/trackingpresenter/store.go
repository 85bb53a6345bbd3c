package trackingpresenter

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/modules/trackingpresenter/internal/statecache"
)

// store reads order states from PostgreSQL and the phone cache: one
// eater's (a poll the cache cannot answer) or every eater's (the cache's
// complete load).
type store struct {
	db     *sqlx.DB
	orders *ordersStmt
	phones Phones
	now    func() time.Time
	// onLoadRow, when set (tests), is called for every row loadAll reads.
	onLoadRow func()
}

func newStore(db *sqlx.DB, phones Phones) *store {
	return &store{db: db, orders: &ordersStmt{db: db}, phones: phones, now: time.Now}
}

// load reads the eater's listed states at now: one query, plus the phone
// lookup of orders that may show P2.
func (s *store) load(ctx context.Context, eater string, now time.Time) ([]orderState, error) {
	states, err := s.orders.selectOrders(ctx, eater, now.Add(-finishedVisible))
	if err != nil {
		return nil, err
	}
	if err := attachPhones(ctx, s.phones, s.db, states, now); err != nil {
		return nil, err
	}
	return states, nil
}

// phoneBatch bounds the keys of one phone lookup during a complete load.
const phoneBatch = 1000

// loadAll reads the listed states of every eater that has any (the state
// cache's Loader), each eater's in load's order, and when it started
// reading phones. With more than maxEaters eaters it returns
// statecache.ErrTooManyEaters having read no more than maxEaters eaters'
// rows and one more: the query sends at most maxEaters+1 eaters' rows,
// and reading stops at the first row of the one too many.
func (s *store) loadAll(ctx context.Context, maxEaters int) (map[string][]orderState, time.Time, error) {
	now := s.now()
	all, owners, err := s.selectListed(ctx, now, maxEaters)
	if err != nil {
		return nil, time.Time{}, err
	}
	phonesAt := s.now()
	for start := 0; start < len(all); {
		// Batches of about phoneBatch orders that may want a phone.
		end, want := start, 0
		for end < len(all) && want < phoneBatch {
			if all[end].wantsPhone() {
				want++
			}
			end++
		}
		if err := attachPhones(ctx, s.phones, s.db, all[start:end], now); err != nil {
			return nil, time.Time{}, err
		}
		start = end
	}
	byEater := make(map[string][]orderState)
	for i := range all {
		byEater[owners[i]] = append(byEater[owners[i]], all[i])
	}
	for _, states := range byEater {
		slices.SortFunc(states, func(a, b orderState) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.OrderNr, b.OrderNr))
		})
	}
	return byEater, phonesAt, nil
}

// selectListed runs allListedQuery: every listed order and, at the same
// index, its eater. Its own function so the rows (and their connection)
// are released before loadAll looks up phones.
func (s *store) selectListed(ctx context.Context, now time.Time, maxEaters int) (all []orderState, owners []string, err error) {
	rows, err := s.db.QueryContext(ctx, allListedQuery, now.Add(-finishedVisible), maxEaters+1)
	if err != nil {
		return nil, nil, fmt.Errorf("select listed orders: %w", err)
	}
	defer rows.Close()
	seen := make(map[string]struct{})
	for rows.Next() {
		if s.onLoadRow != nil {
			s.onLoadRow()
		}
		var eater string
		o, err := scanOrder(rows, &eater)
		if err != nil {
			return nil, nil, err
		}
		if _, ok := seen[eater]; !ok {
			if len(seen) == maxEaters {
				return nil, nil, statecache.ErrTooManyEaters
			}
			seen[eater] = struct{}{}
		}
		all, owners = append(all, o), append(owners, eater)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read listed orders: %w", err)
	}
	return all, owners, nil
}

// orderColumns and orderSource read what orderState holds: the orders row
// and, for retail orders, the picker order. scanOrder maps them.
const (
	orderColumns = `
       o.order_nr,
       o.payload->>'flow_type',
       o.payload->>'status',
       COALESCE(o.payload->'place'->>'id', ''),
       COALESCE(o.payload->'place'->>'name', ''),
       COALESCE(o.payload->'place'->>'phone', ''),
       COALESCE(o.payload->'courier'->>'phone', ''),
       (o.payload->>'eta')::timestamptz,
       o.first_event_at,
       o.event_at,
       p.order_nr IS NOT NULL,
       COALESCE(p.payload->>'picker_id', ''),
       COALESCE(p.payload->>'status', ''),
       p.payload->'status_history'->>'picking_at' IS NOT NULL,
       p.payload->'status_history'->>'picked_up_at' IS NOT NULL,
       p.payload->'status_history'->>'paid_at' IS NOT NULL`
	pickerJoin = `
LEFT JOIN picker_orders p ON p.order_nr = o.order_nr AND o.payload->>'flow_type' = 'retail'`
	orderSource = `
FROM orders o` + pickerJoin
	// listedSince: not finished, or finished after $1.
	listedSince = `(o.payload->>'status' NOT IN ('delivered', 'cancelled') OR o.event_at > $1)`
)

// ordersQuery reads an eater's listed orders in one indexed query, by
// createdAt (first event), then order_nr.
const ordersQuery = `SELECT` + orderColumns + orderSource + `
WHERE o.eater_id = $2 AND ` + listedSince + `
ORDER BY o.first_event_at, o.order_nr`

// allListedQuery reads every eater's listed orders (the complete load), of
// at most $2 eaters: a set too big for the cache costs no more than the
// cache's size to find out.
const allListedQuery = `SELECT o.eater_id,` + orderColumns + `
FROM (SELECT DISTINCT o.eater_id FROM orders o WHERE ` + listedSince + ` LIMIT $2) e
JOIN orders o ON o.eater_id = e.eater_id` + pickerJoin + `
WHERE ` + listedSince

// scanOrder reads one row of orderColumns; extra destinations come first.
func scanOrder(rows *sql.Rows, extra ...any) (orderState, error) {
	var (
		o          orderState
		eta        sql.NullTime
		hasPicker  bool
		p          pickerState
		flow, st   string
		pickerStat string
	)
	dest := append(extra, &o.OrderNr, &flow, &st, &o.PlaceID, &o.PlaceName, &o.PlacePhone, &o.CourierPhone,
		&eta, &o.CreatedAt, &o.EventAt,
		&hasPicker, &p.PickerID, &pickerStat, &p.PickingAt, &p.PickedUpAt, &p.PaidAt)
	if err := rows.Scan(dest...); err != nil {
		return o, fmt.Errorf("scan order: %w", err)
	}
	o.FlowType, o.Status = tracking.FlowType(flow), tracking.OrderStatus(st)
	o.CreatedAt, o.EventAt = o.CreatedAt.UTC(), o.EventAt.UTC()
	if eta.Valid {
		o.ETA = eta.Time.UTC()
	}
	if hasPicker {
		p.Status = tracking.PickerStatus(pickerStat)
		o.Picker = &p
	}
	return o, nil
}

// ordersStmt is ordersQuery prepared once per pool connection (database/sql
// re-prepares it on each connection as needed): a poll that misses the
// cache costs one round trip and no parsing or planning. It prepares on
// first use, so building it does no I/O, and retries after a failure.
type ordersStmt struct {
	db   *sqlx.DB
	mu   sync.Mutex
	stmt *sql.Stmt
}

func (s *ordersStmt) get(ctx context.Context) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stmt == nil {
		stmt, err := s.db.PrepareContext(ctx, ordersQuery)
		if err != nil {
			return nil, fmt.Errorf("prepare orders query: %w", err)
		}
		s.stmt = stmt
	}
	return s.stmt, nil
}

// selectOrders runs ordersQuery for eater.
func (s *ordersStmt) selectOrders(ctx context.Context, eater string, finishedAfter time.Time) ([]orderState, error) {
	// The statement is ordersStmt's, shared by every poll; only the rows
	// are this call's to close.
	stmt, err := s.get(ctx) //nolint:sqlclosecheck // the cached prepared statement, not per call: closing it would re-prepare on every poll
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, finishedAfter, eater)
	if err != nil {
		return nil, fmt.Errorf("select orders of eater: %w", err)
	}
	defer rows.Close()
	var out []orderState
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	return out, nil
}

// Phones is what the presenter needs of the picker phone cache:
// picker-ingest's PhoneLookup, bound in modules/modules.go. Each phone's
// FreshUntil bounds how long the tracking cache may keep it (DESIGN §6).
type Phones interface {
	LookupMany(ctx context.Context, db sqlx.QueryerContext, keys []tracking.PhoneKey, now time.Time) (map[tracking.PhoneKey]tracking.Phone, error)
}

// attachPhones looks up, in one batch, the current picker's valid phone of
// every order that may show P2.
func attachPhones(ctx context.Context, phones Phones, db sqlx.QueryerContext, states []orderState, now time.Time) error {
	var keys []tracking.PhoneKey
	for i := range states {
		if states[i].wantsPhone() {
			keys = append(keys, tracking.PhoneKey{OrderNr: states[i].OrderNr, PickerID: states[i].Picker.PickerID})
		}
	}
	if len(keys) == 0 {
		return nil
	}
	found, err := phones.LookupMany(ctx, db, keys, now)
	if err != nil {
		return fmt.Errorf("look up picker phones: %w", err)
	}
	for i := range states {
		if !states[i].wantsPhone() {
			continue
		}
		if p, ok := found[tracking.PhoneKey{OrderNr: states[i].OrderNr, PickerID: states[i].Picker.PickerID}]; ok {
			states[i].Picker.Phone = &p
		}
	}
	return nil
}
