//go:build system

package systest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
)

// model is what the tables must hold after a set of events, computed from
// DESIGN §3 alone: whatever order the events arrive in, however often.
type model struct {
	picker map[string]*pickerRow
	phones map[phoneKey]*phoneRow
	orders map[string]*orderRow
}

type pickerRow struct {
	status   string
	statusAt time.Time
	// the event that set picker_id: the greatest (created_at, rank,
	// picker_id) among events that named one
	pickerID   string
	pickerAt   time.Time
	pickerRank int
	history    map[string]time.Time
}

type phoneKey struct{ orderNr, pickerID string }

type phoneRow struct {
	phone     string // normalized
	expiresAt time.Time
	eventAt   time.Time
}

type orderRow struct {
	ev      *orderEvent
	firstAt time.Time
}

func newModel() *model {
	return &model{picker: map[string]*pickerRow{}, phones: map[phoneKey]*phoneRow{}, orders: map[string]*orderRow{}}
}

// modelOf applies the good jobs.
func modelOf(jobs []job) *model {
	m := newModel()
	for _, j := range jobs {
		m.apply(j)
	}
	return m
}

func rank(list []string, s string) int { return slices.Index(list, s) }

// historyKey: the statuses whose first time status_history keeps.
func historyKey(status string) string {
	switch status {
	case "new", "assigned", "picking", "picked_up", "paid":
		return status + "_at"
	}
	return ""
}

// normalizePhone drops what people put in numbers for readability.
func normalizePhone(p string) string {
	return strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(p)
}

// displayPhone is what the app dials: "<number>,,<ext>" as "<number>,<ext>".
func displayPhone(p string) string { return strings.Replace(p, ",,", ",", 1) }

// at is how the service stores an event time: UTC, microseconds.
func at(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func (m *model) apply(j job) {
	switch {
	case !j.good():
	case j.Picker != nil:
		m.applyPicker(j.Picker)
	case j.Order != nil:
		m.applyOrder(j.Order)
	}
}

func (m *model) applyPicker(e *pickerEvent) {
	t := at(e.CreatedAt)
	switch e.Type {
	case "STATUS_CHANGE":
		r := rank(pickerStatuses, e.Status)
		row, ok := m.picker[e.OrderNr]
		if !ok {
			row = &pickerRow{status: e.Status, statusAt: t, history: map[string]time.Time{}}
			m.picker[e.OrderNr] = row
		}
		// the status of the greatest (created_at, rank)
		if ok && (t.After(row.statusAt) || (t.Equal(row.statusAt) && r > rank(pickerStatuses, row.status))) {
			row.status, row.statusAt = e.Status, t
		}
		// the picker of the greatest (created_at, rank, picker_id) among
		// events that named one; absent means "not said"
		if e.PickerID != "" {
			if row.pickerID == "" || t.After(row.pickerAt) ||
				(t.Equal(row.pickerAt) && (r > row.pickerRank || (r == row.pickerRank && e.PickerID > row.pickerID))) {
				row.pickerID, row.pickerAt, row.pickerRank = e.PickerID, t, r
			}
		}
		if k := historyKey(e.Status); k != "" {
			if old, seen := row.history[k]; !seen || t.Before(old) {
				row.history[k] = t
			}
		}
	case "PICKER_PHONE_FORWARDING_READY":
		k := phoneKey{e.OrderNr, e.PickerID}
		n := phoneRow{phone: normalizePhone(e.Phone), expiresAt: at(e.ExpiresAt), eventAt: t}
		old, ok := m.phones[k]
		// the later expires_at, then the later created_at, then the greater phone
		if !ok || n.expiresAt.After(old.expiresAt) ||
			(n.expiresAt.Equal(old.expiresAt) && (n.eventAt.After(old.eventAt) ||
				(n.eventAt.Equal(old.eventAt) && n.phone > old.phone))) {
			m.phones[k] = &n
		}
	}
}

func (m *model) applyOrder(e *orderEvent) {
	t := at(e.CreatedAt)
	row, ok := m.orders[e.OrderNr]
	if !ok {
		m.orders[e.OrderNr] = &orderRow{ev: e, firstAt: t}
		return
	}
	if t.Before(row.firstAt) {
		row.firstAt = t
	}
	cur := at(row.ev.CreatedAt)
	switch {
	case t.After(cur):
		row.ev = e
	case t.Equal(cur) && !sameSnapshot(e, row.ev):
		// The world never sends two different snapshots of an order at one
		// time, so the model need not know how the service breaks that tie.
		panic(fmt.Sprintf("generator: two snapshots of %s at %s", e.OrderNr, t))
	}
}

func sameSnapshot(a, b *orderEvent) bool {
	x, y := *a, *b
	x.CreatedAt, y.CreatedAt = at(x.CreatedAt), at(y.CreatedAt)
	return x == y
}

// ---- the tables as they are ----

// tables is what the database holds, in the model's terms.
type tables struct {
	picker map[string]*pickerRow
	phones map[phoneKey]*phoneRow
	orders map[string]*orderRow
	// extra is what the model has no words for (unexpected payload keys).
	extra []string
}

func readTables(ctx context.Context, t testing.TB, db *sqlx.DB) *tables {
	t.Helper()
	out := &tables{picker: map[string]*pickerRow{}, phones: map[phoneKey]*phoneRow{}, orders: map[string]*orderRow{}}

	var po []struct {
		OrderNr string `db:"order_nr"`
		Payload []byte `db:"payload"`
	}
	require.NoError(t, db.SelectContext(ctx, &po, `SELECT order_nr, payload FROM picker_orders`))
	for _, r := range po {
		var p map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(r.Payload, &p))
		row := &pickerRow{history: map[string]time.Time{}}
		for k, v := range p {
			switch k {
			case "status":
				require.NoError(t, json.Unmarshal(v, &row.status))
			case "picker_id":
				require.NoError(t, json.Unmarshal(v, &row.pickerID))
			case "status_history":
				var h map[string]string
				require.NoError(t, json.Unmarshal(v, &h))
				for hk, hv := range h {
					ht, err := time.Parse(time.RFC3339Nano, hv)
					require.NoError(t, err, "picker_orders %s status_history.%s", r.OrderNr, hk)
					row.history[hk] = ht.UTC()
				}
			default:
				out.extra = append(out.extra, fmt.Sprintf("picker_orders %s: payload key %q", r.OrderNr, k))
			}
		}
		out.picker[r.OrderNr] = row
	}

	var pp []struct {
		OrderNr   string    `db:"order_nr"`
		PickerID  string    `db:"picker_id"`
		Phone     string    `db:"phone"`
		ExpiresAt time.Time `db:"expires_at"`
	}
	require.NoError(t, db.SelectContext(ctx, &pp, `SELECT order_nr, picker_id, phone, expires_at FROM picker_phones`))
	for _, r := range pp {
		out.phones[phoneKey{r.OrderNr, r.PickerID}] = &phoneRow{phone: r.Phone, expiresAt: r.ExpiresAt.UTC()}
	}

	var os []struct {
		OrderNr string    `db:"order_nr"`
		EaterID string    `db:"eater_id"`
		Payload []byte    `db:"payload"`
		EventAt time.Time `db:"event_at"`
		FirstAt time.Time `db:"first_event_at"`
	}
	require.NoError(t, db.SelectContext(ctx, &os, `SELECT order_nr, eater_id, payload, event_at, first_event_at FROM orders`))
	for _, r := range os {
		var p struct {
			FlowType string `json:"flow_type"`
			Status   string `json:"status"`
			Place    struct {
				ID, Name, Phone string
			} `json:"place"`
			Courier *struct {
				Name, Phone string
			} `json:"courier"`
			ETA *time.Time `json:"eta"`
		}
		dec := json.NewDecoder(bytes.NewReader(r.Payload))
		require.NoError(t, dec.Decode(&p))
		e := &orderEvent{
			OrderNr: r.OrderNr, EaterID: r.EaterID, FlowType: p.FlowType, Status: p.Status,
			PlaceID: p.Place.ID, PlaceName: p.Place.Name, PlacePhone: p.Place.Phone,
			CreatedAt: r.EventAt.UTC(),
		}
		if p.Courier != nil {
			e.HasCourier, e.CourierName, e.CourierPhone = true, p.Courier.Name, p.Courier.Phone
		}
		if p.ETA != nil {
			e.ETA = p.ETA.UTC()
		}
		out.orders[r.OrderNr] = &orderRow{ev: e, firstAt: r.FirstAt.UTC()}
	}
	return out
}

// diff lists every difference between the model and the tables, readable.
func (m *model) diff(got *tables) []string {
	var d []string
	d = append(d, got.extra...)
	for nr, want := range m.picker {
		g, ok := got.picker[nr]
		if !ok {
			d = append(d, fmt.Sprintf("picker_orders %s: missing (want status %s)", nr, want.status))
			continue
		}
		if g.status != want.status {
			d = append(d, fmt.Sprintf("picker_orders %s: status %q, want %q (event at %s)", nr, g.status, want.status, want.statusAt.Format(time.RFC3339Nano)))
		}
		if g.pickerID != want.pickerID {
			d = append(d, fmt.Sprintf("picker_orders %s: picker_id %q, want %q", nr, g.pickerID, want.pickerID))
		}
		for k, wt := range want.history {
			if gt, ok := g.history[k]; !ok || !gt.Equal(wt) {
				d = append(d, fmt.Sprintf("picker_orders %s: status_history.%s = %s, want %s", nr, k, gt.Format(time.RFC3339Nano), wt.Format(time.RFC3339Nano)))
			}
		}
		for k := range g.history {
			if _, ok := want.history[k]; !ok {
				d = append(d, fmt.Sprintf("picker_orders %s: status_history.%s should be absent", nr, k))
			}
		}
	}
	for nr := range got.picker {
		if _, ok := m.picker[nr]; !ok {
			d = append(d, fmt.Sprintf("picker_orders %s: unexpected row", nr))
		}
	}
	for k, want := range m.phones {
		g, ok := got.phones[k]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("picker_phones %v: missing", k))
		case g.phone != want.phone || !g.expiresAt.Equal(want.expiresAt):
			d = append(d, fmt.Sprintf("picker_phones %v: %s until %s, want %s until %s",
				k, maskDigits(g.phone), g.expiresAt.Format(time.RFC3339), maskDigits(want.phone), want.expiresAt.Format(time.RFC3339)))
		}
	}
	for k := range got.phones {
		if _, ok := m.phones[k]; !ok {
			d = append(d, fmt.Sprintf("picker_phones %v: unexpected row", k))
		}
	}
	for nr, want := range m.orders {
		g, ok := got.orders[nr]
		if !ok {
			d = append(d, fmt.Sprintf("orders %s: missing", nr))
			continue
		}
		w := *want.ev
		w.CreatedAt = at(w.CreatedAt)
		w.PlacePhone = normalizePhone(w.PlacePhone)
		w.CourierPhone = normalizePhone(w.CourierPhone)
		if !w.ETA.IsZero() {
			w.ETA = at(w.ETA)
		}
		if *g.ev != w {
			d = append(d, fmt.Sprintf("orders %s: %+v, want %+v", nr, *g.ev, w))
		}
		if !g.firstAt.Equal(want.firstAt) {
			d = append(d, fmt.Sprintf("orders %s: first_event_at %s, want %s", nr, g.firstAt, want.firstAt))
		}
	}
	for nr := range got.orders {
		if _, ok := m.orders[nr]; !ok {
			d = append(d, fmt.Sprintf("orders %s: unexpected row", nr))
		}
	}
	sort.Strings(d)
	return d
}

// maskDigits keeps phones out of test output too: the last four digits.
func maskDigits(p string) string {
	b := []byte(p)
	seen := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] >= '0' && b[i] <= '9' {
			seen++
			if seen > 4 {
				b[i] = '*'
			}
		}
	}
	return string(b)
}

// requireTablesMatch fails with every difference between the model of jobs
// and the tables.
func requireTablesMatch(t testing.TB, db *sqlx.DB, jobs []job) *model {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := modelOf(jobs)
	d := m.diff(readTables(ctx, t, db))
	if len(d) > 0 {
		if len(d) > 30 {
			d = append(d[:30], fmt.Sprintf("... and %d more", len(d)-30))
		}
		t.Fatalf("the tables differ from the model of %d events (%d picker orders, %d phones, %d orders):\n%s",
			len(jobs), len(m.picker), len(m.phones), len(m.orders), strings.Join(d, "\n"))
	}
	return m
}

// ---- what the tracking endpoint must show (DESIGN §4) ----

// card is the part of a tracked order the tests compare.
type card struct {
	OrderNr     string
	FlowType    string
	OrderStatus string
	CreatedAt   time.Time
	ETA         *time.Time
	Status      string
	Actions     []action
	Banner      string // the banner's id, "" when none
	PlaceID     string
	PlaceName   string
}

type action struct {
	Type, ContactType, Phone string
}

const finishedVisible = 15 * time.Minute

// view is what eater must see at now, with both picker experiments on.
func (m *model) view(eater string, now time.Time) []card {
	var rows []*orderRow
	for _, r := range m.orders {
		if r.ev.EaterID != eater {
			continue
		}
		finished := r.ev.Status == "delivered" || r.ev.Status == "cancelled"
		if finished && now.Sub(at(r.ev.CreatedAt)) >= finishedVisible {
			continue
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if !rows[i].firstAt.Equal(rows[j].firstAt) {
			return rows[i].firstAt.Before(rows[j].firstAt)
		}
		return rows[i].ev.OrderNr < rows[j].ev.OrderNr
	})
	cards := make([]card, 0, len(rows))
	for _, r := range rows {
		e := r.ev
		c := card{
			OrderNr: e.OrderNr, FlowType: e.FlowType, OrderStatus: e.Status, CreatedAt: r.firstAt,
			PlaceID: e.PlaceID, PlaceName: e.PlaceName, Actions: []action{},
		}
		if !e.ETA.IsZero() {
			eta := at(e.ETA)
			c.ETA = &eta
		}
		p := m.picker[e.OrderNr]
		paid := false
		if p != nil {
			_, paid = p.history["paid_at"]
		}
		// DESIGN §4.2's P0 row: the order's own status past picking shows
		// the base view whatever the picker order says (a lost paid event).
		pastPicking := e.Status == "taken" || e.Status == "arrived_to_customer" || e.Status == "delivered" || e.Status == "cancelled"
		if e.FlowType == "retail" && p != nil && p.status != "cancelled" && p.status != "complete" && !paid && !pastPicking {
			_, pickedUp := p.history["picked_up_at"]
			_, picking := p.history["picking_at"]
			phone, hasPhone := m.phones[phoneKey{e.OrderNr, p.pickerID}]
			switch {
			case pickedUp: // P3
				c.Status = "picker_paying"
			case picking && p.pickerID != "" && hasPhone && phone.expiresAt.After(now): // P2
				c.Status = "picker_call"
				c.Actions = []action{{Type: "call", ContactType: "picker", Phone: displayPhone(phone.phone)}}
				c.Banner = "retail_forgot_item"
			default: // P1
				c.Status = "picker_contact_us"
				c.Actions = []action{{Type: "contact_us"}}
				c.Banner = "retail_forgot_item"
			}
			cards = append(cards, c)
			continue
		}
		c.Status = e.Status
		switch e.Status {
		case "created", "call_center_confirmed", "place_confirmed":
			if e.PlacePhone != "" {
				c.Actions = []action{{Type: "call", ContactType: "place", Phone: displayPhone(normalizePhone(e.PlacePhone))}}
			}
		case "taken", "arrived_to_customer":
			if e.CourierPhone != "" {
				c.Actions = []action{{Type: "call", ContactType: "courier", Phone: displayPhone(normalizePhone(e.CourierPhone))}}
			}
		}
		cards = append(cards, c)
	}
	return cards
}

// trackingAnswer is the endpoint's body, as the app reads it.
type trackingAnswer struct {
	Meta struct {
		CheckAfter int `json:"checkAfter"`
		Count      int `json:"count"`
	} `json:"meta"`
	Payload struct {
		TrackedOrders []struct {
			Order struct {
				OrderNr   string     `json:"orderNr"`
				FlowType  string     `json:"flowType"`
				Status    string     `json:"status"`
				CreatedAt time.Time  `json:"createdAt"`
				ETA       *time.Time `json:"eta"`
			} `json:"order"`
			Status      string `json:"status"`
			Title       string `json:"title"`
			Description string `json:"description"`
			Actions     []struct {
				Type    string `json:"type"`
				Title   string `json:"title"`
				Payload struct {
					ContactType string `json:"contact_type"`
					Phone       string `json:"phone"`
				} `json:"payload"`
			} `json:"actions"`
			Banners *struct {
				Design  string `json:"design"`
				Banners []struct {
					ID      string `json:"id"`
					Kind    string `json:"kind"`
					AppLink string `json:"appLink"`
				} `json:"banners"`
			} `json:"banners"`
			Place struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"place"`
			CheckAfter int `json:"checkAfter"`
		} `json:"trackedOrders"`
	} `json:"payload"`
}

// cards turns an answer into the compared form; problems lists what the
// contract forbids whatever the data (empty titles, a count that lies).
func (a *trackingAnswer) cards() (cards []card, problems []string) {
	if a.Meta.Count != len(a.Payload.TrackedOrders) {
		problems = append(problems, fmt.Sprintf("meta.count %d for %d orders", a.Meta.Count, len(a.Payload.TrackedOrders)))
	}
	cards = []card{}
	for _, o := range a.Payload.TrackedOrders {
		c := card{
			OrderNr: o.Order.OrderNr, FlowType: o.Order.FlowType, OrderStatus: o.Order.Status,
			CreatedAt: o.Order.CreatedAt.UTC(), Status: o.Status, PlaceID: o.Place.ID, PlaceName: o.Place.Name,
			Actions: []action{},
		}
		if o.Order.ETA != nil {
			eta := o.Order.ETA.UTC()
			c.ETA = &eta
		}
		for _, a := range o.Actions {
			c.Actions = append(c.Actions, action{Type: a.Type, ContactType: a.Payload.ContactType, Phone: a.Payload.Phone})
			if a.Title == "" {
				problems = append(problems, o.Order.OrderNr+": an action without a title")
			}
		}
		if o.Banners != nil {
			if len(o.Banners.Banners) != 1 || o.Banners.Design != "wide_and_short" || o.Banners.Banners[0].Kind != "info" {
				problems = append(problems, fmt.Sprintf("%s: unexpected banners %+v", o.Order.OrderNr, *o.Banners))
			} else {
				c.Banner = o.Banners.Banners[0].ID
			}
		}
		if o.Title == "" || o.Description == "" {
			problems = append(problems, o.Order.OrderNr+": empty title or description")
		}
		if o.CheckAfter != 15 {
			problems = append(problems, fmt.Sprintf("%s: checkAfter %d", o.Order.OrderNr, o.CheckAfter))
		}
		cards = append(cards, c)
	}
	return cards, problems
}

// cardsDiff describes how got differs from want, phones masked.
func cardsDiff(want, got []card) string {
	if len(want) == len(got) {
		same := true
		for i := range want {
			if !sameCard(want[i], got[i]) {
				same = false
				break
			}
		}
		if same {
			return ""
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "want %d cards:\n", len(want))
	for _, c := range want {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	fmt.Fprintf(&b, "got %d cards:\n", len(got))
	for _, c := range got {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	return b.String()
}

func sameCard(a, b card) bool {
	if (a.ETA == nil) != (b.ETA == nil) || (a.ETA != nil && !a.ETA.Equal(*b.ETA)) {
		return false
	}
	a.ETA, b.ETA = nil, nil
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return false
	}
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func (c card) String() string {
	var acts []string
	for _, a := range c.Actions {
		acts = append(acts, strings.TrimSuffix(a.Type+"/"+a.ContactType+"/"+maskDigits(a.Phone), "/"))
	}
	return fmt.Sprintf("%s %s %s→%s actions=[%s] banner=%q created=%s", c.OrderNr, c.FlowType, c.OrderStatus, c.Status,
		strings.Join(acts, " "), c.Banner, c.CreatedAt.Format(time.RFC3339Nano))
}
