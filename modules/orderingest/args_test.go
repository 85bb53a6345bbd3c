package orderingest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/tracking"
)

const validEvent = `{
	"order_nr": "230101-100001", "eater_id": "e1", "flow_type": "retail", "status": "taken",
	"place": {"id": "40", "name": "Shop", "phone": "+7 (999) 123-45-67", "address": "Main st"},
	"courier": {"name": "Ivan", "phone": "+79990000001,,12"},
	"eta": "2026-01-02T03:30:00+03:00", "created_at": "2026-01-02T03:04:05.1234567+03:00",
	"some_future_field": {"x": 1}
}`

func decode(t *testing.T, s string) OrderArgs {
	t.Helper()
	var a OrderArgs
	require.NoError(t, json.Unmarshal([]byte(s), &a))
	return a
}

func TestSnapshotNormalizes(t *testing.T) {
	t.Parallel()
	a := decode(t, validEvent)
	s, err := a.snapshot()
	require.NoError(t, err)
	require.Equal(t, "230101-100001", s.OrderNr)
	require.Equal(t, "e1", s.EaterID)
	require.Equal(t, time.Date(2026, 1, 2, 0, 4, 5, 123456000, time.UTC), s.EventAt)
	b, err := json.Marshal(s.Payload)
	require.NoError(t, err)
	require.JSONEq(t, `{"flow_type":"retail","status":"taken",
		"place":{"id":"40","name":"Shop","phone":"+79991234567","address":"Main st"},
		"courier":{"name":"Ivan","phone":"+79990000001,,12"},
		"eta":"2026-01-02T00:30:00Z"}`, string(b))

	minimal := decode(t, `{"order_nr":"1","eater_id":"e","flow_type":"native","status":"created","place":{"id":"1","name":"P"},"created_at":"2026-01-02T03:04:05Z","courier":null,"eta":null}`)
	s, err = minimal.snapshot()
	require.NoError(t, err)
	b, err = json.Marshal(s.Payload)
	require.NoError(t, err)
	require.JSONEq(t, `{"flow_type":"native","status":"created","place":{"id":"1","name":"P"}}`, string(b), "absent optional parts are absent, not null")
}

func TestSnapshotRejectsInvalidInputNamingTheField(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		json string
		want []string
	}{
		"empty object": {`{}`, []string{
			`invalid order_nr: required (got "")`, `invalid eater_id: required (got "")`,
			`invalid flow_type: required (got "")`, `invalid status: required (got "")`,
			`invalid place: required (got "")`, `invalid created_at: required (got "")`,
		}},
		"null args":        {`null`, []string{`invalid order_nr: required (got "")`}},
		"unknown flow":     {`{"order_nr":"1","eater_id":"e","flow_type":"drone","status":"created","place":{"id":"1","name":"P"},"created_at":"2026-01-02T03:04:05Z"}`, []string{`invalid flow_type: unknown flow type (got "drone")`}},
		"unknown status":   {`{"order_nr":"1","eater_id":"e","flow_type":"native","status":"eaten","place":{"id":"1","name":"P"},"created_at":"2026-01-02T03:04:05Z"}`, []string{`invalid status: unknown order status (got "eaten")`}},
		"bad created_at":   {`{"order_nr":"1","eater_id":"e","flow_type":"native","status":"created","place":{"id":"1","name":"P"},"created_at":"yesterday"}`, []string{`invalid created_at: not an RFC 3339 date-time (got "yesterday")`}},
		"bad eta":          {`{"order_nr":"1","eater_id":"e","flow_type":"native","status":"created","place":{"id":"1","name":"P"},"created_at":"2026-01-02T03:04:05Z","eta":"soon"}`, []string{`invalid eta: not an RFC 3339 date-time (got "soon")`}},
		"place without id": {`{"order_nr":"1","eater_id":"e","flow_type":"native","status":"created","place":{"name":"P"},"created_at":"2026-01-02T03:04:05Z"}`, []string{`invalid place.id: required (got "")`}},
		"bad place phone":  {`{"order_nr":"1","eater_id":"e","flow_type":"native","status":"created","place":{"id":"1","name":"P","phone":"call me 79991234567"},"created_at":"2026-01-02T03:04:05Z"}`, []string{`invalid place.phone: not a phone number (got "call me *******4567")`}},
		"courier no name":  {`{"order_nr":"1","eater_id":"e","flow_type":"native","status":"taken","place":{"id":"1","name":"P"},"courier":{"phone":"+79991234567"},"created_at":"2026-01-02T03:04:05Z"}`, []string{`invalid courier.name: required (got "")`}},
		"bad courier phone": {`{"order_nr":"1","eater_id":"e","flow_type":"native","status":"taken","place":{"id":"1","name":"P"},"courier":{"name":"I","phone":"12"},"created_at":"2026-01-02T03:04:05Z"}`,
			[]string{`invalid courier.phone: not a phone number (got "12")`}},
		"number place id": {`{"order_nr":"1","eater_id":"e","flow_type":"native","status":"created","place":{"id":40,"name":"P"},"created_at":"2026-01-02T03:04:05Z"}`, []string{`invalid place.id: must be a string (got "number")`}},
		"string place":    {`{"order_nr":"1","eater_id":"e","flow_type":"native","status":"created","place":"40","created_at":"2026-01-02T03:04:05Z"}`, []string{`invalid place: must be an object (got "string")`}},
		"array args":      {`[1,2]`, []string{`invalid args: must be an object (got "array")`}},
		"NUL in eater id": {`{"order_nr":"1","eater_id":"e\u0000","flow_type":"native","status":"created","place":{"id":"1","name":"P"},"created_at":"2026-01-02T03:04:05Z"}`, []string{`invalid eater_id: contains a NUL character (got "e\x00")`}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := decode(t, tc.json)
			_, err := a.snapshot()
			require.Error(t, err)
			require.ErrorIs(t, err, tracking.ErrInvalid)
			var fe *tracking.FieldError
			require.ErrorAs(t, err, &fe)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestArgsRoundTrip(t *testing.T) {
	t.Parallel()
	a := OrderArgs{OrderNr: "1", EaterID: "e", FlowType: tracking.FlowShop, Status: tracking.OrderCreated,
		Place: &Place{ID: "1", Name: "P"}, CreatedAt: "2026-01-02T03:04:05Z"}
	b, err := json.Marshal(a)
	require.NoError(t, err)
	require.JSONEq(t, `{"order_nr":"1","eater_id":"e","flow_type":"shop","status":"created","place":{"id":"1","name":"P"},"created_at":"2026-01-02T03:04:05Z"}`, string(b))
	require.Equal(t, Kind, a.Kind())
	require.Equal(t, Kind, a.InsertOpts().Queue)
}

func FuzzOrderArgsDecode(f *testing.F) {
	f.Add([]byte(validEvent))
	f.Add([]byte(`{"place":{"id":1}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var a OrderArgs
		if json.Unmarshal(b, &a) != nil {
			return // not JSON at all: River's args column is jsonb
		}
		s, err := a.snapshot()
		if err != nil {
			require.ErrorIs(t, err, tracking.ErrInvalid, "every rejection is a validation error")
			return
		}
		require.NotEmpty(t, s.OrderNr)
		require.True(t, s.Payload.Status.Valid())
		require.True(t, s.Payload.FlowType.Valid())
		require.Equal(t, time.UTC, s.EventAt.Location())
	})
}
