package trackingpresenter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// flagsFile is an experiments file with both flags on, except: call_picker
// off for eater "no-call", contact_us off for "no-contact", both off for
// "no-flags".
const flagsFile = `
experiments:
  eats_orders_tracking_retail_call_picker:
    default: {enabled: true}
    clauses:
      - name: off
        if: {eater_id: {in: [no-call, no-flags]}}
        value: {enabled: false}
  eats_orders_tracking_retail_contact_us:
    default: {enabled: true}
    clauses:
      - name: off
        if: {eater_id: {in: [no-contact, no-flags]}}
        value: {enabled: false}
`

func testRenderer(t *testing.T, file string) *renderer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "experiments.yaml")
	require.NoError(t, os.WriteFile(path, []byte(file), 0o600))
	store, err := experiments.NewStore(experiments.StoreParams{
		Path: path, Definitions: []experiments.Definition{CallPicker.Definition(), ContactUs.Definition()},
	})
	require.NoError(t, err)
	require.NoError(t, store.Load())
	texts, err := loadCatalog(messageFiles)
	require.NoError(t, err)
	return &renderer{texts: texts, experiments: store, maxOrders: 50}
}

var now = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

func retail(picker *pickerState) orderState {
	return orderState{
		OrderNr: "230101-100001", FlowType: tracking.FlowRetail, Status: tracking.OrderPlaceConfirmed,
		PlaceID: "40", PlaceName: "Shop", PlacePhone: "+79990000040,,7",
		CreatedAt: now.Add(-20 * time.Minute), EventAt: now.Add(-10 * time.Minute), Picker: picker,
	}
}

func phone(number string, expires time.Time) *tracking.Phone {
	return &tracking.Phone{Number: number, ExpiresAt: expires}
}

func renderJSON(t *testing.T, r *renderer, eater string, o orderState, lang language) string {
	t.Helper()
	got, _ := r.render(eater, []orderState{o}, lang, now)
	require.Len(t, got, 1)
	b, err := json.Marshal(got[0])
	require.NoError(t, err)
	return string(b)
}

// The picker states P0–P3 of DESIGN §4.2, their precedence and their
// experiments. The full JSON pins field names and the absence of banners.
func TestRenderPickerStates(t *testing.T) {
	t.Parallel()
	r := testRenderer(t, flagsFile)
	valid := phone("+79991234567,,123", now.Add(time.Minute))
	const order = `"order":{"orderNr":"230101-100001","flowType":"retail","status":"place_confirmed","createdAt":"2026-01-02T11:40:00Z"},"place":{"id":"40","name":"Shop"},"checkAfter":15`
	const base = `{` + order + `,"status":"place_confirmed","title":"Собираем заказ","description":"Магазин собирает ваш заказ",
		"actions":[{"type":"call","title":"Позвонить в магазин","payload":{"contact_type":"place","phone":"+79990000040,7"}}]}`
	const banner = `"banners":{"design":"wide_and_short","banners":[{"id":"retail_forgot_item","kind":"info","text":"Позвони нам, если забыл что-то купить. Мы все сделаем","appLink":""}]}`
	const p1 = `{` + order + `,"status":"picker_contact_us","title":"Забыли товар?","description":"Позвони нам, мы добавим его в корзину",
		"actions":[{"type":"contact_us","title":"Связаться с нами","payload":{}}],` + banner + `}`
	const p2 = `{` + order + `,"status":"picker_call","title":"Забыли самое нужное?","description":"Просто позвоните сборщику и попросите добавить товар в заказ",
		"actions":[{"type":"call","title":"Позвонить сборщику","payload":{"contact_type":"picker","phone":"+79991234567,123"}}],` + banner + `}`
	const p3 = `{` + order + `,"status":"picker_paying","title":"Стоим в очереди на кассу","description":"Скоро оплатим","actions":[]}`

	for name, tc := range map[string]struct {
		eater  string
		picker *pickerState
		want   string
	}{
		"P0 no picker order":            {"e", nil, base},
		"P0 picker cancelled":           {"e", &pickerState{PickerID: "p1", Status: tracking.PickerCancelled, PickingAt: true, Phone: valid}, base},
		"P0 picker complete":            {"e", &pickerState{PickerID: "p1", Status: tracking.PickerComplete, PickingAt: true, PickedUpAt: true}, base},
		"P0 paid_at set":                {"e", &pickerState{PickerID: "p1", Status: tracking.PickerPacking, PickingAt: true, PickedUpAt: true, PaidAt: true, Phone: valid}, base},
		"P3 picked up":                  {"e", &pickerState{PickerID: "p1", Status: tracking.PickerPickedUp, PickingAt: true, PickedUpAt: true}, p3},
		"P3 wins over a valid phone":    {"e", &pickerState{PickerID: "p1", Status: tracking.PickerReceiptProcessing, PickingAt: true, PickedUpAt: true, Phone: valid}, p3},
		"P3 whatever the experiments":   {"no-flags", &pickerState{PickerID: "p1", Status: tracking.PickerPickedUp, PickingAt: true, PickedUpAt: true}, p3},
		"P2 picking with a valid phone": {"e", &pickerState{PickerID: "p1", Status: tracking.PickerPicking, PickingAt: true, Phone: valid}, p2},
		"P1 picking without phone":      {"e", &pickerState{PickerID: "p1", Status: tracking.PickerPicking, PickingAt: true}, p1},
		"P1 expired phone":              {"e", &pickerState{PickerID: "p1", Status: tracking.PickerPicking, PickingAt: true, Phone: phone("+79991234567", now)}, p1},
		"P1 before picking":             {"e", &pickerState{PickerID: "p1", Status: tracking.PickerAssigned}, p1},
		"P1 no picker yet":              {"e", &pickerState{Status: tracking.PickerNew}, p1},
		"P2 off falls to P1":            {"no-call", &pickerState{PickerID: "p1", Status: tracking.PickerPicking, PickingAt: true, Phone: valid}, p1},
		"P1 off falls to base":          {"no-contact", &pickerState{PickerID: "p1", Status: tracking.PickerAssigned}, base},
		"P2 on, P1 off":                 {"no-contact", &pickerState{PickerID: "p1", Status: tracking.PickerPicking, PickingAt: true, Phone: valid}, p2},
		"both off falls to base":        {"no-flags", &pickerState{PickerID: "p1", Status: tracking.PickerPicking, PickingAt: true, Phone: valid}, base},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.JSONEq(t, tc.want, renderJSON(t, r, tc.eater, retail(tc.picker), langRU))
		})
	}
}

func TestRenderExperimentsAbsentMeansOff(t *testing.T) {
	t.Parallel()
	r := testRenderer(t, "experiments: {}\n")
	o := retail(&pickerState{PickerID: "p1", Status: tracking.PickerPicking, PickingAt: true, Phone: phone("+79991234567", now.Add(time.Hour))})
	got, _ := r.render("e", []orderState{o}, langRU, now)
	require.Equal(t, "place_confirmed", got[0].Status)
}

// The experiments see the order's kwargs: place_id, flow_type, language,
// order_nr and eater_id.
func TestRenderEvaluatesExperimentsPerOrder(t *testing.T) {
	t.Parallel()
	r := testRenderer(t, `
experiments:
  eats_orders_tracking_retail_call_picker:
    default: {enabled: false}
  eats_orders_tracking_retail_contact_us:
    default: {enabled: false}
    clauses:
      - name: pilot
        if: {place_id: {eq: 40}, flow_type: {eq: retail}, language: {eq: en}, order_nr: {exists: true}, eater_id: {eq: e}}
        value: {enabled: true}
`)
	o := retail(&pickerState{PickerID: "p1", Status: tracking.PickerAssigned})
	require.Equal(t, statusPickerContactUs, first(r.render("e", []orderState{o}, langEN, now)).Status)
	require.Equal(t, "place_confirmed", first(r.render("e", []orderState{o}, langRU, now)).Status)
	require.Equal(t, "place_confirmed", first(r.render("other", []orderState{o}, langEN, now)).Status)
	o.PlaceID = "41"
	require.Equal(t, "place_confirmed", first(r.render("e", []orderState{o}, langEN, now)).Status)
}

// A shop order is picked by the store's staff: picker rows change nothing.
func TestRenderShopIgnoresPickerRows(t *testing.T) {
	t.Parallel()
	r := testRenderer(t, flagsFile)
	o := retail(&pickerState{PickerID: "p1", Status: tracking.PickerPicking, PickingAt: true, Phone: phone("+79991234567", now.Add(time.Hour))})
	o.FlowType = tracking.FlowShop
	got := first(r.render("e", []orderState{o}, langRU, now))
	require.Equal(t, "place_confirmed", got.Status)
	require.Equal(t, "Собираем заказ", got.Title)
	require.Nil(t, got.Banners)
}

// The base view of DESIGN §4.2 for every status, restaurant and store
// texts, and the call buttons while they apply.
func TestRenderBaseView(t *testing.T) {
	t.Parallel()
	r := testRenderer(t, flagsFile)
	type want struct{ title, desc, action, contact, phone string }
	for _, tc := range []struct {
		flow   tracking.FlowType
		status tracking.OrderStatus
		lang   language
		want   want
	}{
		{tracking.FlowNative, tracking.OrderCreated, langRU, want{"Заказ оформлен", "Передаём заказ в ресторан", "Позвонить в ресторан", "place", "+79990000040,7"}},
		{tracking.FlowRetail, tracking.OrderCreated, langRU, want{"Заказ оформлен", "Передаём заказ в магазин", "Позвонить в магазин", "place", "+79990000040,7"}},
		{tracking.FlowNative, tracking.OrderCallCenterConfirmed, langRU, want{"Готовим заказ", "Ресторан готовит ваш заказ", "Позвонить в ресторан", "place", "+79990000040,7"}},
		{tracking.FlowShop, tracking.OrderCallCenterConfirmed, langRU, want{"Собираем заказ", "Магазин собирает ваш заказ", "Позвонить в магазин", "place", "+79990000040,7"}},
		{tracking.FlowMarketplace, tracking.OrderPlaceConfirmed, langRU, want{"Готовим заказ", "Ресторан готовит ваш заказ", "Позвонить в ресторан", "place", "+79990000040,7"}},
		{tracking.FlowNative, tracking.OrderTaken, langRU, want{"Курьер в пути", "Заказ уже едет к вам", "Позвонить курьеру", "courier", "+79990000001"}},
		{tracking.FlowRetail, tracking.OrderArrivedToCustomer, langRU, want{"Курьер на месте", "Встречайте курьера", "Позвонить курьеру", "courier", "+79990000001"}},
		{tracking.FlowNative, tracking.OrderDelivered, langRU, want{"Заказ доставлен", "Приятного аппетита!", "", "", ""}},
		{tracking.FlowPickup, tracking.OrderCancelled, langRU, want{"Заказ отменён", "Деньги вернутся на карту", "", "", ""}},
		{tracking.FlowNative, tracking.OrderCreated, langEN, want{"Order placed", "Sending your order to the restaurant", "Call the restaurant", "place", "+79990000040,7"}},
		{tracking.FlowShop, tracking.OrderPlaceConfirmed, langEN, want{"Picking your order", "The store is picking your order", "Call the store", "place", "+79990000040,7"}},
		{tracking.FlowNative, tracking.OrderTaken, langEN, want{"Courier on the way", "Your order is on its way", "Call the courier", "courier", "+79990000001"}},
	} {
		o := retail(nil)
		o.FlowType, o.Status, o.CourierPhone = tc.flow, tc.status, "+79990000001"
		got := first(r.render("e", []orderState{o}, tc.lang, now))
		name := string(tc.flow) + "/" + string(tc.status) + "/" + string(tc.lang)
		require.Equal(t, string(tc.status), got.Status, name)
		require.Equal(t, tc.want.title, got.Title, name)
		require.Equal(t, tc.want.desc, got.Description, name)
		require.Nil(t, got.Banners, name)
		if tc.want.action == "" {
			require.Empty(t, got.Actions, name)
			continue
		}
		require.Equal(t, []trackedOrderAction{{Type: actionCall, Title: tc.want.action,
			Payload: trackedOrderActionPayload{ContactType: trackedOrderButtonContactType(tc.want.contact), Phone: tc.want.phone}}}, got.Actions, name)
	}

	// No phone, no button.
	o := retail(nil)
	o.FlowType, o.PlacePhone = tracking.FlowNative, ""
	require.Empty(t, first(r.render("e", []orderState{o}, langRU, now)).Actions)
	o.Status = tracking.OrderTaken
	require.Empty(t, first(r.render("e", []orderState{o}, langRU, now)).Actions, "taken without a courier phone")
}

func TestRenderPickerStatesInEnglish(t *testing.T) {
	t.Parallel()
	r := testRenderer(t, flagsFile)
	o := retail(&pickerState{PickerID: "p1", Status: tracking.PickerPicking, PickingAt: true, Phone: phone("+79991234567,,5", now.Add(time.Minute))})
	got := first(r.render("e", []orderState{o}, langEN, now))
	require.Equal(t, "Forgot something important?", got.Title)
	require.Equal(t, "Call the picker", got.Actions[0].Title)
	require.Equal(t, "+79991234567,5", got.Actions[0].Payload.Phone)
	require.Equal(t, "Call us if you forgot to buy something. We'll take care of it", got.Banners.Banners[0].Text)
}

// Finished orders stay listed for 15 minutes after their status's event;
// eta and times are UTC, eta absent when unknown.
func TestRenderListRules(t *testing.T) {
	t.Parallel()
	r := testRenderer(t, flagsFile)
	active := retail(nil)
	active.OrderNr = "a"
	active.ETA = time.Date(2026, 1, 2, 15, 30, 0, 0, time.FixedZone("MSK", 3*3600))
	delivered := retail(nil)
	delivered.OrderNr, delivered.Status, delivered.EventAt = "d", tracking.OrderDelivered, now.Add(-14*time.Minute-59*time.Second)
	old := retail(nil)
	old.OrderNr, old.Status, old.EventAt = "old", tracking.OrderCancelled, now.Add(-15*time.Minute)
	got, _ := r.render("e", []orderState{active, delivered, old}, langRU, now)
	require.Len(t, got, 2)
	require.Equal(t, "a", got[0].Order.OrderNr)
	require.Equal(t, "d", got[1].Order.OrderNr)
	b, err := json.Marshal(got[0].Order)
	require.NoError(t, err)
	require.JSONEq(t, `{"orderNr":"a","flowType":"retail","status":"place_confirmed","createdAt":"2026-01-02T11:40:00Z","eta":"2026-01-02T12:30:00Z"}`, string(b))
	b, err = json.Marshal(got[1].Order)
	require.NoError(t, err)
	require.NotContains(t, string(b), `"eta"`)
}

// DESIGN §4.2's P0 row: once the order's own status is taken,
// arrived_to_customer, delivered or cancelled, the base view shows,
// whatever the picker order says (a lost paid event must not hide the
// courier, nor offer the picker's number on a cancelled order).
func TestRenderOrderStatusPastPickingIsP0(t *testing.T) {
	t.Parallel()
	r := testRenderer(t, flagsFile)
	valid := phone("+79991234567,,123", now.Add(time.Minute))
	pickers := map[string]*pickerState{
		"picked up":                {PickerID: "p1", Status: tracking.PickerPickedUp, PickingAt: true, PickedUpAt: true, Phone: valid},
		"receipt processing":       {PickerID: "p1", Status: tracking.PickerReceiptProcessing, PickingAt: true, PickedUpAt: true},
		"picking with valid phone": {PickerID: "p1", Status: tracking.PickerPicking, PickingAt: true, Phone: valid},
		"assigned":                 {PickerID: "p1", Status: tracking.PickerAssigned},
		"new":                      {Status: tracking.PickerNew},
	}
	type want struct {
		title   string
		contact trackedOrderButtonContactType // "" = no button
	}
	for status, w := range map[tracking.OrderStatus]want{
		tracking.OrderTaken:             {"Курьер в пути", contactCourier},
		tracking.OrderArrivedToCustomer: {"Курьер на месте", contactCourier},
		tracking.OrderDelivered:         {"Заказ доставлен", ""},
		tracking.OrderCancelled:         {"Заказ отменён", ""},
	} {
		for name, p := range pickers {
			o := retail(p)
			o.Status, o.CourierPhone = status, "+79990000001"
			got, _ := r.render("e", []orderState{o}, langRU, now)
			require.Len(t, got, 1)
			require.Equal(t, string(status), got[0].Status, "%s/%s", status, name)
			require.Equal(t, w.title, got[0].Title, "%s/%s", status, name)
			require.Nil(t, got[0].Banners, "%s/%s", status, name)
			require.False(t, o.wantsPhone(), "%s/%s: no phone lookup for a P0 order", status, name)
			if w.contact == "" {
				require.Empty(t, got[0].Actions, "%s/%s", status, name)
				continue
			}
			require.Equal(t, []trackedOrderAction{{Type: actionCall, Title: "Позвонить курьеру",
				Payload: trackedOrderActionPayload{ContactType: w.contact, Phone: "+79990000001"}}}, got[0].Actions, "%s/%s", status, name)
		}
	}
}

// first is the first tracked order of an answer.
func first(got []trackedOrder, _ bool) trackedOrder { return got[0] }

// DESIGN §4.1: at most maxOrders orders per answer, active before
// finished, newest first (by createdAt), then shown in the usual order
// (createdAt, then orderNr); orders no longer listed take no room.
func TestRenderCapsOrdersPerEater(t *testing.T) {
	t.Parallel()
	r := testRenderer(t, flagsFile)
	r.maxOrders = 3
	at := func(nr string, status tracking.OrderStatus, created, event time.Duration) orderState {
		o := retail(nil)
		o.OrderNr, o.Status, o.CreatedAt, o.EventAt = nr, status, now.Add(created), now.Add(event)
		return o
	}
	nrs := func(got []trackedOrder) []string {
		var out []string
		for _, o := range got {
			out = append(out, o.Order.OrderNr)
		}
		return out
	}
	for name, tc := range map[string]struct {
		states []orderState // in the store's order: createdAt, then orderNr
		want   []string
		capped bool
	}{
		"fits": {[]orderState{
			at("a", tracking.OrderCreated, -3*time.Hour, -time.Minute),
			at("b", tracking.OrderDelivered, -2*time.Hour, -time.Minute),
			at("c", tracking.OrderTaken, -time.Hour, -time.Minute),
		}, []string{"a", "b", "c"}, false},
		"no longer listed takes no room": {[]orderState{
			at("old", tracking.OrderCancelled, -4*time.Hour, -time.Hour),
			at("a", tracking.OrderCreated, -3*time.Hour, -time.Minute),
			at("b", tracking.OrderDelivered, -2*time.Hour, -time.Minute),
			at("c", tracking.OrderTaken, -time.Hour, -time.Minute),
		}, []string{"a", "b", "c"}, false},
		"newest active": {[]orderState{
			at("a1", tracking.OrderCreated, -5*time.Hour, -time.Minute),
			at("a2", tracking.OrderTaken, -4*time.Hour, -time.Minute),
			at("f1", tracking.OrderDelivered, -3*time.Hour, -time.Minute),
			at("a3", tracking.OrderPlaceConfirmed, -2*time.Hour, -time.Minute),
			at("a4", tracking.OrderCreated, -time.Hour, -time.Minute),
		}, []string{"a2", "a3", "a4"}, true},
		"active before finished, then the newest finished": {[]orderState{
			at("a1", tracking.OrderCreated, -5*time.Hour, -time.Minute),
			at("f1", tracking.OrderDelivered, -4*time.Hour, -time.Minute),
			at("f2", tracking.OrderCancelled, -3*time.Hour, -time.Minute),
			at("f3", tracking.OrderDelivered, -2*time.Hour, -time.Minute),
			at("a2", tracking.OrderTaken, -time.Hour, -time.Minute),
		}, []string{"a1", "f3", "a2"}, true},
		"equal createdAt: the last in the usual order first": {[]orderState{
			at("x1", tracking.OrderCreated, -time.Hour, -time.Minute),
			at("x2", tracking.OrderCreated, -time.Hour, -time.Minute),
			at("x3", tracking.OrderCreated, -time.Hour, -time.Minute),
			at("x4", tracking.OrderCreated, -time.Hour, -time.Minute),
		}, []string{"x2", "x3", "x4"}, true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, capped := r.render("e", tc.states, langRU, now)
			require.Equal(t, tc.want, nrs(got))
			require.Equal(t, tc.capped, capped)
		})
	}
}
