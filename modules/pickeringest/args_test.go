package pickeringest

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/tracking"
)

var jobTime = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// statusChange is a valid STATUS_CHANGE as procaas sends it.
func statusChange() map[string]any {
	return map[string]any{
		"event_type": "STATUS_CHANGE", "order_nr": "230101-100001", "order_status": "picking",
		"place_id": "40", "customer_id": "c-1", "picker_id": "p-1",
		"created_at": "2025-03-01T10:00:00.1234567+03:00",
	}
}

// phoneReady is a valid PICKER_PHONE_FORWARDING_READY.
func phoneReady() map[string]any {
	ev := statusChange()
	ev["event_type"] = "PICKER_PHONE_FORWARDING_READY"
	ev["customer_picker_phone_forwarding"] = map[string]any{"phone": "+7 (999) 123-45-67,,123", "expires_at": "2025-03-01T11:00:00Z"}
	return ev
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func with(ev map[string]any, k string, v any) map[string]any {
	out := maps.Clone(ev)
	out[k] = v
	return out
}

func without(ev map[string]any, k string) map[string]any {
	out := maps.Clone(ev)
	delete(out, k)
	return out
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	ev, err := parse(mustJSON(t, with(statusChange(), "from_the_future", map[string]any{"x": 1})), jobTime)
	require.NoError(t, err)
	require.Equal(t, Event{
		Type: tracking.EventStatusChange, OrderNr: "230101-100001", Status: tracking.PickerPicking,
		PlaceID: "40", CustomerID: "c-1", PickerID: "p-1",
		CreatedAt:     time.Date(2025, 3, 1, 7, 0, 0, 123456000, time.UTC), // UTC, microseconds
		createdAtSent: "2025-03-01T10:00:00.1234567+03:00",                 // for the error that refuses a future time
	}, ev)

	ev, err = parse(mustJSON(t, phoneReady()), jobTime)
	require.NoError(t, err)
	require.Equal(t, &Forwarding{Phone: "+79991234567,,123", ExpiresAt: time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC)}, ev.Forwarding)
	require.Equal(t, "p-1", ev.PickerID)

	// Optional fields absent or null.
	ev, err = parse(mustJSON(t, with(without(without(statusChange(), "picker_id"), "customer_id"), "customer_picker_phone_forwarding", nil)), jobTime)
	require.NoError(t, err)
	require.Empty(t, ev.PickerID)
	require.Empty(t, ev.CustomerID)
	require.Nil(t, ev.Forwarding)
}

func TestParseCreatedAtMissingUsesJobTime(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string][]byte{
		"missing": mustJSON(t, without(statusChange(), "created_at")),
		"null":    mustJSON(t, with(statusChange(), "created_at", nil)),
	} {
		ev, err := parse(raw, jobTime)
		require.NoError(t, err, name)
		require.True(t, ev.CreatedAtFromJob, name)
		require.Equal(t, tracking.Normalize(jobTime), ev.CreatedAt, name)
	}
	ev, err := parse(mustJSON(t, statusChange()), jobTime)
	require.NoError(t, err)
	require.False(t, ev.CreatedAtFromJob)
}

func TestParseIgnoredTypesValidateNothingElse(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"ITEM_ADD", "ITEM_REPLACE", "ITEM_SOFT_DELETE", "ITEM_PICKED", "SOMETHING_NEW", "status_change"} {
		ev, err := parse(mustJSON(t, map[string]any{"event_type": typ, "order_nr": 42, "order_status": "bogus", "created_at": "yesterday"}), jobTime)
		require.NoError(t, err, typ)
		require.Equal(t, Event{Type: tracking.EventType(typ)}, ev, typ)
		require.False(t, ev.Type.Applied())
	}
}

// TestParseInvalid: each required field missing, each enum wrong, each
// malformed date, a forwarding with an extra field — each names the field
// and shows the value in the DESIGN's form.
func TestParseInvalid(t *testing.T) {
	t.Parallel()
	fwd := func(f map[string]any) map[string]any {
		return with(phoneReady(), "customer_picker_phone_forwarding", f)
	}
	goodFwd := map[string]any{"phone": "+79991234567", "expires_at": "2025-03-01T11:00:00Z"}
	tests := []struct {
		name  string
		input any
		want  string // the whole error text
	}{
		{"not an object", []any{1, 2}, `invalid event: not a JSON object (got "[1,2]")`},
		{"null", nil, `invalid event: not a JSON object (got "null")`},
		{"event_type missing", without(statusChange(), "event_type"), `invalid event_type: required (got "")`},
		{"event_type not a string", with(statusChange(), "event_type", 7), `invalid event_type: not a string (got "7")`},
		{"order_nr missing", without(statusChange(), "order_nr"), `invalid order_nr: required (got "")`},
		{"order_nr empty", with(statusChange(), "order_nr", ""), `invalid order_nr: required (got "")`},
		{"order_nr a number", with(statusChange(), "order_nr", 230101), `invalid order_nr: not a string (got "230101")`},
		{"order_nr too long", with(statusChange(), "order_nr", strings.Repeat("9", 257)), `invalid order_nr: longer than 256 bytes (got "` + strings.Repeat("9", 64) + `…")`},
		{"order_nr with NUL", with(statusChange(), "order_nr", "a\x00b"), `invalid order_nr: contains a NUL character (got "a\x00b")`},
		{"order_status missing", without(statusChange(), "order_status"), `invalid order_status: required (got "")`},
		{"order_status unknown", with(statusChange(), "order_status", "PICKING"), `invalid order_status: unknown picker order status (got "PICKING")`},
		{"place_id missing", without(statusChange(), "place_id"), `invalid place_id: required (got "")`},
		{"place_id a number", with(statusChange(), "place_id", 40), `invalid place_id: not a string (got "40")`},
		{"customer_id an object", with(statusChange(), "customer_id", map[string]any{}), `invalid customer_id: not a string (got "{}")`},
		{"created_at malformed", with(statusChange(), "created_at", "2025-03-01 10:00"), `invalid created_at: not an RFC 3339 date-time (got "2025-03-01 10:00")`},
		{"created_at without zone", with(statusChange(), "created_at", "2025-03-01T10:00:00"), `invalid created_at: not an RFC 3339 date-time (got "2025-03-01T10:00:00")`},
		{"created_at empty", with(statusChange(), "created_at", ""), `invalid created_at: not an RFC 3339 date-time (got "")`},
		{"created_at a number", with(statusChange(), "created_at", 1700000000), `invalid created_at: not a string (got "1700000000")`},
		{"created_at year 0", with(statusChange(), "created_at", "0000-12-31T23:00:00Z"), `invalid created_at: year out of range 1–9999 (got "0000-12-31T23:00:00Z")`},
		{"picker_id missing on READY", without(phoneReady(), "picker_id"), `invalid picker_id: required (got "")`},
		{"forwarding missing on READY", without(phoneReady(), "customer_picker_phone_forwarding"), `invalid customer_picker_phone_forwarding: required (got "")`},
		{"forwarding not an object", with(phoneReady(), "customer_picker_phone_forwarding", "+79991234567"), `invalid customer_picker_phone_forwarding: not an object (got "\"+*******4567\"")`},
		{"forwarding extra field", fwd(with(goodFwd, "ttl", 60)), `invalid customer_picker_phone_forwarding.ttl: unknown field (got "60")`},
		{"forwarding phone missing", fwd(without(goodFwd, "phone")), `invalid customer_picker_phone_forwarding.phone: required (got "")`},
		{"forwarding phone not a phone", fwd(with(goodFwd, "phone", "call +7 999 123 45 67 now")), `invalid customer_picker_phone_forwarding.phone: not a phone number (got "call +* *** *** 45 67 now")`},
		{"forwarding phone a number", fwd(with(goodFwd, "phone", 79991234567)), `invalid customer_picker_phone_forwarding.phone: not a string (got "*******4567")`},
		{"forwarding expires_at missing", fwd(without(goodFwd, "expires_at")), `invalid customer_picker_phone_forwarding.expires_at: required (got "")`},
		{"forwarding expires_at malformed", fwd(with(goodFwd, "expires_at", "soon")), `invalid customer_picker_phone_forwarding.expires_at: not an RFC 3339 date-time (got "soon")`},
		{"forwarding bad on a STATUS_CHANGE too", with(statusChange(), "customer_picker_phone_forwarding", with(goodFwd, "extra", true)), `invalid customer_picker_phone_forwarding.extra: unknown field (got "true")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(mustJSON(t, tt.input), jobTime)
			require.Error(t, err)
			require.ErrorIs(t, err, tracking.ErrInvalid)
			var fe *tracking.FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tt.want, err.Error())
		})
	}
}

func TestParseReportsEveryBadField(t *testing.T) {
	t.Parallel()
	raw := mustJSON(t, map[string]any{"event_type": "PICKER_PHONE_FORWARDING_READY", "order_status": "nope", "created_at": "x"})
	ev, err := parse(raw, jobTime)
	require.Error(t, err)
	require.Equal(t, tracking.EventPickerPhoneForwardingReady, ev.Type, "the type stays known for metrics")
	var fields []string
	for _, e := range flatten(err) {
		var fe *tracking.FieldError
		require.ErrorAs(t, e, &fe)
		fields = append(fields, fe.Field)
	}
	require.Equal(t, []string{"order_nr", "order_status", "place_id", "picker_id", "customer_picker_phone_forwarding", "created_at"}, fields)
}

func TestParseNeverShowsAWholePhone(t *testing.T) {
	t.Parallel()
	const phone = "+79991234567"
	for _, fwd := range []any{
		map[string]any{"phone": phone + "x", "expires_at": "2025-03-01T11:00:00Z"},
		map[string]any{"phone": phone, "expires_at": "2025-03-01T11:00:00Z", "backup": phone},
		phone,
		[]any{phone},
	} {
		_, err := parse(mustJSON(t, with(phoneReady(), "customer_picker_phone_forwarding", fwd)), jobTime)
		require.Error(t, err)
		require.NotContains(t, err.Error(), "9991234567")
		require.Contains(t, err.Error(), "4567")
	}
}

func TestParseRejectsInvalidUTF8(t *testing.T) {
	t.Parallel()
	_, err := parse([]byte("{\"event_type\":\"STATUS_CHANGE\",\"order_nr\":\"\xff\"}"), jobTime)
	require.EqualError(t, err, `invalid event: not valid UTF-8 (got "")`)
}

func TestArgsKeepTheirJSON(t *testing.T) {
	t.Parallel()
	raw := mustJSON(t, with(statusChange(), "future_field", "kept"))
	var args PickerOrderArgs
	require.NoError(t, json.Unmarshal(raw, &args))
	require.Equal(t, "230101-100001", args.OrderNr, "typed fields are filled on a best-effort basis")
	out, err := json.Marshal(args)
	require.NoError(t, err)
	require.JSONEq(t, string(raw), string(out))

	// Undecodable field types never fail River's decoding: parse reports them.
	bad := []byte(`{"event_type":"STATUS_CHANGE","order_nr":7,"created_at":false}`)
	require.NoError(t, json.Unmarshal(bad, &args))
	out, err = json.Marshal(args)
	require.NoError(t, err)
	require.JSONEq(t, string(bad), string(out))

	// Built in Go: snake_case, zero created_at and empty optionals omitted.
	out, err = json.Marshal(PickerOrderArgs{EventType: tracking.EventStatusChange, OrderNr: "1", OrderStatus: tracking.PickerNew, PlaceID: "40"})
	require.NoError(t, err)
	require.JSONEq(t, `{"event_type":"STATUS_CHANGE","order_nr":"1","order_status":"new","place_id":"40"}`, string(out))
	require.Equal(t, Kind, PickerOrderArgs{}.Kind())
	require.Equal(t, Kind, PickerOrderArgs{}.InsertOpts().Queue)
}

// FuzzParse: parse never panics; it either returns tracking field errors
// (never a whole phone number) or an event that satisfies its type's rules
// and survives a round trip through the args type unchanged.
func FuzzParse(f *testing.F) {
	for _, seed := range []any{
		statusChange(), phoneReady(),
		without(statusChange(), "created_at"), with(statusChange(), "created_at", nil),
		with(statusChange(), "event_type", "ITEM_ADD"), with(statusChange(), "event_type", "NEW_KIND"),
		without(phoneReady(), "picker_id"),
		with(phoneReady(), "customer_picker_phone_forwarding", map[string]any{"phone": "+79991234567", "expires_at": "2025-03-01T11:00:00Z", "x": 1}),
		with(statusChange(), "order_status", "PICKING"),
		with(statusChange(), "created_at", "9999-12-31T23:59:59-23:59"),
	} {
		f.Add(mustJSON(f, seed))
	}
	for _, s := range []string{``, `null`, `[]`, `{}`, `"x"`, `{"event_type":null}`, `{"event_type":"STATUS_CHANGE","order_nr":"\u0000"}`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := parse(raw, jobTime)
		if err != nil {
			require.ErrorIs(t, err, tracking.ErrInvalid)
			for _, e := range flatten(err) {
				var fe *tracking.FieldError
				require.ErrorAs(t, e, &fe)
				require.NotEmpty(t, fe.Field)
			}
			return
		}
		if !ev.Type.Applied() {
			require.Equal(t, Event{Type: ev.Type}, ev)
			return
		}
		require.NotEmpty(t, ev.OrderNr)
		require.NotEmpty(t, ev.PlaceID)
		require.True(t, ev.Status.Valid())
		require.Equal(t, tracking.Normalize(ev.CreatedAt), ev.CreatedAt)
		if ev.Type == tracking.EventPickerPhoneForwardingReady {
			require.NotEmpty(t, ev.PickerID)
			require.NotNil(t, ev.Forwarding)
			require.NoError(t, checkPhoneReady(ev))
		} else {
			require.NoError(t, checkStatusChange(ev))
		}
		// Round trip: the event as Go producers would send it parses the same.
		args := PickerOrderArgs{
			EventType: ev.Type, OrderNr: ev.OrderNr, OrderStatus: ev.Status, PlaceID: ev.PlaceID,
			CustomerID: ev.CustomerID, PickerID: ev.PickerID, CustomerPickerPhoneForwarding: ev.Forwarding, CreatedAt: ev.CreatedAt,
		}
		again, err := parse(mustJSON(t, args), jobTime.Add(time.Hour))
		require.NoError(t, err)
		want := ev
		want.CreatedAtFromJob = false
		want.createdAtSent, again.createdAtSent = "", "" // the same time, written in Go's form
		require.Equal(t, want, again)
		require.NotErrorIs(t, err, tracking.ErrInvalid)
	})
}
