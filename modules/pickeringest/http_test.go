package pickeringest_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/pickeringest"
)

type problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
		Value    any    `json:"value"`
	} `json:"errors"`
}

func (s *service) post(t *testing.T, body string, headers map[string]string) (int, http.Header, []byte) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range headers {
		h[k] = v
	}
	return s.Do(t, http.MethodPost, pickeringest.EventsPath, strings.NewReader(body), h)
}

func TestPostEventEnqueues(t *testing.T) {
	t.Parallel()
	s := start(t, nil)

	// Unknown top-level fields pass; the job keeps them.
	code, _, body := s.post(t, eventJSON(t, withField(statusChange("o-1"), "added_by_procaas_later", map[string]any{"x": 1})), apptest.Internal())
	require.Equal(t, http.StatusAccepted, code, string(body))
	var out struct {
		JobID int64 `json:"job_id"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	require.JSONEq(t, `{"job_id":`+itoa(out.JobID)+`}`, string(body))
	require.Equal(t, "completed", s.waitJob(t, out.JobID).State)
	p, ok := s.payload(t, "o-1")
	require.True(t, ok)
	require.JSONEq(t, `{"picker_id":"p-1","status":"picking","status_history":{"picking_at":"2025-03-01T10:00:00Z"}}`, p)
	var args string
	require.NoError(t, s.DB.Get(&args, `SELECT args->'added_by_procaas_later'->>'x' FROM river_job WHERE id = $1`, out.JobID))
	require.Equal(t, "1", args)

	// Without created_at: accepted; the job's insertion time is used.
	code, _, body = s.post(t, eventJSON(t, withField(withField(statusChange("o-2"), "created_at", nil), "order_status", "new")), apptest.Internal())
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.NoError(t, json.Unmarshal(body, &out))
	j := s.waitJob(t, out.JobID)
	require.Equal(t, "completed", j.State)
	p, _ = s.payload(t, "o-2")
	require.JSONEq(t, `{"picker_id":"p-1","status":"new","status_history":{"new_at":"`+j.CreatedAt.UTC().Format(time.RFC3339Nano)+`"}}`, p)

	// Event types we ignore are accepted (and ignored by the worker).
	code, _, body = s.post(t, `{"event_type":"ITEM_ADD","anything":true}`, apptest.Internal())
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.NoError(t, json.Unmarshal(body, &out))
	require.Equal(t, "completed", s.waitJob(t, out.JobID).State)
}

func TestPostEventRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	expires := time.Now().Add(time.Hour)
	type detail struct{ location, message string }
	cases := []struct {
		body string
		want []detail
	}{
		{eventJSON(t, withField(statusChange("o-1"), "order_nr", nil)),
			[]detail{{"body.order_nr", `invalid order_nr: required (got "")`}}},
		{eventJSON(t, withField(statusChange("o-1"), "order_status", "eating")),
			[]detail{{"body.order_status", `invalid order_status: unknown picker order status (got "eating")`}}},
		{eventJSON(t, withField(statusChange("o-1"), "created_at", "yesterday")),
			[]detail{{"body.created_at", `invalid created_at: not an RFC 3339 date-time (got "yesterday")`}}},
		{eventJSON(t, withField(phoneReady("o-1", expires), "customer_picker_phone_forwarding", map[string]any{"phone": "+7 999 123 45 67", "expires_at": "2030-01-01T00:00:00Z", "ttl": 1})),
			[]detail{{"body.customer_picker_phone_forwarding.ttl", `invalid customer_picker_phone_forwarding.ttl: unknown field (got "1")`}}},
		{eventJSON(t, withField(phoneReady("o-1", expires), "customer_picker_phone_forwarding", map[string]any{"phone": "+7 999 123 45 67 99 99 99", "expires_at": "2030-01-01T00:00:00Z"})),
			[]detail{{"body.customer_picker_phone_forwarding.phone", `invalid customer_picker_phone_forwarding.phone: not a phone number (got "+* *** *** ** ** ** 99 99")`}}},
		{`{"event_type":"PICKER_PHONE_FORWARDING_READY"}`, []detail{
			{"body.order_nr", `invalid order_nr: required (got "")`},
			{"body.order_status", `invalid order_status: required (got "")`},
			{"body.place_id", `invalid place_id: required (got "")`},
			{"body.picker_id", `invalid picker_id: required (got "")`},
			{"body.customer_picker_phone_forwarding", `invalid customer_picker_phone_forwarding: required (got "")`},
		}},
		{`[]`, []detail{{"body", `invalid event: not a JSON object (got "[]")`}}},
	}
	for _, c := range cases {
		code, h, body := s.post(t, c.body, apptest.Internal())
		require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
		require.Equal(t, "application/problem+json", h.Get("Content-Type"))
		var p problem
		require.NoError(t, json.Unmarshal(body, &p))
		var got []detail
		for _, e := range p.Errors {
			got = append(got, detail{e.Location, e.Message})
		}
		require.Equal(t, c.want, got, c.body)
		require.NotContains(t, string(body), "9991234567", "phones are masked")
	}
	require.Zero(t, s.count(t, "river_job WHERE queue = '"+pickeringest.Kind+"'"), "nothing enqueued")

	// Not JSON at all: huma's decoder answers, also 422 at location body.
	code, _, body := s.post(t, `{"event_type":`, apptest.Internal())
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	var p problem
	require.NoError(t, json.Unmarshal(body, &p))
	require.Len(t, p.Errors, 1)
	require.Equal(t, "body", p.Errors[0].Location)
}

// TestPostEventRejectsAnEventFromTheFuture: the endpoint applies the
// worker's rule with the database's clock (DESIGN §3.1): more than 5
// minutes ahead is a 422 naming body.created_at; a small skew is accepted.
func TestPostEventRejectsAnEventFromTheFuture(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	var dbNow time.Time
	require.NoError(t, s.DB.Get(&dbNow, `SELECT now()`))
	ahead := dbNow.Add(24 * time.Hour).UTC().Format(time.RFC3339)
	for _, ev := range []map[string]any{statusChange("o-1"), phoneReady("o-1", dbNow.Add(2*time.Hour))} {
		code, h, body := s.post(t, eventJSON(t, withField(ev, "created_at", ahead)), apptest.Internal())
		require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
		require.Equal(t, "application/problem+json", h.Get("Content-Type"))
		var p problem
		require.NoError(t, json.Unmarshal(body, &p))
		require.Len(t, p.Errors, 1, string(body))
		require.Equal(t, "body.created_at", p.Errors[0].Location)
		require.Equal(t, `invalid created_at: in the future (got "`+ahead+`")`, p.Errors[0].Message)
	}
	require.Zero(t, s.count(t, "river_job WHERE queue = '"+pickeringest.Kind+"'"), "nothing enqueued")

	code, _, body := s.post(t, eventJSON(t, withField(statusChange("o-1"), "created_at", dbNow.Add(2*time.Minute).UTC().Format(time.RFC3339))), apptest.Internal())
	require.Equal(t, http.StatusAccepted, code, string(body))
}

func TestPostEventNeedsTheToken(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	body := eventJSON(t, statusChange("o-1"))
	code, h, _ := s.post(t, body, nil)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, h.Get("WWW-Authenticate"), "Bearer")
	code, _, _ = s.post(t, body, map[string]string{"Authorization": "Bearer wrong"})
	require.Equal(t, http.StatusUnauthorized, code)
	// A forged form on another site, riding on a browser's cached Basic
	// credentials, must not enqueue an event.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+apptest.Token))
	code, _, resp := s.post(t, body, map[string]string{"Authorization": basic, "Sec-Fetch-Site": "cross-site"})
	require.Equal(t, http.StatusForbidden, code, string(resp))
	require.Contains(t, string(resp), "Bearer")
	require.Zero(t, s.count(t, "river_job"))
	code, _, resp = s.post(t, body, map[string]string{"Authorization": basic, "Sec-Fetch-Site": "same-origin"})
	require.Less(t, code, 300, string(resp))
	require.Equal(t, 1, s.count(t, "river_job"))

	off := start(t, map[string]string{"INTERNAL_API_TOKEN": ""})
	code, _, resp = off.post(t, body, apptest.Internal())
	require.Equal(t, http.StatusNotFound, code, string(resp))
	require.Zero(t, off.count(t, "river_job"))
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
