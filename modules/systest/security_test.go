//go:build system

package systest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestInternalRoutesNeedTheToken: the internal endpoints, pprof and the job
// dashboard refuse requests without the token (401), accept it as a bearer
// token or a Basic-auth password, and do not exist (404) when the token is
// unset. The app's routes and the probes stay open.
func TestInternalRoutesNeedTheToken(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	on := b.proc("eot", nil)
	off := b.proc("eot-no-token", map[string]string{"INTERNAL_API_TOKEN": ""})
	on.spawn()
	off.spawn()
	on.waitReady(90 * time.Second)
	off.waitReady(90 * time.Second)

	event := []byte(`{"event_type": "STATUS_CHANGE", "order_nr": "sec-1", "order_status": "new", "place_id": "40", "created_at": "2025-01-01T10:00:00Z"}`)
	guarded := []struct {
		method, path string
		body         []byte
		ok           int
	}{
		{http.MethodPost, eventsPath, event, http.StatusAccepted},
		{http.MethodGet, "/internal/eats-orders-tracking/v1/experiments", nil, http.StatusOK},
		{http.MethodGet, "/debug/pprof/", nil, http.StatusOK},
		{http.MethodGet, "/debug/pprof/heap", nil, http.StatusOK},
		{http.MethodGet, "/debug/pprof/goroutine?debug=1", nil, http.StatusOK},
		{http.MethodGet, "/debug/pprof/cmdline", nil, http.StatusOK},
		{http.MethodGet, "/riverui/", nil, http.StatusOK},
		{http.MethodGet, "/riverui/api/jobs?state=available&limit=5", nil, http.StatusOK},
		{http.MethodGet, "/riverui/api/queues", nil, http.StatusOK},
	}
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	refusals := []struct{ name, authorization string }{
		{"no Authorization", ""},
		{"a wrong bearer token", "Bearer wrong-token"},
		{"the token with a suffix", "Bearer " + token + "x"},
		{"a prefix of the token", "Bearer " + token[:len(token)-1]},
		{"an empty bearer token", "Bearer "},
		{"the token without the scheme", token},
		{"Basic with a wrong password", basic("operator", "wrong")},
		{"Basic with the token as the user", basic(token, "")},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(p *proc, method, path string, body []byte, authorization string) (int, string, []byte) {
		req, err := http.NewRequest(method, p.URL+path, bytes.NewReader(body))
		require.NoError(t, err)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), b
	}
	checked := 0
	for _, g := range guarded {
		for _, r := range refusals {
			code, ctype, body := do(on, g.method, g.path, g.body, r.authorization)
			require.Equal(t, http.StatusUnauthorized, code, "%s %s with %s: %.200s", g.method, g.path, r.name, body)
			require.Equal(t, "application/problem+json", ctype, "%s %s with %s", g.method, g.path, r.name)
			require.NotContains(t, string(body), token, "the answer must not echo the token")
			checked++
		}
		code, _, body := do(on, g.method, g.path, g.body, "Bearer "+token)
		require.Equal(t, g.ok, code, "%s %s with the token: %.200s", g.method, g.path, body)
		code, _, body = do(on, g.method, g.path, g.body, basic("operator", token))
		require.Equal(t, g.ok, code, "%s %s with the token as the Basic password: %.200s", g.method, g.path, body)
		for _, auth := range []string{"", "Bearer " + token, "Bearer "} {
			code, _, body = do(off, g.method, g.path, g.body, auth)
			require.Equal(t, http.StatusNotFound, code, "%s %s on a process without a token (Authorization %q): %.200s", g.method, g.path, auth, body)
			checked++
		}
		checked += 2
	}
	// Open to all, on both: the app's endpoint, the probes, metrics, the spec.
	for _, path := range []string{trackingPath, "/healthz", "/readyz", "/metrics", "/openapi.yaml"} {
		for _, p := range []*proc{on, off} {
			code, _, body := do(p, http.MethodGet, path, nil, "")
			require.Equal(t, http.StatusOK, code, "%s on %s: %.200s", path, p.name, body)
		}
	}
	// Nothing the refused requests sent was enqueued.
	var n int
	require.NoError(t, b.db.Get(&n, `SELECT count(*) FROM river_job WHERE args->>'order_nr' = 'sec-1'`))
	require.Equal(t, 2, n, "exactly the two authorized POSTs enqueued an event")
	on.requireAlive(t)
	off.requireAlive(t)
	result(t, "%d guarded routes (internal events and experiments, pprof, riverui pages and API): %d refused requests all 401 problem+json "+
		"(no token, wrong, prefixed, suffixed, empty, schemeless, Basic with a wrong password); bearer and Basic with the token 2xx; "+
		"token unset: 404 with or without a token; tracking, probes, metrics and the spec open; only the 2 authorized POSTs enqueued",
		len(guarded), checked-3*len(guarded)-2*len(guarded))
}

// TestTrackingShowsOnlyOwnOrders: under a steady stream of events and
// polls, no tracking answer to an eater contains an order or a phone of
// another eater — including orders that share a picker, each with its own
// forwarding number — and every eater's answer equals the model's.
func TestTrackingShowsOnlyOwnOrders(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	p := b.proc("eot", nil)
	p.start()
	w := b.world(40, 4)
	prod := newProducer(t, b.dsn, nil)

	orderRe := regexp.MustCompile(`ord-[0-9]{6}`)
	digitsRe := regexp.MustCompile(`[0-9]{9,}`)
	// isolation is the check of one answer: every order number and every
	// phone in the body belongs to the eater asked for.
	isolation := func(_ string, eater string, body []byte) error {
		for _, nr := range orderRe.FindAll(body, -1) {
			if owner := w.eaterOf(string(nr)); owner != eater {
				return fmt.Errorf("the answer to %s shows %s of %s", eater, nr, owner)
			}
		}
		for _, d := range digitsRe.FindAll(body, -1) {
			if owner, known := w.ownerOf(string(d)); known && owner != eater {
				return fmt.Errorf("the answer to %s shows a phone (…%s) of %s", eater, d[len(d)-4:], owner)
			}
		}
		return nil
	}
	poll := newPoller([]string{p.URL}, w.eaters, 200, 32)
	poll.check = isolation

	stop := startProducing(prod, 150, w.next)
	pollCtx, stopPolling := context.WithCancel(context.Background())
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); poll.run(pollCtx) }()
	steady(12 * time.Second)
	stop()
	waitDrained(t, b.db, time.Minute)
	stopPolling()
	<-pollDone
	dropped, errs := poll.problems()
	require.Empty(t, errs, "answers that show another eater's data")
	all := poll.all()
	require.Zero(t, all.Bad)

	jobs := prod.jobs()
	requireJobsDone(t, b.db, jobs)
	m := requireTablesMatch(t, b.db, jobs)
	views := b.requireViews(m, w.eaters, 10*time.Second, p)
	// Shared pickers: orders of different eaters with the same picker and
	// a phone each, so the check above had something to catch.
	shared := map[string]map[string]bool{}
	for k, ph := range m.phones {
		if strings.HasPrefix(k.pickerID, "pk-shared-") && ph.expiresAt.After(time.Now()) {
			if shared[k.pickerID] == nil {
				shared[k.pickerID] = map[string]bool{}
			}
			shared[k.pickerID][w.eaterOf(k.orderNr)] = true
		}
	}
	sharedAcross := 0
	for _, eaters := range shared {
		if len(eaters) > 1 {
			sharedAcross++
		}
	}
	require.Positive(t, sharedAcross, "no picker with valid phones on orders of two eaters: the scenario tests nothing")

	// The other identity headers name the same eater and get the same answer.
	for _, eater := range w.eaters[:5] {
		want := m.view(eater, time.Now())
		for _, h := range []map[string]string{
			{"X-YaTaxi-User": "eats_user_id=" + eater},
			{"X-Eats-User": "partner_user_id=" + eater},
			{"X-Eats-User": "personal_phone_id=x, user_id=" + eater + ", locale=ru"},
			{"X-Eats-User": "user_id=" + eater, "X-YaTaxi-User": "eats_user_id=" + w.eaters[len(w.eaters)-1]},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			code, body, err := p.get(ctx, trackingPath, h)
			cancel()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, code)
			require.NoError(t, isolation("", eater, body), "headers %v", h)
			var a trackingAnswer
			jsonOK(t, body, &a)
			got, problems := a.cards()
			require.Empty(t, problems)
			require.Empty(t, cardsDiff(want, got), "headers %v", h)
		}
	}
	p.requireAlive(t)
	result(t, "%d polls for %d eaters during %d events, each checked: no order number or phone of another eater (%d pickers carried phones on orders of several eaters); "+
		"%d answers after the run = model; X-YaTaxi-User, partner_user_id and extra k=v pairs name the same eater; %d polls dropped by the load generator",
		all.N, len(w.eaters), len(jobs), sharedAcross, views, dropped)
}
