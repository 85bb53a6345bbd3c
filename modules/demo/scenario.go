package demo

import (
	"fmt"
	"time"

	"github.com/eats/eats-orders-tracking/modules/orderingest"
	"github.com/eats/eats-orders-tracking/modules/tracking"
)

// demoOrders are the order numbers of one demo run.
type demoOrders struct {
	A string // retail: every picker state, then delivery
	B string // retail: a lost event the updater recovers, then a picker swap
	C string // retail: a quicker walk alongside
	N string // native: the base view only (restaurant, courier)
}

// newDemoOrders numbers the orders like production (YYMMDD-NNNNNN), from
// the time of day, so a rerun gets new numbers.
func newDemoOrders(now time.Time) demoOrders {
	base := (now.Hour()*3600+now.Minute()*60+now.Second())*10 + 100000
	nr := func(i int) string { return fmt.Sprintf("%s-%06d", now.Format("060102"), base+i) }
	return demoOrders{A: nr(1), B: nr(2), C: nr(3), N: nr(4)}
}

// demoEvent is one event: an order snapshot (DESIGN §3.2) or a picker
// event (§3.1).
type demoEvent struct {
	Order  *orderingest.OrderArgs
	Picker *demoPicker
}

// demoPicker is a picker event: a STATUS_CHANGE, or with Phone a
// PICKER_PHONE_FORWARDING_READY. Lost events reach only the fake
// eats-picker-orders, not the queue.
type demoPicker struct {
	OrderNr  string
	Status   tracking.PickerStatus
	PickerID string
	Phone    string
	Lost     bool
}

// demoStep happens At after the start (at speed 1).
type demoStep struct {
	At     time.Duration
	Order  string
	Say    string
	Events []demoEvent
	// Want is the tracked order's status once the step has been applied
	// (DESIGN §4.1: picker_contact_us, picker_call, picker_paying for
	// P1–P3, else the order's own status).
	Want string
}

var (
	demoStore      = orderingest.Place{ID: "40", Name: "Лавка на Садовой", Phone: "+74950000040", Address: "Садовая, 1"}
	demoRestaurant = orderingest.Place{ID: "7", Name: "Кафе «Пельмени»", Phone: "+74950000007", Address: "Тверская, 7"}
	demoCourier    = orderingest.Courier{Name: "Алексей", Phone: "+79990000001"}
)

// demoPhone is a forwarding number with an extension: stored as
// "<number>,,<ext>", shown and dialled as "<number>,<ext>".
const demoPhone = "+79991234567,,123"

func orderEvent(nr string, flow tracking.FlowType, status tracking.OrderStatus) demoEvent {
	place := demoStore
	if flow == tracking.FlowNative {
		place = demoRestaurant
	}
	args := &orderingest.OrderArgs{OrderNr: nr, FlowType: flow, Status: status, Place: &place}
	switch status {
	case tracking.OrderTaken, tracking.OrderArrivedToCustomer, tracking.OrderDelivered:
		c := demoCourier
		args.Courier = &c
	}
	return demoEvent{Order: args}
}

func pickerEvent(nr string, status tracking.PickerStatus, pickerID string) demoEvent {
	return demoEvent{Picker: &demoPicker{OrderNr: nr, Status: status, PickerID: pickerID}}
}

func phoneEvent(nr string, status tracking.PickerStatus, pickerID string, lost bool) demoEvent {
	return demoEvent{Picker: &demoPicker{OrderNr: nr, Status: status, PickerID: pickerID, Phone: demoPhone, Lost: lost}}
}

// demoSteps is the walk: about two minutes at speed 1, in time order. Each
// state lasts long enough (≥ 15 s for at least one order; the native order
// stays created for 18 s) that the widget, polling every meta.checkAfter =
// 15 s, shows it. Every state of DESIGN §4.2 appears (P1 contact us, P2 call
// the picker, P3 paying, the base view after payment), plus a picker swap,
// an event lost and recovered by the picker updater, and a native order's
// courier.
func demoSteps(o demoOrders) []demoStep {
	const (
		retail = tracking.FlowRetail
		native = tracking.FlowNative
	)
	s := func(sec int, nr, say, want string, evs ...demoEvent) demoStep {
		return demoStep{At: time.Duration(sec) * time.Second, Order: nr, Say: say, Events: evs, Want: want}
	}
	return []demoStep{
		s(3, o.N, "native order created: base view, «Позвонить в ресторан»", "created",
			orderEvent(o.N, native, tracking.OrderCreated)),
		s(5, o.A, "retail order created: base view (no picker order yet)", "created",
			orderEvent(o.A, retail, tracking.OrderCreated)),
		s(7, o.B, "retail order created", "created",
			orderEvent(o.B, retail, tracking.OrderCreated)),
		s(9, o.C, "retail order created", "created",
			orderEvent(o.C, retail, tracking.OrderCreated)),
		s(13, o.A, "picker order new → P1 «Забыли товар?», button «Связаться с нами»", "picker_contact_us",
			orderEvent(o.A, retail, tracking.OrderPlaceConfirmed), pickerEvent(o.A, tracking.PickerNew, "")),
		s(17, o.B, "picker order new → P1", "picker_contact_us",
			orderEvent(o.B, retail, tracking.OrderPlaceConfirmed), pickerEvent(o.B, tracking.PickerNew, "")),
		s(19, o.C, "picker order new → P1", "picker_contact_us",
			orderEvent(o.C, retail, tracking.OrderPlaceConfirmed), pickerEvent(o.C, tracking.PickerNew, "")),
		s(21, o.N, "restaurant confirmed: «Готовим заказ»", "place_confirmed",
			orderEvent(o.N, native, tracking.OrderPlaceConfirmed)),
		s(24, o.A, "picker assigned → still P1", "picker_contact_us",
			pickerEvent(o.A, tracking.PickerAssigned, "picker-a1")),
		s(27, o.B, "picker assigned → still P1", "picker_contact_us",
			pickerEvent(o.B, tracking.PickerAssigned, "picker-b1")),
		s(30, o.C, "picker assigned → still P1", "picker_contact_us",
			pickerEvent(o.C, tracking.PickerAssigned, "picker-c1")),
		s(34, o.A, "picking, no forwarding number yet → still P1", "picker_contact_us",
			pickerEvent(o.A, tracking.PickerPicking, "picker-a1")),
		s(38, o.A, "forwarding number ready → P2 «Забыли самое нужное?», «Позвонить сборщику» (tel:+79991234567,123)", "picker_call",
			phoneEvent(o.A, tracking.PickerPicking, "picker-a1", false)),
		s(41, o.C, "picking with a forwarding number → P2", "picker_call",
			pickerEvent(o.C, tracking.PickerPicking, "picker-c1"), phoneEvent(o.C, tracking.PickerPicking, "picker-c1", false)),
		s(44, o.B, "picking → P1", "picker_contact_us",
			pickerEvent(o.B, tracking.PickerPicking, "picker-b1")),
		s(46, o.B, "forwarding event LOST (only eats-picker-orders knows it): the picker updater refreshes the order after 5 s quiet → P2", "picker_call",
			phoneEvent(o.B, tracking.PickerPicking, "picker-b1", true)),
		s(52, o.N, "courier on the way: «Курьер в пути», «Позвонить курьеру»", "taken",
			orderEvent(o.N, native, tracking.OrderTaken)),
		s(60, o.B, "picker swapped: the new picker has no forwarding number yet → P1", "picker_contact_us",
			pickerEvent(o.B, tracking.PickerPicking, "picker-b2")),
		s(70, o.A, "picked up → P3 «Стоим в очереди на кассу»", "picker_paying",
			pickerEvent(o.A, tracking.PickerPickedUp, "picker-a1")),
		s(74, o.C, "picked up → P3", "picker_paying",
			pickerEvent(o.C, tracking.PickerPickedUp, "picker-c1")),
		s(78, o.N, "courier arrived: «Курьер на месте»", "arrived_to_customer",
			orderEvent(o.N, native, tracking.OrderArrivedToCustomer)),
		s(80, o.B, "the new picker's forwarding number is ready → P2", "picker_call",
			phoneEvent(o.B, tracking.PickerPicking, "picker-b2", false)),
		s(92, o.A, "paid → base view «Собираем заказ», «Позвонить в магазин»", "place_confirmed",
			pickerEvent(o.A, tracking.PickerPaid, "picker-a1")),
		s(96, o.C, "paid → base view", "place_confirmed",
			pickerEvent(o.C, tracking.PickerPaid, "picker-c1")),
		s(98, o.B, "picked up → P3", "picker_paying",
			pickerEvent(o.B, tracking.PickerPickedUp, "picker-b2")),
		s(102, o.A, "courier on the way: «Курьер в пути»", "taken",
			orderEvent(o.A, retail, tracking.OrderTaken)),
		s(104, o.N, "delivered: «Заказ доставлен» (listed for 15 more minutes)", "delivered",
			orderEvent(o.N, native, tracking.OrderDelivered)),
		s(108, o.C, "courier on the way", "taken",
			orderEvent(o.C, retail, tracking.OrderTaken)),
		s(112, o.A, "courier arrived", "arrived_to_customer",
			orderEvent(o.A, retail, tracking.OrderArrivedToCustomer)),
		s(118, o.B, "paid → base view", "place_confirmed",
			pickerEvent(o.B, tracking.PickerPaid, "picker-b2")),
		s(122, o.C, "delivered", "delivered",
			orderEvent(o.C, retail, tracking.OrderDelivered)),
		s(124, o.A, "delivered", "delivered",
			orderEvent(o.A, retail, tracking.OrderDelivered)),
		s(128, o.B, "courier on the way", "taken",
			orderEvent(o.B, retail, tracking.OrderTaken)),
		s(134, o.B, "delivered", "delivered",
			orderEvent(o.B, retail, tracking.OrderDelivered)),
	}
}
