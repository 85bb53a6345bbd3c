package trackingpresenter

import (
	"cmp"
	"slices"
	"time"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// Constants of the answer (DESIGN §4.1).
const (
	checkAfterSeconds = 15
	// finishedVisible: a delivered or cancelled order stays listed this long
	// after its status's event time.
	finishedVisible = 15 * time.Minute

	bannerDesign   = "wide_and_short"
	bannerForgotID = "retail_forgot_item"
	bannerKindInfo = "info"
)

// Tracked order statuses of the picker states P1–P3 (DESIGN §4.2).
const (
	statusPickerContactUs = "picker_contact_us"
	statusPickerCall      = "picker_call"
	statusPickerPaying    = "picker_paying"
)

// orderState is what the endpoint knows about one order: the orders row,
// and for retail orders the picker order and, when P2 may apply, the
// current picker's valid phone. It depends on nothing but the data, so it
// can be cached; texts, experiments and the clock apply when it is rendered.
type orderState struct {
	OrderNr      string
	FlowType     tracking.FlowType
	Status       tracking.OrderStatus
	PlaceID      string
	PlaceName    string
	PlacePhone   string // stored form, "" when none
	CourierPhone string // stored form, "" when none
	ETA          time.Time
	CreatedAt    time.Time // first event
	EventAt      time.Time // event time of the status in force
	Picker       *pickerState
}

// pickerState is the retail order's picker order.
type pickerState struct {
	PickerID   string
	Status     tracking.PickerStatus
	PickingAt  bool
	PickedUpAt bool
	PaidAt     bool
	// Phone is the current picker's phone, looked up only when the order
	// may show P2 (picking, not yet picked up); nil when there is none.
	Phone *tracking.Phone
}

// visible reports whether the order is listed at now: not finished, or
// finished less than finishedVisible ago.
func (o *orderState) visible(now time.Time) bool {
	return !o.Status.Finished() || now.Sub(o.EventAt) < finishedVisible
}

// pickerView reports whether the picker states apply (not P0): a retail
// order whose own status is still before the courier (a lost paid event
// must not hide the courier, nor offer the picker on a cancelled order),
// whose picker order exists, is neither cancelled nor complete, and has
// not been paid.
func (o *orderState) pickerView() bool {
	p := o.Picker
	return o.FlowType == tracking.FlowRetail && p != nil && !o.pastPicking() &&
		p.Status != tracking.PickerCancelled && p.Status != tracking.PickerComplete && !p.PaidAt
}

// pastPicking reports whether the order's own status (DESIGN §3.2) says
// picking is over: taken, arrived_to_customer, delivered or cancelled.
func (o *orderState) pastPicking() bool {
	switch o.Status {
	case tracking.OrderTaken, tracking.OrderArrivedToCustomer, tracking.OrderDelivered, tracking.OrderCancelled:
		return true
	}
	return false
}

// wantsPhone reports whether P2 may apply, so the phone must be looked up.
func (o *orderState) wantsPhone() bool {
	return o.pickerView() && !o.Picker.PickedUpAt && o.Picker.PickingAt && o.Picker.PickerID != ""
}

// OrderKey and PhoneExpiry make orderState a statecache.State: the cache
// drops the state on a change of its order, and an entry holding a phone
// lives no longer than the phone, nor than the copy it was read from.
func (o orderState) OrderKey() string { return o.OrderNr }

// PhoneExpiry reports whether the state holds a looked-up phone, and until
// when it may be shown: its expiry or, sooner, its FreshUntil (the end of
// the Redis entry it came from, or PHONE_CACHE_TTL after the PostgreSQL
// read), so a replaced phone leaves every replica within PHONE_CACHE_TTL
// (DESIGN §6).
func (o orderState) PhoneExpiry() (time.Time, bool) {
	if o.Picker == nil || o.Picker.Phone == nil {
		return time.Time{}, false
	}
	p := o.Picker.Phone
	if !p.FreshUntil.IsZero() && p.FreshUntil.Before(p.ExpiresAt) {
		return p.FreshUntil, true
	}
	return p.ExpiresAt, true
}

// renderer turns states into the answer.
type renderer struct {
	texts       catalog
	experiments *experiments.Store
	// maxOrders bounds the orders of one answer (TRACKING_MAX_ORDERS_PER_EATER).
	maxOrders int
}

// render builds the tracked orders of eater at now, in the given order
// (the store sorts by createdAt, then orderNr), at most maxOrders of them
// (DESIGN §4.1); it reports whether some were cut. The cap applies here,
// on the orders listed at now, so every read path (memory or PostgreSQL)
// cuts the same way, and a finished order leaving the list frees its room.
func (r *renderer) render(eater string, states []orderState, lang language, now time.Time) ([]trackedOrder, bool) {
	if len(states) <= r.maxOrders { // the usual case: nothing to cut
		out := make([]trackedOrder, 0, len(states))
		for i := range states {
			if states[i].visible(now) {
				out = append(out, r.order(eater, &states[i], lang, now))
			}
		}
		return out, false
	}
	listed := make([]int, 0, len(states))
	for i := range states {
		if states[i].visible(now) {
			listed = append(listed, i)
		}
	}
	capped := len(listed) > r.maxOrders
	if capped {
		listed = r.keep(states, listed)
	}
	out := make([]trackedOrder, 0, len(listed))
	for _, i := range listed {
		out = append(out, r.order(eater, &states[i], lang, now))
	}
	return out, capped
}

// keep picks maxOrders of the listed states (indexes in the shown order):
// active before finished, newest first (createdAt, then orderNr, both
// descending: the last in the shown order first). It returns them in the
// shown order.
func (r *renderer) keep(states []orderState, listed []int) []int {
	byRank := slices.Clone(listed)
	slices.SortStableFunc(byRank, func(i, j int) int {
		a, b := &states[i], &states[j]
		return cmp.Or(
			compareBool(a.Status.Finished(), b.Status.Finished()),
			b.CreatedAt.Compare(a.CreatedAt),
			cmp.Compare(b.OrderNr, a.OrderNr),
		)
	})
	kept := byRank[:r.maxOrders]
	slices.Sort(kept) // indexes of states: back to the shown order
	return kept
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}

func (r *renderer) order(eater string, o *orderState, lang language, now time.Time) trackedOrder {
	t := trackedOrder{
		Order: trackedOrderInfo{
			OrderNr: o.OrderNr, FlowType: string(o.FlowType), Status: string(o.Status),
			CreatedAt: o.CreatedAt.UTC(),
		},
		Place:      trackedOrderPlace{ID: o.PlaceID, Name: o.PlaceName},
		CheckAfter: checkAfterSeconds,
	}
	if !o.ETA.IsZero() {
		eta := o.ETA.UTC()
		t.Order.ETA = &eta
	}
	if o.pickerView() && r.pickerCard(&t, eater, o, lang, now) {
		return t
	}
	r.baseCard(&t, o, lang)
	return t
}

// pickerCard fills P3, P2 or P1, first match wins; false means the base
// view (both experiments off for this order).
func (r *renderer) pickerCard(t *trackedOrder, eater string, o *orderState, lang language, now time.Time) bool {
	p := o.Picker
	if p.PickedUpAt { // P3
		t.Status = statusPickerPaying
		t.Title, t.Description = r.texts.text(lang, msgPayingTitle), r.texts.text(lang, msgPayingDescription)
		t.Actions = []trackedOrderAction{}
		return true
	}
	kw := experiments.Kwargs{}.
		With(experiments.EaterID, eater).
		With(experiments.OrderNr, o.OrderNr).
		With(experiments.PlaceID, o.PlaceID).
		With(experiments.FlowType, string(o.FlowType)).
		With(experiments.Language, string(lang))
	phoneValid := p.Phone != nil && p.Phone.ExpiresAt.After(now)
	if p.PickingAt && phoneValid && enabled(CallPicker, r.experiments, kw) { // P2
		t.Status = statusPickerCall
		t.Title, t.Description = r.texts.text(lang, msgCallPickerTitle), r.texts.text(lang, msgCallPickerDescription)
		t.Actions = []trackedOrderAction{{
			Type: actionCall, Title: r.texts.text(lang, msgCallPickerAction),
			Payload: trackedOrderActionPayload{ContactType: contactPicker, Phone: tracking.DisplayPhone(p.Phone.Number)},
		}}
		t.Banners = r.forgotItemBanner(lang)
		return true
	}
	if enabled(ContactUs, r.experiments, kw) { // P1
		t.Status = statusPickerContactUs
		t.Title, t.Description = r.texts.text(lang, msgContactUsTitle), r.texts.text(lang, msgContactUsDescription)
		t.Actions = []trackedOrderAction{{Type: actionContactUs, Title: r.texts.text(lang, msgContactUsAction)}}
		t.Banners = r.forgotItemBanner(lang)
		return true
	}
	return false
}

// enabled reads a flag; an absent experiment is off (DESIGN §7).
func enabled(key experiments.Key[Flag], store *experiments.Store, kw experiments.Kwargs) bool {
	f, ok := key.Get(store, kw)
	return ok && f.Enabled
}

func (r *renderer) forgotItemBanner(lang language) *trackedOrderBanners {
	return &trackedOrderBanners{Design: bannerDesign, Banners: []trackedOrderBanner{{
		ID: bannerForgotID, Kind: bannerKindInfo, Text: r.texts.text(lang, msgForgotItemBanner), AppLink: "",
	}}}
}

// baseCard fills the base view: texts by order status and flow type, a call
// to the place while it prepares the order, a call to the courier while
// the courier is on the way.
func (r *renderer) baseCard(t *trackedOrder, o *orderState, lang language) {
	store := o.FlowType.IsStore()
	pick := func(restaurant, shop msgKey) msgKey {
		if store {
			return shop
		}
		return restaurant
	}
	var title, desc msgKey
	switch o.Status {
	case tracking.OrderCreated:
		title, desc = msgCreatedTitle, pick(msgCreatedDescriptionRestaurant, msgCreatedDescriptionStore)
	case tracking.OrderCallCenterConfirmed, tracking.OrderPlaceConfirmed:
		title, desc = pick(msgPreparingTitleRestaurant, msgPreparingTitleStore), pick(msgPreparingDescRestaurant, msgPreparingDescStore)
	case tracking.OrderTaken:
		title, desc = msgTakenTitle, msgTakenDescription
	case tracking.OrderArrivedToCustomer:
		title, desc = msgArrivedTitle, msgArrivedDescription
	case tracking.OrderDelivered:
		title, desc = msgDeliveredTitle, msgDeliveredDescription
	default: // cancelled; ingest admits no other status
		title, desc = msgCancelledTitle, msgCancelledDescription
	}
	t.Status = string(o.Status)
	t.Title, t.Description = r.texts.text(lang, title), r.texts.text(lang, desc)
	t.Actions = []trackedOrderAction{}
	switch o.Status {
	case tracking.OrderCreated, tracking.OrderCallCenterConfirmed, tracking.OrderPlaceConfirmed:
		if o.PlacePhone != "" {
			t.Actions = append(t.Actions, trackedOrderAction{
				Type: actionCall, Title: r.texts.text(lang, pick(msgCallPlaceRestaurant, msgCallPlaceStore)),
				Payload: trackedOrderActionPayload{ContactType: contactPlace, Phone: tracking.DisplayPhone(o.PlacePhone)},
			})
		}
	case tracking.OrderTaken, tracking.OrderArrivedToCustomer:
		if o.CourierPhone != "" {
			t.Actions = append(t.Actions, trackedOrderAction{
				Type: actionCall, Title: r.texts.text(lang, msgCallCourier),
				Payload: trackedOrderActionPayload{ContactType: contactCourier, Phone: tracking.DisplayPhone(o.CourierPhone)},
			})
		}
	}
}
