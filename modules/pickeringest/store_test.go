package pickeringest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/tracking"
)

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func sc(order string, status tracking.PickerStatus, picker string, at time.Time) Event {
	return Event{Type: tracking.EventStatusChange, OrderNr: order, Status: status, PlaceID: "40", PickerID: picker, CreatedAt: at}
}

func ready(order, picker, phone string, expires, at time.Time) Event {
	return Event{Type: tracking.EventPickerPhoneForwardingReady, OrderNr: order, Status: tracking.PickerPicking, PlaceID: "40",
		PickerID: picker, Forwarding: &Forwarding{Phone: phone, ExpiresAt: expires}, CreatedAt: at}
}

// TestApplyStatusChangeEachStatus checks the whole stored payload for a
// first STATUS_CHANGE in every status, with and without a picker.
func TestApplyStatusChangeEachStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := time.Date(2025, 3, 1, 10, 0, 0, 123456000, time.UTC)
	history := map[tracking.PickerStatus]bool{"new": true, "assigned": true, "picking": true, "picked_up": true, "paid": true}
	for _, status := range tracking.PickerStatuses {
		for _, picker := range []string{"", "p-1"} {
			order := fmt.Sprintf("%s-%s", status, picker)
			applied := b.apply(t, sc(order, status, picker, at))
			require.True(t, applied.Changed)
			want := map[string]any{"status": string(status), "status_history": map[string]any{}}
			if history[status] {
				want["status_history"] = map[string]any{string(status) + "_at": "2025-03-01T10:00:00.123456Z"}
			}
			if picker != "" {
				want["picker_id"] = picker
			}
			row, ok := b.pickerOrder(t, order)
			require.True(t, ok)
			require.JSONEq(t, string(mustJSON(t, want)), row.Payload, "status %s picker %q", status, picker)
			require.Equal(t, string(status), row.Status, "the updater's column")
			require.Equal(t, at, row.StatusEventAt)
			require.Empty(t, b.phoneRows(t, order), "a STATUS_CHANGE writes no phone")
		}
	}
}

// TestApplyWalk follows one order through its life, events in order and
// out of order, checking the whole payload after each.
func TestApplyWalk(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const order = "230101-100001"
	s := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	steps := []struct {
		ev      Event
		changed bool
		want    string
	}{
		{sc(order, "new", "", s(0)), true, `{"status":"new","status_history":{"new_at":"2025-03-01T10:00:00Z"}}`},
		{sc(order, "dispatching", "", s(5)), true, `{"status":"dispatching","status_history":{"new_at":"2025-03-01T10:00:00Z"}}`},
		{sc(order, "assigned", "p-1", s(10)), true, `{"picker_id":"p-1","status":"assigned","status_history":{"new_at":"2025-03-01T10:00:00Z","assigned_at":"2025-03-01T10:00:10Z"}}`},
		// A late duplicate of the first event changes nothing.
		{sc(order, "new", "", s(0)), false, `{"picker_id":"p-1","status":"assigned","status_history":{"new_at":"2025-03-01T10:00:00Z","assigned_at":"2025-03-01T10:00:10Z"}}`},
		{sc(order, "picking", "", s(20)), true, `{"picker_id":"p-1","status":"picking","status_history":{"new_at":"2025-03-01T10:00:00Z","assigned_at":"2025-03-01T10:00:10Z","picking_at":"2025-03-01T10:00:20Z"}}`},
		// An older event: not the status, but an earlier first time for new.
		{sc(order, "new", "", s(-3)), true, `{"picker_id":"p-1","status":"picking","status_history":{"new_at":"2025-03-01T09:59:57Z","assigned_at":"2025-03-01T10:00:10Z","picking_at":"2025-03-01T10:00:20Z"}}`},
		// A later picking keeps the earliest picking_at but moves the status time.
		{sc(order, "picking", "", s(25)), true, `{"picker_id":"p-1","status":"picking","status_history":{"new_at":"2025-03-01T09:59:57Z","assigned_at":"2025-03-01T10:00:10Z","picking_at":"2025-03-01T10:00:20Z"}}`},
		{sc(order, "picked_up", "p-1", s(30)), true, `{"picker_id":"p-1","status":"picked_up","status_history":{"new_at":"2025-03-01T09:59:57Z","assigned_at":"2025-03-01T10:00:10Z","picking_at":"2025-03-01T10:00:20Z","picked_up_at":"2025-03-01T10:00:30Z"}}`},
		{sc(order, "receipt_processing", "", s(35)), true, `{"picker_id":"p-1","status":"receipt_processing","status_history":{"new_at":"2025-03-01T09:59:57Z","assigned_at":"2025-03-01T10:00:10Z","picking_at":"2025-03-01T10:00:20Z","picked_up_at":"2025-03-01T10:00:30Z"}}`},
		{sc(order, "paid", "", s(40)), true, `{"picker_id":"p-1","status":"paid","status_history":{"new_at":"2025-03-01T09:59:57Z","assigned_at":"2025-03-01T10:00:10Z","picking_at":"2025-03-01T10:00:20Z","picked_up_at":"2025-03-01T10:00:30Z","paid_at":"2025-03-01T10:00:40Z"}}`},
		// The same time: the later status in the contract's list wins.
		{sc(order, "packing", "", s(40)), true, `{"picker_id":"p-1","status":"packing","status_history":{"new_at":"2025-03-01T09:59:57Z","assigned_at":"2025-03-01T10:00:10Z","picking_at":"2025-03-01T10:00:20Z","picked_up_at":"2025-03-01T10:00:30Z","paid_at":"2025-03-01T10:00:40Z"}}`},
		{sc(order, "receipt_rejected", "", s(40)), false, `{"picker_id":"p-1","status":"packing","status_history":{"new_at":"2025-03-01T09:59:57Z","assigned_at":"2025-03-01T10:00:10Z","picking_at":"2025-03-01T10:00:20Z","picked_up_at":"2025-03-01T10:00:30Z","paid_at":"2025-03-01T10:00:40Z"}}`},
		{sc(order, "complete", "", s(50)), true, `{"picker_id":"p-1","status":"complete","status_history":{"new_at":"2025-03-01T09:59:57Z","assigned_at":"2025-03-01T10:00:10Z","picking_at":"2025-03-01T10:00:20Z","picked_up_at":"2025-03-01T10:00:30Z","paid_at":"2025-03-01T10:00:40Z"}}`},
	}
	for i, step := range steps {
		applied := b.apply(t, step.ev)
		require.Equal(t, step.changed, applied.Changed, "step %d", i)
		row, ok := b.pickerOrder(t, order)
		require.True(t, ok)
		require.JSONEq(t, step.want, row.Payload, "step %d", i)
	}
}

func TestApplyPickerRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	picker := func(order string) string {
		row, ok := b.pickerOrder(t, order)
		require.True(t, ok)
		var p struct {
			PickerID *string `json:"picker_id"`
		}
		require.NoError(t, json.Unmarshal([]byte(row.Payload), &p))
		if p.PickerID == nil {
			return "(absent)"
		}
		return *p.PickerID
	}
	// Absent picker_id keeps the stored one, in either delivery order.
	b.apply(t, sc("a", "assigned", "p-1", t0))
	b.apply(t, sc("a", "picking", "", t0.Add(time.Second)))
	require.Equal(t, "p-1", picker("a"))
	b.apply(t, sc("b", "picking", "", t0.Add(time.Second)))
	require.Equal(t, "(absent)", picker("b"))
	b.apply(t, sc("b", "assigned", "p-1", t0))
	require.Equal(t, "p-1", picker("b"))
	row, _ := b.pickerOrder(t, "b")
	require.Equal(t, "picking", row.Status, "the older event gave the picker, not the status")

	// Equal time and status: the greater picker_id, in either order.
	b.apply(t, sc("c", "assigned", "p-1", t0))
	b.apply(t, sc("c", "assigned", "p-2", t0))
	b.apply(t, sc("d", "assigned", "p-2", t0))
	b.apply(t, sc("d", "assigned", "p-1", t0))
	require.Equal(t, "p-2", picker("c"))
	require.Equal(t, "p-2", picker("d"))

	// Equal time: the later status' picker wins even with a smaller id.
	b.apply(t, sc("e", "picking", "p-1", t0))
	b.apply(t, sc("e", "assigned", "p-9", t0))
	require.Equal(t, "p-1", picker("e"))

	// An older event never takes the picker back.
	b.apply(t, sc("f", "assigned", "p-2", t0.Add(time.Minute)))
	b.apply(t, sc("f", "assigned", "p-1", t0))
	require.Equal(t, "p-2", picker("f"))
}

// TestApplyPickerSwap: a new picker_id replaces the old one; the old
// picker's phone stays stored but is not the current picker's.
func TestApplyPickerSwap(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const order = "swap-1"
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	b.apply(t, sc(order, "picking", "p-old", t0))
	b.apply(t, ready(order, "p-old", "+79990000001", expires, t0.Add(time.Second)))
	b.apply(t, sc(order, "picking", "p-new", t0.Add(time.Minute)))
	row, _ := b.pickerOrder(t, order)
	require.JSONEq(t, `{"picker_id":"p-new","status":"picking","status_history":{"picking_at":"2025-03-01T10:00:00Z"}}`, row.Payload)

	_, ok, err := b.phones.Lookup(ctx, b.db, order, "p-new", time.Now())
	require.NoError(t, err)
	require.False(t, ok, "the new picker has no phone until its own PICKER_PHONE_FORWARDING_READY")
	old, ok, err := b.phones.Lookup(ctx, b.db, order, "p-old", time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "+79990000001", old.Number)

	// A late event of the old picker does not swap back.
	b.apply(t, sc(order, "picking", "p-old", t0.Add(30*time.Second)))
	row, _ = b.pickerOrder(t, order)
	require.JSONEq(t, `{"picker_id":"p-new","status":"picking","status_history":{"picking_at":"2025-03-01T10:00:00Z"}}`, row.Payload)

	b.apply(t, ready(order, "p-new", "+79990000002", expires, t0.Add(2*time.Minute)))
	cur, ok, err := b.phones.Lookup(ctx, b.db, order, "p-new", time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "+79990000002", cur.Number)
}

func TestApplyPhoneReady(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	at := t0.Add(123 * time.Microsecond)
	applied := b.apply(t, ready("o-1", "p-1", "+79991234567,,12", expires, at))
	require.True(t, applied.Changed)
	require.Equal(t, []phoneRow{{PickerID: "p-1", Phone: "+79991234567,,12", ExpiresAt: expires, EventAt: at}}, b.phoneRows(t, "o-1"))
	_, ok := b.pickerOrder(t, "o-1")
	require.False(t, ok, "a phone event does not touch picker_orders")

	// The later expires_at wins, whatever the arrival order; then the later
	// created_at; then the greater phone.
	b.apply(t, ready("o-1", "p-1", "+79990000000", expires.Add(-time.Minute), at.Add(time.Hour)))
	require.Equal(t, "+79991234567,,12", b.phoneRows(t, "o-1")[0].Phone)
	b.apply(t, ready("o-1", "p-1", "+79990000003", expires.Add(time.Minute), at))
	require.Equal(t, "+79990000003", b.phoneRows(t, "o-1")[0].Phone)
	b.apply(t, ready("o-1", "p-1", "+79990000004", expires.Add(time.Minute), at.Add(time.Second)))
	require.Equal(t, "+79990000004", b.phoneRows(t, "o-1")[0].Phone)
	b.apply(t, ready("o-1", "p-1", "+79990000005", expires.Add(time.Minute), at.Add(time.Second)))
	require.Equal(t, "+79990000005", b.phoneRows(t, "o-1")[0].Phone)
	applied = b.apply(t, ready("o-1", "p-1", "+79990000001", expires.Add(time.Minute), at.Add(time.Second)))
	require.False(t, applied.Changed)
	require.Equal(t, "+79990000005", b.phoneRows(t, "o-1")[0].Phone)

	// Another picker of the same order has its own row.
	b.apply(t, ready("o-1", "p-2", "+79990000009", expires, at))
	require.Len(t, b.phoneRows(t, "o-1"), 2)
}

func TestApplyIgnoresOtherTypes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, typ := range []tracking.EventType{"ITEM_ADD", "ITEM_REPLACE", "ITEM_SOFT_DELETE", "ITEM_PICKED", "SOMETHING_NEW"} {
		ev := sc("o-1", "picking", "p-1", t0)
		ev.Type = typ
		applied := b.apply(t, ev)
		require.False(t, applied.Changed)
	}
	_, ok := b.pickerOrder(t, "o-1")
	require.False(t, ok)
	require.Empty(t, b.phoneRows(t, "o-1"))
}

func TestApplyRejectsHandBuiltInvalidEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	noPhone := ready("o", "p", "+79991234567", t0, t0)
	noPhone.Forwarding = nil
	for name, ev := range map[string]Event{
		"no order":         sc("", "picking", "", t0),
		"bad status":       sc("o", "PICKING", "", t0),
		"no time":          sc("o", "picking", "", time.Time{}),
		"no picker":        ready("o", "", "+79991234567", t0, t0),
		"no forwarding":    noPhone,
		"phone not normal": ready("o", "p", "+7 999 123-45-67", t0, t0),
	} {
		tx, err := b.db.BeginTxx(ctx, nil)
		require.NoError(t, err)
		_, err = b.applier.Apply(ctx, tx, ev)
		require.ErrorIs(t, err, tracking.ErrInvalid, name)
		require.NoError(t, tx.Rollback())
	}
}

// TestUpdatedAtMovesOnlyOnChange: a duplicate or older event writes no row
// version at all, so updated_at (the updater's clock) stays.
func TestUpdatedAtMovesOnlyOnChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type version struct {
		Xmin      string    `db:"xmin"`
		UpdatedAt time.Time `db:"updated_at"`
	}
	read := func(table string) version {
		var v version
		require.NoError(t, b.db.Get(&v, `SELECT xmin::text AS xmin, updated_at FROM `+table+` WHERE order_nr = 'o-1'`))
		return v
	}
	expires := time.Now().Add(time.Hour)
	b.apply(t, sc("o-1", "picking", "p-1", t0))
	b.apply(t, ready("o-1", "p-1", "+79991234567", expires, t0))
	po, pp := read("picker_orders"), read("picker_phones")

	for _, ev := range []Event{
		sc("o-1", "picking", "p-1", t0),                                  // duplicate
		sc("o-1", "dispatching", "p-0", t0.Add(-time.Second)),            // older, and a status without history
		ready("o-1", "p-1", "+79991234567", expires, t0),                 // duplicate
		ready("o-1", "p-1", "+79990000000", expires.Add(-time.Hour), t0), // expires earlier
	} {
		require.False(t, b.apply(t, ev).Changed)
	}
	require.Equal(t, po, read("picker_orders"))
	require.Equal(t, pp, read("picker_phones"))

	require.True(t, b.apply(t, sc("o-1", "assigned", "p-0", t0.Add(-time.Second))).Changed, "a first assigned_at is content")
	require.NotEqual(t, po.Xmin, read("picker_orders").Xmin)
}

// model is the DESIGN's rule computed directly over a set of events: the
// reference the database's result must equal, whatever the delivery order.
func model(events []Event) (payload string, statusAt time.Time, phones []phoneRow) {
	type key struct {
		at   time.Time
		rank int
		id   string
	}
	less := func(a, b key) bool {
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at)
		}
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		return a.id < b.id
	}
	var status, picker *Event
	history := map[string]time.Time{}
	best := map[string]Event{}
	for _, ev := range events {
		switch ev.Type {
		case tracking.EventStatusChange:
			if status == nil || less(key{status.CreatedAt, status.Status.Rank(), ""}, key{ev.CreatedAt, ev.Status.Rank(), ""}) {
				status = &ev
			}
			if ev.PickerID != "" && (picker == nil || less(key{picker.CreatedAt, picker.Status.Rank(), picker.PickerID}, key{ev.CreatedAt, ev.Status.Rank(), ev.PickerID})) {
				picker = &ev
			}
			if k := ev.Status.HistoryKey(); k != "" {
				if old, ok := history[k]; !ok || ev.CreatedAt.Before(old) {
					history[k] = ev.CreatedAt
				}
			}
		case tracking.EventPickerPhoneForwardingReady:
			old, ok := best[ev.PickerID]
			if !ok || phoneLess(old, ev) {
				best[ev.PickerID] = ev
			}
		}
	}
	if status != nil {
		p := map[string]any{"status": status.Status, "status_history": map[string]string{}}
		for k, at := range history {
			p["status_history"].(map[string]string)[k] = at.UTC().Format(time.RFC3339Nano)
		}
		if picker != nil {
			p["picker_id"] = picker.PickerID
		}
		b, _ := json.Marshal(p)
		payload, statusAt = string(b), status.CreatedAt
	}
	for id, ev := range best {
		phones = append(phones, phoneRow{PickerID: id, Phone: ev.Forwarding.Phone, ExpiresAt: ev.Forwarding.ExpiresAt, EventAt: ev.CreatedAt})
	}
	slices.SortFunc(phones, func(a, b phoneRow) int { return compareStrings(a.PickerID, b.PickerID) })
	return payload, statusAt, phones
}

func phoneLess(a, b Event) bool {
	if !a.Forwarding.ExpiresAt.Equal(b.Forwarding.ExpiresAt) {
		return a.Forwarding.ExpiresAt.Before(b.Forwarding.ExpiresAt)
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.Forwarding.Phone < b.Forwarding.Phone
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// randomEvents draws a set of events on one order from small domains, so
// time ties, repeated statuses and duplicates are common.
func randomEvents(r *rand.Rand, order string) []Event {
	n := 3 + r.IntN(8)
	var events []Event
	for range n {
		at := t0.Add(time.Duration(r.IntN(4)) * time.Second)
		if r.IntN(4) == 0 {
			picker := []string{"p-1", "p-2", "p-10"}[r.IntN(3)]
			phone := []string{"+79990000001", "+79990000002", "+79990000003,,7"}[r.IntN(3)]
			expires := t0.Add(time.Duration(1+r.IntN(3)) * time.Hour)
			events = append(events, ready(order, picker, phone, expires, at))
		} else {
			picker := []string{"", "", "p-1", "p-2", "p-10"}[r.IntN(5)]
			status := tracking.PickerStatuses[r.IntN(len(tracking.PickerStatuses))]
			events = append(events, sc(order, status, picker, at))
		}
		if r.IntN(3) == 0 { // a duplicate delivery
			events = append(events, events[r.IntN(len(events))])
		}
	}
	return events
}

func withOrder(events []Event, order string) []Event {
	out := make([]Event, len(events))
	for i, ev := range events {
		ev.OrderNr = order
		out[i] = ev
	}
	return out
}

// requireModel checks the rows of order against the model of events.
func (b *testBundle) requireModel(t *testing.T, order string, events []Event, msg string) {
	t.Helper()
	wantPayload, wantAt, wantPhones := model(events)
	row, ok := b.pickerOrder(t, order)
	if wantPayload == "" {
		require.False(t, ok, msg)
	} else {
		require.True(t, ok, msg)
		require.JSONEq(t, wantPayload, row.Payload, msg)
		require.Equal(t, wantAt, row.StatusEventAt, msg)
	}
	require.Equal(t, wantPhones, b.phoneRows(t, order), msg)
}

// TestAnyDeliveryOrderGivesTheSameRows is the property test: for random
// sets of events on one order (duplicates included), every delivery order
// — sequential, and concurrent from many workers — ends in the rows the
// DESIGN's rule gives for the set.
func TestAnyDeliveryOrderGivesTheSameRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 0))

	// Every permutation of a set with time ties and a duplicate.
	base := []Event{
		sc("x", "assigned", "p-2", t0),
		sc("x", "picking", "", t0),
		sc("x", "assigned", "p-10", t0),
		ready("x", "p-2", "+79990000001", t0.Add(time.Hour), t0),
		ready("x", "p-2", "+79990000002", t0.Add(time.Hour), t0),
	}
	base = append(base, base[1])
	perm := 0
	for p := range permutations(len(base)) {
		order := fmt.Sprintf("all-%d", perm)
		perm++
		for _, i := range p {
			b.apply(t, withOrder(base[i:i+1], order)[0])
		}
		b.requireModel(t, order, withOrder(base, order), fmt.Sprintf("permutation %v", p))
	}
	require.Equal(t, 720, perm)

	// Random sets: random sequential orders and concurrent delivery.
	for set := range 25 {
		events := randomEvents(r, "")
		for run := range 12 {
			order := fmt.Sprintf("set%d-run%d", set, run)
			evs := withOrder(events, order)
			r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
			if run%3 == 0 {
				b.applyConcurrently(t, evs)
			} else {
				for _, ev := range evs {
					b.apply(t, ev)
				}
			}
			b.requireModel(t, order, evs, fmt.Sprintf("set %d run %d (seed %d)", set, run, seed))
		}
	}
}

// applyConcurrently delivers each event in its own transaction, all at once.
func (b *testBundle) applyConcurrently(t *testing.T, events []Event) {
	t.Helper()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, len(events))
	for _, ev := range events {
		wg.Go(func() {
			<-start
			ctx := context.Background()
			tx, err := b.db.BeginTxx(ctx, nil)
			if err != nil {
				errs <- err
				return
			}
			defer tx.Rollback() //nolint:errcheck
			if _, err := b.applier.Apply(ctx, tx, ev); err != nil {
				errs <- err
				return
			}
			errs <- tx.Commit()
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// permutations yields every permutation of 0..n-1 (Heap's algorithm).
func permutations(n int) func(yield func([]int) bool) {
	return func(yield func([]int) bool) {
		p := make([]int, n)
		for i := range p {
			p[i] = i
		}
		c := make([]int, n)
		if !yield(slices.Clone(p)) {
			return
		}
		for i := 0; i < n; {
			if c[i] < i {
				if i%2 == 0 {
					p[0], p[i] = p[i], p[0]
				} else {
					p[c[i]], p[i] = p[i], p[c[i]]
				}
				if !yield(slices.Clone(p)) {
					return
				}
				c[i]++
				i = 0
			} else {
				c[i] = 0
				i++
			}
		}
	}
}
