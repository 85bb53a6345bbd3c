//go:build system

package systest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The queues (= River kinds) producers insert into (DESIGN §3).
const (
	pickerQueue = "eats_orders_tracking_picker_orders"
	ordersQueue = "eats_orders_tracking_orders"
)

// The vocabulary, copied from DESIGN §3 rather than imported, so the model
// cannot inherit a mistake of the code it checks. Order matters: on equal
// times the later status wins.
var (
	pickerStatuses = []string{"new", "waiting_dispatch", "dispatching", "dispatch_failed", "assigned", "picking",
		"waiting_confirmation", "confirmed", "picked_up", "receipt_processing", "receipt_rejected", "paid",
		"packing", "handing", "cancelled", "complete"}
	orderStatuses = []string{"created", "call_center_confirmed", "place_confirmed", "taken", "arrived_to_customer", "delivered", "cancelled"}
	otherFlows    = []string{"native", "shop", "marketplace", "pickup"}
)

// seqField tags every JSON-object job with the test's sequence number; both
// queues ignore unknown top-level fields (DESIGN §3.1).
const seqField = "systest_seq"

// job is one River job a test inserts and what it stands for.
type job struct {
	Seq   int64
	Queue string
	Args  []byte
	// Exactly one of Picker and Order for a good job; neither for a
	// malformed one, which has Bad.
	Picker *pickerEvent
	Order  *orderEvent
	// Bad is the field a malformed job's error must name ("" when good).
	Bad string
}

func (j job) good() bool { return j.Bad == "" }

// pickerEvent is a picker-order event (DESIGN §3.1).
type pickerEvent struct {
	Type       string
	OrderNr    string
	Status     string
	PlaceID    string
	CustomerID string
	PickerID   string
	Phone      string // as sent, with spaces and dashes; "" means no forwarding
	ExpiresAt  time.Time
	CreatedAt  time.Time
	// Zone writes the times with a non-UTC offset: the service must compare
	// instants, not strings.
	Zone *time.Location
}

func (e *pickerEvent) fields() map[string]any {
	m := map[string]any{
		"event_type":   e.Type,
		"order_nr":     e.OrderNr,
		"order_status": e.Status,
		"place_id":     e.PlaceID,
		"created_at":   formatIn(e.CreatedAt, e.Zone),
	}
	if e.CustomerID != "" {
		m["customer_id"] = e.CustomerID
	}
	if e.PickerID != "" {
		m["picker_id"] = e.PickerID
	}
	if e.Phone != "" {
		m["customer_picker_phone_forwarding"] = map[string]any{"phone": e.Phone, "expires_at": formatIn(e.ExpiresAt, e.Zone)}
	}
	return m
}

// orderEvent is a snapshot of an order (DESIGN §3.2).
type orderEvent struct {
	OrderNr, EaterID, FlowType, Status string
	PlaceID, PlaceName, PlacePhone     string
	HasCourier                         bool
	CourierName, CourierPhone          string
	ETA                                time.Time // zero: absent
	CreatedAt                          time.Time
}

func (e *orderEvent) fields() map[string]any {
	place := map[string]any{"id": e.PlaceID, "name": e.PlaceName}
	if e.PlacePhone != "" {
		place["phone"] = e.PlacePhone
	}
	m := map[string]any{
		"order_nr":   e.OrderNr,
		"eater_id":   e.EaterID,
		"flow_type":  e.FlowType,
		"status":     e.Status,
		"place":      place,
		"created_at": formatIn(e.CreatedAt, nil),
	}
	if e.HasCourier {
		c := map[string]any{"name": e.CourierName}
		if e.CourierPhone != "" {
			c["phone"] = e.CourierPhone
		}
		m["courier"] = c
	}
	if !e.ETA.IsZero() {
		m["eta"] = formatIn(e.ETA, nil)
	}
	return m
}

func formatIn(t time.Time, zone *time.Location) string {
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format(time.RFC3339Nano)
}

// encodeArgs is the job's JSON with the sequence tag added.
func encodeArgs(fields map[string]any, seq int64) []byte {
	fields[seqField] = seq
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return b
}

// world generates a stream of valid events for a fixed set of eaters and
// orders: status changes with ties and absent pickers, phone forwardings
// (some expired, some tied), order snapshots, duplicates, events out of
// order, and event types the service ignores. It is used from one
// goroutine at a time.
type world struct {
	rnd     *rand.Rand
	seq     *int64
	base    time.Time
	orders  []*worldOrder
	byEater map[string][]*worldOrder
	eaters  []string
	initial []job // one snapshot per order first, so every order is listed
	sent    []job
	// phones maps the digits of every phone used (no "+", no extension)
	// to the phone as sent, for the log check.
	mu        sync.Mutex // guards phones and owner, read while the world runs
	phones    map[string]string
	owner     map[string]string // phone digits → the eater whose order it belongs to
	phoneBase int
	phoneN    int
	expiries  []time.Time
	moscow    *time.Location
}

type worldOrder struct {
	nr, eater, flow    string
	placeID, placeName string
	placePhone         string
	pickers            []string
	slots              []time.Time // picker event times: few, so ties happen
	snapshotTimes      map[time.Time]bool
	courierName        string
	courierPhone       string
}

// newWorld makes eaters × perEater orders; event times lie in the ten
// minutes before now, so finished orders stay listed (15 min) for the run.
func newWorld(seed uint64, seq *int64, eaters, perEater int) *world {
	now := time.Now().UTC().Truncate(time.Microsecond)
	w := &world{
		rnd:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		seq:       seq,
		base:      now.Add(-10 * time.Minute),
		byEater:   map[string][]*worldOrder{},
		phones:    map[string]string{},
		owner:     map[string]string{},
		phoneBase: int(seed%500) * 10_000,
		// Expired half an hour ago (kept by the cleanup for an hour), or
		// valid for one or two hours: never close to when the tests look.
		expiries: []time.Time{now.Add(-30 * time.Minute), now.Add(time.Hour), now.Add(2 * time.Hour)},
		moscow:   time.FixedZone("MSK", 3*60*60),
	}
	shared := make([]string, 7)
	for i := range shared {
		shared[i] = fmt.Sprintf("pk-shared-%d", i)
	}
	for e := range eaters {
		eater := fmt.Sprintf("eater-%05d", e)
		w.eaters = append(w.eaters, eater)
		for k := range perEater {
			i := len(w.orders)
			o := &worldOrder{
				nr:            fmt.Sprintf("ord-%06d", i),
				eater:         eater,
				flow:          "retail",
				placeID:       fmt.Sprint(40 + w.rnd.IntN(20)),
				placeName:     fmt.Sprintf("Store %d", k),
				snapshotTimes: map[time.Time]bool{},
				courierName:   fmt.Sprintf("Courier %d", i),
			}
			if w.rnd.Float64() < 0.35 {
				o.flow = otherFlows[w.rnd.IntN(len(otherFlows))]
			}
			if w.rnd.Float64() < 0.7 {
				o.placePhone = w.newPhone(eater)
			}
			o.courierPhone = w.newPhone(eater)
			o.pickers = []string{fmt.Sprintf("pk-%s-a", o.nr), fmt.Sprintf("pk-%s-b", o.nr), shared[i%len(shared)]}
			for range 8 {
				o.slots = append(o.slots, w.someTime())
			}
			w.orders = append(w.orders, o)
			w.byEater[eater] = append(w.byEater[eater], o)
			w.initial = append(w.initial, w.snapshot(o))
		}
	}
	w.rnd.Shuffle(len(w.initial), func(i, j int) { w.initial[i], w.initial[j] = w.initial[j], w.initial[i] })
	return w
}

func (w *world) nextSeq() int64 {
	*w.seq++
	return *w.seq
}

// someTime is a microsecond instant within the world's ten minutes.
func (w *world) someTime() time.Time {
	return w.base.Add(time.Duration(w.rnd.Int64N(int64(9*time.Minute/time.Microsecond))) * time.Microsecond)
}

// newPhone returns a phone never used before in this world, in one of the
// notations producers use, for an order of eater; phones and owner record it.
func (w *world) newPhone(eater string) string {
	w.phoneN++
	d := fmt.Sprintf("7999%07d", w.phoneBase+w.phoneN)
	var p string
	switch w.rnd.IntN(5) {
	case 0:
		p = "+" + d
	case 1:
		p = fmt.Sprintf("+7 999 %s-%s-%s", d[4:7], d[7:9], d[9:11])
	case 2:
		p = fmt.Sprintf("+7 (999) %s %s %s", d[4:7], d[7:9], d[9:11])
	case 3:
		p = d
	default:
		p = fmt.Sprintf("+%s,,%d", d, 1+w.rnd.IntN(9999))
	}
	w.mu.Lock()
	w.phones[d] = p
	w.owner[d] = eater
	w.mu.Unlock()
	return p
}

// ownerOf returns the eater a phone was made for.
func (w *world) ownerOf(digits string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.owner[digits]
	return e, ok
}

// next returns the next event of the stream.
func (w *world) next() job {
	if len(w.initial) > 0 {
		j := w.initial[0]
		w.initial = w.initial[1:]
		return w.keep(j)
	}
	r := w.rnd.Float64()
	switch {
	case len(w.sent) > 20 && r < 0.07:
		return w.keep(w.duplicate(w.sent[w.rnd.IntN(len(w.sent))]))
	case r < 0.55:
		return w.keep(w.statusChange(w.pickerOrder()))
	case r < 0.72:
		return w.keep(w.phoneReady(w.pickerOrder()))
	case r < 0.90:
		return w.keep(w.snapshot(w.orders[w.rnd.IntN(len(w.orders))]))
	default:
		return w.keep(w.ignored(w.pickerOrder()))
	}
}

func (w *world) keep(j job) job {
	if len(w.sent) < 5000 {
		w.sent = append(w.sent, j)
	} else {
		w.sent[w.rnd.IntN(len(w.sent))] = j
	}
	return j
}

// pickerOrder picks an order for a picker event: retail nine times in ten.
func (w *world) pickerOrder() *worldOrder {
	for range 20 {
		o := w.orders[w.rnd.IntN(len(w.orders))]
		if o.flow == "retail" || w.rnd.Float64() < 0.1 {
			return o
		}
	}
	return w.orders[0]
}

func (w *world) zone() *time.Location {
	if w.rnd.Float64() < 0.2 {
		return w.moscow
	}
	return nil
}

func (w *world) statusChange(o *worldOrder) job {
	e := &pickerEvent{
		Type:      "STATUS_CHANGE",
		OrderNr:   o.nr,
		Status:    pickerStatuses[w.rnd.IntN(len(pickerStatuses))],
		PlaceID:   o.placeID,
		CreatedAt: o.slots[w.rnd.IntN(len(o.slots))],
		Zone:      w.zone(),
	}
	if w.rnd.Float64() < 0.8 { // absent: "not said", the stored picker stays
		e.PickerID = o.pickers[w.rnd.IntN(len(o.pickers))]
	}
	if w.rnd.Float64() < 0.5 {
		e.CustomerID = o.eater
	}
	seq := w.nextSeq()
	return job{Seq: seq, Queue: pickerQueue, Args: encodeArgs(e.fields(), seq), Picker: e}
}

func (w *world) phoneReady(o *worldOrder) job {
	e := &pickerEvent{
		Type:      "PICKER_PHONE_FORWARDING_READY",
		OrderNr:   o.nr,
		Status:    "picking",
		PlaceID:   o.placeID,
		PickerID:  o.pickers[w.rnd.IntN(len(o.pickers))],
		Phone:     w.newPhone(o.eater),
		ExpiresAt: w.expiries[w.rnd.IntN(len(w.expiries))],
		CreatedAt: o.slots[w.rnd.IntN(len(o.slots))],
		Zone:      w.zone(),
	}
	seq := w.nextSeq()
	return job{Seq: seq, Queue: pickerQueue, Args: encodeArgs(e.fields(), seq), Picker: e}
}

// ignored is an ITEM_* event or a type unknown today, with fields that
// would be invalid in a known type: the service must not look at them.
func (w *world) ignored(o *worldOrder) job {
	types := []string{"ITEM_ADD", "ITEM_REPLACE", "ITEM_SOFT_DELETE", "ITEM_PICKED", "PICKER_SHIFT_ENDED"}
	e := &pickerEvent{Type: types[w.rnd.IntN(len(types))], OrderNr: o.nr, Status: "eating", PlaceID: o.placeID, CreatedAt: o.slots[0]}
	f := e.fields()
	f["created_at"] = "not a time"
	f["customer_picker_phone_forwarding"] = map[string]any{"phone": "no", "extra": true}
	seq := w.nextSeq()
	return job{Seq: seq, Queue: pickerQueue, Args: encodeArgs(f, seq), Picker: e}
}

// snapshot is an order event at a time no other snapshot of the order has,
// so the order's ordering never falls back to comparing contents.
func (w *world) snapshot(o *worldOrder) job {
	at := w.someTime()
	for o.snapshotTimes[at] {
		at = at.Add(time.Microsecond)
	}
	o.snapshotTimes[at] = true
	e := &orderEvent{
		OrderNr:    o.nr,
		EaterID:    o.eater,
		FlowType:   o.flow,
		Status:     orderStatuses[w.rnd.IntN(len(orderStatuses))],
		PlaceID:    o.placeID,
		PlaceName:  o.placeName,
		PlacePhone: o.placePhone,
		CreatedAt:  at,
	}
	if w.rnd.Float64() < 0.5 {
		e.HasCourier, e.CourierName = true, o.courierName
		if w.rnd.Float64() < 0.8 {
			e.CourierPhone = o.courierPhone
		}
	}
	if w.rnd.Float64() < 0.5 {
		e.ETA = at.Add(time.Duration(20+w.rnd.IntN(40)) * time.Minute)
	}
	seq := w.nextSeq()
	return job{Seq: seq, Queue: ordersQueue, Args: encodeArgs(e.fields(), seq), Order: e}
}

// duplicate sends an earlier event again (a redelivery): same content, a
// new sequence number.
func (w *world) duplicate(j job) job {
	seq := w.nextSeq()
	var fields map[string]any
	if err := json.Unmarshal(j.Args, &fields); err != nil {
		panic(err)
	}
	j.Seq, j.Args = seq, encodeArgs(fields, seq)
	return j
}

// eaterOf returns the eater of an order number.
func (w *world) eaterOf(orderNr string) string {
	n, err := strconv.Atoi(strings.TrimPrefix(orderNr, "ord-"))
	if err != nil || n < 0 || n >= len(w.orders) {
		return ""
	}
	return w.orders[n].eater
}
