package trackingpresenter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/orderingest"
	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/modules/trackingpresenter"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// order is an orders row as order-ingest writes it.
type order struct {
	nr, eater, flow, status  string
	placePhone, courierPhone string
	eta                      time.Time
	first, at                time.Time // first_event_at, event_at
}

func insertOrder(t *testing.T, db *sqlx.DB, o order) {
	t.Helper()
	payload := map[string]any{
		"flow_type": o.flow, "status": o.status,
		"place": map[string]any{"id": "40", "name": "Shop 40"},
	}
	if o.placePhone != "" {
		payload["place"].(map[string]any)["phone"] = o.placePhone
	}
	if o.courierPhone != "" {
		payload["courier"] = map[string]any{"name": "Ivan", "phone": o.courierPhone}
	}
	if !o.eta.IsZero() {
		payload["eta"] = o.eta.UTC().Format(time.RFC3339Nano)
	}
	if o.first.IsZero() {
		o.first = time.Now().Add(-30 * time.Minute)
	}
	if o.at.IsZero() {
		o.at = o.first
	}
	b, err := json.Marshal(payload)
	require.NoError(t, err)
	_, err = db.Exec(`
INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (order_nr) DO UPDATE SET eater_id = EXCLUDED.eater_id, payload = EXCLUDED.payload,
    event_at = EXCLUDED.event_at, first_event_at = EXCLUDED.first_event_at`,
		o.nr, o.eater, string(b), o.at, o.first)
	require.NoError(t, err)
}

// insertPicker writes a picker order as picker-ingest does: history keys
// (e.g. "picking_at") are set to a past time.
func insertPicker(t *testing.T, db *sqlx.DB, orderNr, pickerID, status string, history ...string) {
	t.Helper()
	h := map[string]string{}
	for _, k := range history {
		h[k] = time.Now().Add(-5 * time.Minute).UTC().Format(time.RFC3339Nano)
	}
	payload := map[string]any{"status": status, "status_history": h}
	if pickerID != "" {
		payload["picker_id"] = pickerID
	}
	b, err := json.Marshal(payload)
	require.NoError(t, err)
	_, err = db.Exec(`
INSERT INTO picker_orders (order_nr, payload, status_event_at) VALUES ($1, $2, now())
ON CONFLICT (order_nr) DO UPDATE SET payload = EXCLUDED.payload, status_event_at = EXCLUDED.status_event_at`,
		orderNr, string(b))
	require.NoError(t, err)
}

func insertPhone(t *testing.T, db *sqlx.DB, orderNr, pickerID, phone string, expires time.Time) {
	t.Helper()
	_, err := db.Exec(`
INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at) VALUES ($1, $2, $3, $4, now())
ON CONFLICT (order_nr, picker_id) DO UPDATE SET phone = EXCLUDED.phone, expires_at = EXCLUDED.expires_at`,
		orderNr, pickerID, phone, expires)
	require.NoError(t, err)
}

func user(eater string) map[string]string {
	return map[string]string{"X-Eats-User": "user_id=" + eater}
}

// settle waits until the app's cache has applied every change committed
// before the call: answers may lag commits by up to a second (the issue's
// bound), so a test that reads right after writing waits for the change
// feed's heartbeat horizon to pass its writes, read from
// eot_tracking_change_feed_lag_seconds (horizon = scrape time - lag).
func settle(t *testing.T, a *apptest.App) {
	t.Helper()
	written := time.Now()
	pgtest.Eventually(t, 10*time.Second, func() bool {
		asked := time.Now()
		for _, l := range strings.Split(metricsText(t, a), "\n") {
			if v, ok := strings.CutPrefix(l, "eot_tracking_change_feed_lag_seconds "); ok {
				var lag float64
				_, _ = fmt.Sscan(v, &lag)
				return lag >= 0 && asked.Add(-time.Duration(lag*float64(time.Second))).After(written)
			}
		}
		return true // the cache is off
	}, "the change feed passes the writes")
}

// track calls the endpoint and decodes a 200 answer.
func track(t *testing.T, a *apptest.App, headers map[string]string) trackingpresenter.TrackingResponse {
	t.Helper()
	code, hdr, body := a.Do(t, http.MethodGet, trackingpresenter.Path, nil, headers)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, "no-store", hdr.Get("Cache-Control"))
	var r trackingpresenter.TrackingResponse
	require.NoError(t, json.Unmarshal(body, &r), string(body))
	require.Equal(t, 15, r.Meta.CheckAfter)
	require.Equal(t, len(r.Payload.TrackedOrders), r.Meta.Count)
	return r
}

// experimentsFile writes an experiments file: both flags on, except
// call_picker off for eater "no-call", contact_us off for "no-contact" and
// both off for "no-flags".
func experimentsFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "experiments.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
experiments:
  eats_orders_tracking_picker_statuses_timeout:
    default: [{status: picking, timeout: 300}]
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
`), 0o600))
	return path
}

// Every row of DESIGN §4.2 against real PostgreSQL and Redis, each
// experiment off, and both languages.
func TestTrackingPickerStates(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, map[string]string{"EXPERIMENTS_FILE": experimentsFile(t)})
	soon := time.Now().Add(time.Hour)

	type want struct {
		status, title, action, phone string
		banner                       bool
	}
	base := want{status: "place_confirmed", title: "Собираем заказ", action: "Позвонить в магазин", phone: "+79990000040,7"}
	p1 := want{status: "picker_contact_us", title: "Забыли товар?", action: "Связаться с нами", banner: true}
	p2 := want{status: "picker_call", title: "Забыли самое нужное?", action: "Позвонить сборщику", phone: "+79991234567,123", banner: true}
	p3 := want{status: "picker_paying", title: "Стоим в очереди на кассу"}
	var checks []func()
	for _, tc := range []struct {
		name  string
		eater string // "" = the case's name
		flow  string
		setup func(nr string)
		lang  string
		want  want
	}{
		{name: "no-picker-order", want: base},
		{name: "picker-cancelled", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "cancelled", "new_at", "assigned_at", "picking_at")
			insertPhone(t, a.DB, nr, "p1", "+79991234567,,123", soon)
		}, want: base},
		{name: "picker-complete", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "complete", "picking_at", "picked_up_at", "paid_at")
		}, want: base},
		{name: "paid", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "packing", "picking_at", "picked_up_at", "paid_at")
			insertPhone(t, a.DB, nr, "p1", "+79991234567,,123", soon)
		}, want: base},
		{name: "picked-up", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "picked_up", "picking_at", "picked_up_at")
			insertPhone(t, a.DB, nr, "p1", "+79991234567,,123", soon)
		}, want: p3},
		{name: "picking-valid-phone", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "picking", "assigned_at", "picking_at")
			insertPhone(t, a.DB, nr, "p1", "+79991234567,,123", soon)
		}, want: p2},
		{name: "picking-expired-phone", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "picking", "picking_at")
			insertPhone(t, a.DB, nr, "p1", "+79991234567,,123", time.Now().Add(-time.Second))
		}, want: p1},
		{name: "previous-pickers-phone", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p2", "picking", "picking_at")
			insertPhone(t, a.DB, nr, "p1", "+79991234567,,123", soon)
		}, want: p1},
		{name: "picking-no-phone", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "picking", "picking_at")
		}, want: p1},
		{name: "assigned", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "assigned", "new_at", "assigned_at")
		}, want: p1},
		{name: "call-picker-off", eater: "no-call", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "picking", "picking_at")
			insertPhone(t, a.DB, nr, "p1", "+79991234567,,123", soon)
		}, want: p1},
		{name: "contact-us-off", eater: "no-contact", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "assigned", "assigned_at")
		}, want: base},
		{name: "both-off", eater: "no-flags", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "picking", "picking_at")
			insertPhone(t, a.DB, nr, "p1", "+79991234567,,123", soon)
		}, want: base},
		{name: "shop-with-picker-rows", flow: "shop", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "picking", "picking_at")
			insertPhone(t, a.DB, nr, "p1", "+79991234567,,123", soon)
		}, want: base},
		{name: "english-p2", lang: "en-GB", setup: func(nr string) {
			insertPicker(t, a.DB, nr, "p1", "picking", "picking_at")
			insertPhone(t, a.DB, nr, "p1", "+79991234567,,123", soon)
		}, want: want{status: "picker_call", title: "Forgot something important?", action: "Call the picker", phone: "+79991234567,123", banner: true}},
		{name: "english-base", lang: "en", want: want{status: "place_confirmed", title: "Picking your order", action: "Call the store", phone: "+79990000040,7"}},
	} {
		eater := tc.eater
		if eater == "" {
			eater = tc.name
		}
		flow := tc.flow
		if flow == "" {
			flow = "retail"
		}
		nr := "nr-" + tc.name
		insertOrder(t, a.DB, order{nr: nr, eater: eater, flow: flow, status: "place_confirmed", placePhone: "+79990000040,,7"})
		if tc.setup != nil {
			tc.setup(nr)
		}
		checks = append(checks, func() {
			t.Run(tc.name, func(t *testing.T) {
				headers := user(eater)
				if tc.lang != "" {
					headers["X-Request-Language"] = tc.lang
				}
				r := track(t, a, headers)
				require.Len(t, r.Payload.TrackedOrders, 1)
				got := r.Payload.TrackedOrders[0]
				require.Equal(t, nr, got.Order.OrderNr)
				require.Equal(t, "place_confirmed", got.Order.Status)
				require.Equal(t, tc.want.status, got.Status)
				require.Equal(t, tc.want.title, got.Title)
				require.Equal(t, tc.want.banner, got.Banners != nil)
				if tc.want.action == "" {
					require.Empty(t, got.Actions)
					return
				}
				require.Len(t, got.Actions, 1)
				require.Equal(t, tc.want.action, got.Actions[0].Title)
				require.Equal(t, tc.want.phone, got.Actions[0].Payload.Phone)
			})
		})
	}
	settle(t, a)
	for _, check := range checks {
		check()
	}
}

// DESIGN §4.2's P0 row end to end: an order whose own status is past
// picking shows the base view whatever the picker order says (here a lost
// paid event, and a picker order still picking on a cancelled order).
func TestTrackingOrderStatusPastPickingShowsBaseView(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, map[string]string{"EXPERIMENTS_FILE": experimentsFile(t)})
	soon := time.Now().Add(time.Hour)
	insertOrder(t, a.DB, order{nr: "taken-1", eater: "e-taken", flow: "retail", status: "taken", courierPhone: "+79990000009"})
	insertPicker(t, a.DB, "taken-1", "p1", "picked_up", "picking_at", "picked_up_at")
	insertOrder(t, a.DB, order{nr: "arrived-1", eater: "e-arrived", flow: "retail", status: "arrived_to_customer", courierPhone: "+79990000009"})
	insertPicker(t, a.DB, "arrived-1", "p1", "picking", "picking_at")
	insertPhone(t, a.DB, "arrived-1", "p1", "+79991234567", soon)
	insertOrder(t, a.DB, order{nr: "cancelled-1", eater: "e-cancelled", flow: "retail", status: "cancelled", at: time.Now()})
	insertPicker(t, a.DB, "cancelled-1", "p1", "picking", "picking_at")
	insertPhone(t, a.DB, "cancelled-1", "p1", "+79991234567", soon)
	settle(t, a)

	for range 2 { // the second answer comes from the cache
		got := track(t, a, user("e-taken")).Payload.TrackedOrders[0]
		require.Equal(t, "taken", got.Status)
		require.Len(t, got.Actions, 1)
		require.Equal(t, trackingpresenter.ContactCourier, got.Actions[0].Payload.ContactType)
		require.Equal(t, "+79990000009", got.Actions[0].Payload.Phone)

		got = track(t, a, user("e-arrived")).Payload.TrackedOrders[0]
		require.Equal(t, "arrived_to_customer", got.Status)
		require.Len(t, got.Actions, 1)
		require.Equal(t, trackingpresenter.ContactCourier, got.Actions[0].Payload.ContactType)

		got = track(t, a, user("e-cancelled")).Payload.TrackedOrders[0]
		require.Equal(t, "cancelled", got.Status)
		require.Equal(t, "Заказ отменён", got.Title)
		require.Empty(t, got.Actions, "no call to the picker on a cancelled order")
		require.Nil(t, got.Banners)
	}
}

// The exact answer for a P2 order: field names, the phone's extension, the
// banner, UTC times, and no eta when unknown.
func TestTrackingAnswerShape(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	first := time.Date(2026, 1, 2, 13, 0, 0, 123456000, time.FixedZone("MSK", 3*3600))
	insertOrder(t, a.DB, order{nr: "230101-100001", eater: "e1", flow: "retail", status: "place_confirmed",
		placePhone: "+79990000040", first: first, at: time.Now(), eta: first.Add(time.Hour)})
	insertPicker(t, a.DB, "230101-100001", "p1", "picking", "picking_at")
	insertPhone(t, a.DB, "230101-100001", "p1", "+79991234567,,123", time.Now().Add(time.Hour))
	insertOrder(t, a.DB, order{nr: "230101-100002", eater: "e1", flow: "native", status: "taken",
		courierPhone: "+79990000001", first: first.Add(time.Minute)})
	settle(t, a)

	_, _, body := a.Do(t, http.MethodGet, trackingpresenter.Path, nil, user("e1"))
	require.JSONEq(t, `{
  "meta": {"checkAfter": 15, "count": 2},
  "payload": {"trackedOrders": [{
    "order": {"orderNr": "230101-100001", "flowType": "retail", "status": "place_confirmed",
              "createdAt": "2026-01-02T10:00:00.123456Z", "eta": "2026-01-02T11:00:00.123456Z"},
    "status": "picker_call",
    "title": "Забыли самое нужное?",
    "description": "Просто позвоните сборщику и попросите добавить товар в заказ",
    "actions": [{"type": "call", "title": "Позвонить сборщику",
                 "payload": {"contact_type": "picker", "phone": "+79991234567,123"}}],
    "banners": {"design": "wide_and_short",
                "banners": [{"id": "retail_forgot_item", "kind": "info",
                             "text": "Позвони нам, если забыл что-то купить. Мы все сделаем",
                             "appLink": ""}]},
    "place": {"id": "40", "name": "Shop 40"},
    "checkAfter": 15
  }, {
    "order": {"orderNr": "230101-100002", "flowType": "native", "status": "taken", "createdAt": "2026-01-02T10:01:00.123456Z"},
    "status": "taken",
    "title": "Курьер в пути",
    "description": "Заказ уже едет к вам",
    "actions": [{"type": "call", "title": "Позвонить курьеру", "payload": {"contact_type": "courier", "phone": "+79990000001"}}],
    "place": {"id": "40", "name": "Shop 40"},
    "checkAfter": 15
  }]}
}`, string(body))
}

// Orders listed: active ones, and finished ones for 15 minutes after their
// status's event; by createdAt, then orderNr.
func TestTrackingListsOrdersInOrder(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	t0 := time.Now().Add(-2 * time.Hour)
	for _, o := range []order{
		{nr: "c", eater: "e1", flow: "native", status: "created", first: t0},
		{nr: "b", eater: "e1", flow: "native", status: "taken", first: t0},
		{nr: "a", eater: "e1", flow: "pickup", status: "created", first: t0.Add(time.Minute)},
		{nr: "d-delivered-recently", eater: "e1", flow: "native", status: "delivered", first: t0.Add(-time.Hour), at: time.Now().Add(-14 * time.Minute)},
		{nr: "e-cancelled-long-ago", eater: "e1", flow: "native", status: "cancelled", first: t0.Add(-time.Hour), at: time.Now().Add(-16 * time.Minute)},
		{nr: "f-other-eater", eater: "e2", flow: "native", status: "created", first: t0},
	} {
		insertOrder(t, a.DB, o)
	}
	settle(t, a)
	r := track(t, a, user("e1"))
	var nrs []string
	for _, o := range r.Payload.TrackedOrders {
		nrs = append(nrs, o.Order.OrderNr)
	}
	require.Equal(t, []string{"d-delivered-recently", "b", "c", "a"}, nrs)
	require.Equal(t, "Заказ доставлен", r.Payload.TrackedOrders[0].Title)
}

// The three identity headers give the same answer; no identity is an empty
// list; a malformed header is a 400 problem naming it.
func TestTrackingIdentityHeaders(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	insertOrder(t, a.DB, order{nr: "o1", eater: "42", flow: "retail", status: "created", placePhone: "+79990000040"})
	insertPicker(t, a.DB, "o1", "p1", "picking", "picking_at")
	insertPhone(t, a.DB, "o1", "p1", "+79991234567", time.Now().Add(time.Hour))
	settle(t, a)

	var bodies []string
	for _, h := range []map[string]string{
		{"X-Eats-User": "user_id=42"},
		{"X-Eats-User": "partner_user_id=42"},
		{"X-YaTaxi-User": "eats_user_id=42"},
		{"X-Eats-User": "personal_phone_id=abc, user_id=42, personal_email_id=def"},
		{"X-Eats-User": "user_id=42", "X-YaTaxi-User": "eats_user_id=7"},
		// X-Eats-User names no eater: X-YaTaxi-User is consulted next.
		{"X-Eats-User": "personal_phone_id=abc", "X-YaTaxi-User": "eats_user_id=42"},
		// X-YaTaxi-User is never consulted, so never validated.
		{"X-Eats-User": "user_id=42", "X-YaTaxi-User": "garbage"},
	} {
		code, _, body := a.Do(t, http.MethodGet, trackingpresenter.Path, nil, h)
		require.Equal(t, http.StatusOK, code, "%v: %s", h, body)
		bodies = append(bodies, string(body))
	}
	require.Contains(t, bodies[0], `"picker_call"`)
	for _, b := range bodies[1:] {
		require.Equal(t, bodies[0], b)
	}

	const empty = `{"meta":{"checkAfter":15,"count":0},"payload":{"trackedOrders":[]}}`
	for _, h := range []map[string]string{nil, {"X-Eats-User": "personal_phone_id=abc"}, {"X-YaTaxi-User": "yandex_uid=1"}, {"X-Eats-User": ""}} {
		code, hdr, body := a.Do(t, http.MethodGet, trackingpresenter.Path, nil, h)
		require.Equal(t, http.StatusOK, code, "%v", h)
		require.JSONEq(t, empty, string(body), "%v", h)
		require.Equal(t, "no-store", hdr.Get("Cache-Control"))
	}

	for _, tc := range []struct {
		header, value string
		other         map[string]string // more headers
	}{
		{"X-Eats-User", "42", nil},
		{"X-Eats-User", "user_id=", nil},
		{"X-Eats-User", "user_id=42; partner_user_id=1", nil},
		{"X-Eats-User", "user_id=1,user_id=2", nil},
		{"X-YaTaxi-User", "eats_user_id", nil},
		// Consulted first, so validated even though X-YaTaxi-User is good.
		{"X-Eats-User", "user_id=", map[string]string{"X-YaTaxi-User": "eats_user_id=42"}},
		// Consulted because X-Eats-User names no eater.
		{"X-YaTaxi-User", "eats_user_id=", map[string]string{"X-Eats-User": "personal_phone_id=abc"}},
	} {
		h := map[string]string{tc.header: tc.value}
		for k, v := range tc.other {
			h[k] = v
		}
		code, hdr, body := a.Do(t, http.MethodGet, trackingpresenter.Path, nil, h)
		require.Equal(t, http.StatusBadRequest, code, "%v", h)
		require.Equal(t, "application/problem+json", hdr.Get("Content-Type"))
		var problem struct {
			Status int `json:"status"`
			Errors []struct {
				Location string `json:"location"`
			} `json:"errors"`
		}
		require.NoError(t, json.Unmarshal(body, &problem))
		require.Equal(t, 400, problem.Status)
		require.Equal(t, "header."+tc.header, problem.Errors[0].Location)
	}
}

// Eater B never sees eater A's orders or phones, whatever B's headers hold
// and whatever was asked (and cached) before.
func TestTrackingEaterIsolation(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	for _, e := range []struct{ eater, nr, phone string }{{"A", "order-of-a", "+79990000111"}, {"B", "order-of-b", "+79990000222"}} {
		insertOrder(t, a.DB, order{nr: e.nr, eater: e.eater, flow: "retail", status: "place_confirmed"})
		insertPicker(t, a.DB, e.nr, "same-picker", "picking", "picking_at")
		insertPhone(t, a.DB, e.nr, "same-picker", e.phone, time.Now().Add(time.Hour))
	}
	settle(t, a)
	require.Contains(t, string(mustBody(t, a, user("A"))), "+79990000111")
	for _, h := range []map[string]string{
		user("B"),
		{"X-YaTaxi-User": "eats_user_id=B"},
		{"X-Eats-User": "partner_user_id=B"},
		{"X-Eats-User": "user_id=B, partner_user_id=A"},
		{"X-Eats-User": "partner_user_id=A, user_id=B"},
		{"X-Eats-User": "user_id=B", "X-YaTaxi-User": "eats_user_id=A"},
		{"X-Eats-User": "user_id=B, eats_user_id=A"},
	} {
		for range 2 { // the second answer comes from the cache
			body := string(mustBody(t, a, h))
			require.Contains(t, body, "order-of-b", "%v", h)
			require.Contains(t, body, "+79990000222", "%v", h)
			require.NotContains(t, body, "order-of-a", "%v", h)
			require.NotContains(t, body, "+79990000111", "%v", h)
		}
	}
}

func mustBody(t *testing.T, a *apptest.App, h map[string]string) []byte {
	t.Helper()
	code, _, body := a.Do(t, http.MethodGet, trackingpresenter.Path, nil, h)
	require.Equal(t, http.StatusOK, code, string(body))
	return body
}

// tcpProxy forwards to Redis until closed; closing it is "Redis stopped"
// for the app behind it, without touching the Redis other tests share.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.Close)
	return p
}

func (p *tcpProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// Redis stops mid-test: the phone lookups fall back to PostgreSQL and the
// answers stay right, including phones that changed after the stop; with
// the tracking cache off (every poll looks the phone up) and on.
func TestTrackingRedisStoppedMidTest(t *testing.T) {
	t.Parallel()
	for _, cacheEntries := range []string{"0", "1000"} {
		t.Run("TRACKING_CACHE_ENTRIES="+cacheEntries, func(t *testing.T) {
			t.Parallel()
			proxy := startProxy(t, "127.0.0.1:6379")
			a := apptest.Start(t, map[string]string{
				"REDIS_URL":              "redis://" + proxy.ln.Addr().String() + "/0",
				"TRACKING_CACHE_ENTRIES": cacheEntries,
			})
			insertOrder(t, a.DB, order{nr: "o1", eater: "e1", flow: "retail", status: "place_confirmed"})
			insertPicker(t, a.DB, "o1", "p1", "picking", "picking_at")
			insertPhone(t, a.DB, "o1", "p1", "+79990000001", time.Now().Add(time.Hour))
			settle(t, a)
			pgtest.Eventually(t, 10*time.Second, func() bool {
				r := track(t, a, user("e1"))
				require.Equal(t, "+79990000001", r.Payload.TrackedOrders[0].Actions[0].Payload.Phone)
				return strings.Contains(metricsText(t, a), `eot_picker_phone_cache_total{result="hit"}`) &&
					!strings.Contains(metricsText(t, a), `eot_picker_phone_cache_total{result="hit"} 0`)
			}, "the phone is served through Redis")

			proxy.Close()
			// A new picker with a new phone.
			insertPicker(t, a.DB, "o1", "p2", "picking", "picking_at")
			insertPhone(t, a.DB, "o1", "p2", "+79990000002", time.Now().Add(time.Hour))
			settle(t, a)
			for range 3 {
				start := time.Now()
				r := track(t, a, user("e1"))
				require.Equal(t, "picker_call", r.Payload.TrackedOrders[0].Status)
				require.Equal(t, "+79990000002", r.Payload.TrackedOrders[0].Actions[0].Payload.Phone)
				require.Less(t, time.Since(start), 2*time.Second, "a dead Redis costs milliseconds, not seconds")
			}
			insertPicker(t, a.DB, "o1", "p2", "picked_up", "picking_at", "picked_up_at")
			settle(t, a)
			require.Equal(t, "picker_paying", track(t, a, user("e1")).Payload.TrackedOrders[0].Status)
			require.NotContains(t, metricsText(t, a), `eot_picker_phone_cache_total{result="error"} 0`, "the lookups did try Redis")
		})
	}
}

func metricsText(t *testing.T, a *apptest.App) string {
	t.Helper()
	code, body := a.Get(t, "/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	return string(body)
}

// The cache may lag a committed change by at most one second: every answer
// to a request sent a second or more after the commit shows the change.
// Covers each table the answer depends on.
func TestTrackingCacheLagsAtMostOneSecond(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	insertOrder(t, a.DB, order{nr: "o1", eater: "e1", flow: "retail", status: "place_confirmed"})
	insertPicker(t, a.DB, "o1", "p1", "assigned", "assigned_at")
	insertPhone(t, a.DB, "o1", "p1", "+79990000001", time.Now().Add(time.Hour))

	for _, step := range []struct {
		name   string
		change func()
		shows  func(trackingpresenter.TrackedOrder) bool
	}{
		{"picker_orders", func() { insertPicker(t, a.DB, "o1", "p1", "picking", "assigned_at", "picking_at") },
			func(o trackingpresenter.TrackedOrder) bool { return o.Status == "picker_call" }},
		// Through picker-ingest, which also writes the phone cache: a phone
		// written by plain SQL would leave Redis' entry to its TTL (60 s,
		// DESIGN §6). The commit happened before the job is seen completed.
		{"picker_phones", func() {
			res, err := a.Client.Insert(context.Background(), pickeringest.PickerOrderArgs{
				EventType: tracking.EventPickerPhoneForwardingReady, OrderNr: "o1", OrderStatus: tracking.PickerPicking,
				PlaceID: "40", PickerID: "p1", CreatedAt: time.Now(),
				CustomerPickerPhoneForwarding: &pickeringest.Forwarding{Phone: "+79990000002", ExpiresAt: time.Now().Add(time.Hour)},
			}, nil)
			require.NoError(t, err)
			pgtest.Eventually(t, 10*time.Second, func() bool {
				j, err := a.Client.JobGet(context.Background(), res.Job.ID)
				require.NoError(t, err)
				return j.State == rivertype.JobStateCompleted
			}, "phone event applied")
		},
			func(o trackingpresenter.TrackedOrder) bool {
				return o.Status == "picker_call" && o.Actions[0].Payload.Phone == "+79990000002"
			}},
		{"orders", func() {
			insertOrder(t, a.DB, order{nr: "o1", eater: "e1", flow: "retail", status: "taken", courierPhone: "+79990000009"})
			insertPicker(t, a.DB, "o1", "p1", "paid", "picking_at", "picked_up_at", "paid_at")
		}, func(o trackingpresenter.TrackedOrder) bool { return o.Status == "taken" }},
	} {
		waitForHit(t, a, "e1")
		require.False(t, step.shows(track(t, a, user("e1")).Payload.TrackedOrders[0]), "%s: the change must be visible", step.name)
		step.change()
		committed := time.Now()
		var shownAt time.Duration = -1
		for time.Since(committed) < 1500*time.Millisecond {
			sent := time.Since(committed)
			r := track(t, a, user("e1"))
			shown := step.shows(r.Payload.TrackedOrders[0])
			if shown && shownAt < 0 {
				shownAt = sent
			}
			if sent >= time.Second {
				require.True(t, shown, "%s: a request sent %s after the commit shows the old state", step.name, sent)
			}
		}
		require.GreaterOrEqual(t, shownAt, time.Duration(0), step.name)
		t.Logf("%s: shown by a request sent %s after the commit", step.name, shownAt)
	}
	// A new order of the eater.
	waitForHit(t, a, "e1")
	insertOrder(t, a.DB, order{nr: "o2", eater: "e1", flow: "native", status: "created"})
	pgtest.Eventually(t, time.Second, func() bool { return track(t, a, user("e1")).Meta.Count == 2 }, "the new order is listed")
}

// waitForHit polls until the eater's answer comes from the cache, proving
// the cache is in use (a lag test on an unused cache could not fail).
func waitForHit(t *testing.T, a *apptest.App, eater string) {
	t.Helper()
	hits := func() int {
		for _, l := range strings.Split(metricsText(t, a), "\n") {
			if v, ok := strings.CutPrefix(l, `eot_tracking_state_cache_total{result="hit"} `); ok {
				var n int
				_, _ = fmt.Sscan(v, &n)
				return n
			}
		}
		return 0
	}
	before := hits()
	pgtest.Eventually(t, 5*time.Second, func() bool {
		track(t, a, user(eater))
		return hits() > before
	}, "the tracking cache serves %s", eater)
}

// An expired phone is never shown, though the answer showing it was cached.
func TestTrackingNeverShowsAnExpiredPhone(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	// The phone must still be valid once the answer is cached; on a slow
	// machine that takes a while, so the life doubles until it is.
	for attempt, life := 0, 3*time.Second; attempt < 4; attempt, life = attempt+1, 2*life {
		eater, nr := fmt.Sprintf("e%d", attempt), fmt.Sprintf("o%d", attempt)
		expires := time.Now().Add(life).Truncate(time.Microsecond)
		insertOrder(t, a.DB, order{nr: nr, eater: eater, flow: "retail", status: "place_confirmed"})
		insertPicker(t, a.DB, nr, "p1", "picking", "picking_at")
		insertPhone(t, a.DB, nr, "p1", "+79990000001", expires)
		settle(t, a)
		waitForHit(t, a, eater)
		sawPhone := false
		for time.Now().Before(expires.Add(500 * time.Millisecond)) {
			sent := time.Now()
			o := track(t, a, user(eater)).Payload.TrackedOrders[0]
			if o.Status == "picker_call" {
				sawPhone = true
				require.True(t, sent.Before(expires), "the phone shown %s after its expiry", sent.Sub(expires))
			} else {
				require.Equal(t, "picker_contact_us", o.Status)
			}
		}
		if sawPhone {
			return
		}
	}
	t.Fatal("the phone was never shown while valid")
}

// Jobs inserted into both queues end in the answer they imply.
func TestTrackingEndToEndFromBothQueues(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	ctx := context.Background()
	t0 := time.Now().Add(-10 * time.Minute).UTC()
	insert := func(args river.JobArgs) {
		t.Helper()
		_, err := a.Client.Insert(ctx, args, nil)
		require.NoError(t, err)
	}
	orderAt := func(status tracking.OrderStatus, at time.Time, c *orderingest.Courier) orderingest.OrderArgs {
		return orderingest.OrderArgs{OrderNr: "e2e-1", EaterID: "e2e", FlowType: tracking.FlowRetail, Status: status,
			Place: &orderingest.Place{ID: "40", Name: "Shop"}, Courier: c, CreatedAt: at.Format(time.RFC3339Nano)}
	}
	pickerAt := func(typ tracking.EventType, status tracking.PickerStatus, at time.Time, fw *pickeringest.Forwarding) pickeringest.PickerOrderArgs {
		return pickeringest.PickerOrderArgs{EventType: typ, OrderNr: "e2e-1", OrderStatus: status, PlaceID: "40",
			PickerID: "p1", CustomerPickerPhoneForwarding: fw, CreatedAt: at}
	}
	await := func(what string, cond func(trackingpresenter.TrackingResponse) bool) {
		t.Helper()
		pgtest.Eventually(t, 10*time.Second, func() bool { return cond(track(t, a, user("e2e"))) }, what)
	}
	insert(orderAt(tracking.OrderPlaceConfirmed, t0, nil))
	insert(pickerAt(tracking.EventStatusChange, tracking.PickerAssigned, t0.Add(time.Minute), nil))
	await("P1 after assignment", func(r trackingpresenter.TrackingResponse) bool {
		return r.Meta.Count == 1 && r.Payload.TrackedOrders[0].Status == "picker_contact_us"
	})
	insert(pickerAt(tracking.EventStatusChange, tracking.PickerPicking, t0.Add(2*time.Minute), nil))
	insert(pickerAt(tracking.EventPickerPhoneForwardingReady, tracking.PickerPicking, t0.Add(2*time.Minute),
		&pickeringest.Forwarding{Phone: "+7 999 123-45-67,,42", ExpiresAt: time.Now().Add(time.Hour)}))
	await("P2 with the forwarding phone", func(r trackingpresenter.TrackingResponse) bool {
		o := r.Payload.TrackedOrders[0]
		return o.Status == "picker_call" && o.Actions[0].Payload.Phone == "+79991234567,42"
	})
	insert(pickerAt(tracking.EventStatusChange, tracking.PickerPickedUp, t0.Add(3*time.Minute), nil))
	await("P3 once picked up", func(r trackingpresenter.TrackingResponse) bool {
		return r.Payload.TrackedOrders[0].Status == "picker_paying"
	})
	insert(pickerAt(tracking.EventStatusChange, tracking.PickerPaid, t0.Add(4*time.Minute), nil))
	insert(orderAt(tracking.OrderTaken, t0.Add(5*time.Minute), &orderingest.Courier{Name: "Ivan", Phone: "+79990000009"}))
	await("the base view with the courier after payment", func(r trackingpresenter.TrackingResponse) bool {
		o := r.Payload.TrackedOrders[0]
		return o.Status == "taken" && len(o.Actions) == 1 && o.Actions[0].Payload.ContactType == trackingpresenter.ContactCourier
	})
	r := track(t, a, user("e2e"))
	require.Equal(t, t0.Truncate(time.Microsecond), r.Payload.TrackedOrders[0].Order.CreatedAt)
}

// The OpenAPI document names the enums the app's client relies on.
func TestTrackingOpenAPI(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	code, body := a.Get(t, "/openapi.json", nil)
	require.Equal(t, http.StatusOK, code)
	var spec struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Type       any                        `json:"type"`
				Enum       []string                   `json:"enum"`
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(body, &spec))
	s := spec.Components.Schemas
	require.Equal(t, []string{"courier", "place", "picker"}, s["TrackedOrderButtonContactType"].Enum)
	require.Equal(t, []string{"call", "contact_us"}, s["TrackedOrderActionType"].Enum)
	require.JSONEq(t, `{"$ref":"#/components/schemas/TrackedOrderButtonContactType"}`, string(s["TrackedOrderActionPayload"].Properties["contact_type"]))
	require.JSONEq(t, `{"$ref":"#/components/schemas/TrackedOrderActionType"}`, string(s["TrackedOrderAction"].Properties["type"]))
	require.Contains(t, string(s["TrackedOrderBanner"].Properties["appLink"]), `"type":"string"`)
	get := string(spec.Paths[trackingpresenter.Path]["get"])
	require.Contains(t, get, `"operationId":"getTracking"`)
	require.Contains(t, get, `"example":`)
	require.NotContains(t, get, `"tags"`, "the app's client is generated from untagged operations")
}

// cacheCount reads eot_tracking_state_cache_total{result}.
func cacheCount(t *testing.T, a *apptest.App, result string) int {
	t.Helper()
	for _, l := range strings.Split(metricsText(t, a), "\n") {
		if v, ok := strings.CutPrefix(l, `eot_tracking_state_cache_total{result="`+result+`"} `); ok {
			var n int
			_, _ = fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no eot_tracking_state_cache_total{result=%q}", result)
	return 0
}

// Once a replica holds the complete set, polls are answered from memory,
// those of eaters who have no order included; an eater whose orders
// changed is read once, then served from memory again.
func TestTrackingAnswersPollsFromMemory(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	pgtest.Eventually(t, 10*time.Second, func() bool { return len(a.Logs.Lines("tracking cache complete")) > 0 }, "the complete set is loaded")
	insertOrder(t, a.DB, order{nr: "o1", eater: "e1", flow: "native", status: "created"})
	settle(t, a)
	require.Equal(t, 1, track(t, a, user("e1")).Meta.Count) // read once: its order is new

	misses := cacheCount(t, a, "miss")
	for i := range 50 {
		require.Zero(t, track(t, a, user(fmt.Sprintf("nobody-%d", i))).Meta.Count)
		require.Equal(t, 1, track(t, a, user("e1")).Meta.Count)
	}
	require.Equal(t, misses, cacheCount(t, a, "miss"), "no poll read the database")
	require.Zero(t, cacheCount(t, a, "behind"), "the change feed kept up")
}

// cappedCount reads eot_tracking_answers_capped_total; -1 when absent.
func cappedCount(t *testing.T, a *apptest.App) int {
	t.Helper()
	for _, l := range strings.Split(metricsText(t, a), "\n") {
		if v, ok := strings.CutPrefix(l, "eot_tracking_answers_capped_total "); ok {
			var n int
			_, _ = fmt.Sscan(v, &n)
			return n
		}
	}
	return -1
}

// TRACKING_MAX_ORDERS_PER_EATER (DESIGN §4.1) on every read path: the cache
// off, a miss (PostgreSQL) and a hit (memory). Active orders before
// finished ones, newest first, then shown by createdAt, then orderNr;
// meta.count counts what is shown; the metric counts answers cut.
func TestTrackingCapsOrdersPerEater(t *testing.T) {
	t.Parallel()
	t0 := time.Now().Add(-5 * time.Hour)
	orders := []order{
		// e1: four active orders, one finished: the three newest active.
		{nr: "e1-a1", eater: "e1", flow: "native", status: "created", first: t0},
		{nr: "e1-a2", eater: "e1", flow: "native", status: "taken", first: t0.Add(time.Minute)},
		{nr: "e1-f1", eater: "e1", flow: "native", status: "delivered", first: t0.Add(2 * time.Minute), at: time.Now().Add(-time.Minute)},
		{nr: "e1-a3", eater: "e1", flow: "native", status: "place_confirmed", first: t0.Add(3 * time.Minute)},
		{nr: "e1-a4", eater: "e1", flow: "retail", status: "created", first: t0.Add(4 * time.Minute)},
		// e2: two active, two finished listed, one finished long ago: both
		// active, then the newest finished.
		{nr: "e2-a1", eater: "e2", flow: "native", status: "created", first: t0},
		{nr: "e2-f1", eater: "e2", flow: "native", status: "cancelled", first: t0.Add(time.Minute), at: time.Now().Add(-time.Minute)},
		{nr: "e2-f2", eater: "e2", flow: "native", status: "delivered", first: t0.Add(2 * time.Minute), at: time.Now().Add(-2 * time.Minute)},
		{nr: "e2-old", eater: "e2", flow: "native", status: "delivered", first: t0.Add(3 * time.Minute), at: time.Now().Add(-time.Hour)},
		{nr: "e2-a2", eater: "e2", flow: "native", status: "taken", first: t0.Add(4 * time.Minute)},
		// e3: exactly the cap.
		{nr: "e3-a1", eater: "e3", flow: "native", status: "created", first: t0},
		{nr: "e3-a2", eater: "e3", flow: "native", status: "created", first: t0.Add(time.Minute)},
		{nr: "e3-a3", eater: "e3", flow: "native", status: "created", first: t0.Add(2 * time.Minute)},
	}
	want := map[string][]string{
		"e1": {"e1-a2", "e1-a3", "e1-a4"},
		"e2": {"e2-a1", "e2-f2", "e2-a2"},
		"e3": {"e3-a1", "e3-a2", "e3-a3"},
	}
	check := func(t *testing.T, a *apptest.App, eater string) {
		t.Helper()
		before := cappedCount(t, a)
		r := track(t, a, user(eater))
		var nrs []string
		for _, o := range r.Payload.TrackedOrders {
			nrs = append(nrs, o.Order.OrderNr)
		}
		require.Equal(t, want[eater], nrs, eater)
		require.Equal(t, 3, r.Meta.Count, eater)
		if eater == "e3" {
			require.Equal(t, before, cappedCount(t, a), "%s fits: not counted", eater)
		} else {
			require.Equal(t, before+1, cappedCount(t, a), "%s was cut: counted", eater)
		}
	}

	t.Run("cache off", func(t *testing.T) {
		t.Parallel()
		a := apptest.Start(t, map[string]string{"TRACKING_MAX_ORDERS_PER_EATER": "3", "TRACKING_CACHE_ENTRIES": "0"})
		for _, o := range orders {
			insertOrder(t, a.DB, o)
		}
		for _, eater := range []string{"e1", "e2", "e3"} {
			check(t, a, eater)
		}
		require.Positive(t, cacheCount(t, a, "off"))
	})
	t.Run("cache miss then hit", func(t *testing.T) {
		t.Parallel()
		a := apptest.Start(t, map[string]string{"TRACKING_MAX_ORDERS_PER_EATER": "3"})
		pgtest.Eventually(t, 10*time.Second, func() bool { return len(a.Logs.Lines("tracking cache complete")) > 0 }, "the complete set is loaded")
		for _, o := range orders {
			insertOrder(t, a.DB, o)
		}
		settle(t, a)
		for _, eater := range []string{"e1", "e2", "e3"} {
			read := cacheCount(t, a, "miss") + cacheCount(t, a, "behind")
			check(t, a, eater) // the eater changed since the load: read from PostgreSQL
			require.Equal(t, read+1, cacheCount(t, a, "miss")+cacheCount(t, a, "behind"), "%s read from PostgreSQL", eater)
			hits := cacheCount(t, a, "hit")
			pgtest.Eventually(t, 10*time.Second, func() bool {
				check(t, a, eater)
				return cacheCount(t, a, "hit") > hits
			}, "%s answered from memory", eater)
		}
	})
}

// metricValue reads one sample of the scrape by its full name and labels.
func metricValue(t *testing.T, a *apptest.App, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(metricsText(t, a), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var f float64
			_, _ = fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// Polls answered from the memo's bytes are still requests of the route:
// counted in the route's latency histogram like any other, and the memo
// and the bytes it holds are in the metrics.
func TestTrackingMemoServedPollsAreMeasured(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	insertOrder(t, a.DB, order{nr: "o1", eater: "e1", flow: "native", status: "created"})
	settle(t, a)
	waitForHit(t, a, "e1")
	route := `eot_http_request_duration_seconds_count{code="200",route="GET ` + trackingpresenter.Path + `"}`
	requests, hits := metricValue(t, a, route), metricValue(t, a, `eot_tracking_answer_memo_total{result="hit"}`)
	for range 10 {
		require.Equal(t, 1, track(t, a, user("e1")).Meta.Count)
	}
	require.Equal(t, hits+10, metricValue(t, a, `eot_tracking_answer_memo_total{result="hit"}`), "served from the memo")
	require.Equal(t, requests+10, metricValue(t, a, route), "and measured as the route")
	require.Positive(t, metricValue(t, a, "eot_tracking_answer_memo_bytes"))
}
