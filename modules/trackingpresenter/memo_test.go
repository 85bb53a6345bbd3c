package trackingpresenter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/modules/trackingpresenter/internal/statecache"
	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// memoKit is a presenter on a fresh database with the real state cache
// (its change feed LISTENing), the stream hub, an experiments file, and
// two servers: the route as registered (fast path) and the same presenter
// with the cache off (huma encoding every answer, today's path).
type memoKit struct {
	db       *sqlx.DB
	p        *presenter
	exps     *experiments.Store
	expsPath string
	phones   *lockedPhones
	fast     *httptest.Server
	huma     *httptest.Server
	spans    *tracetest.InMemoryExporter // the fast server's
	httpReg  *prometheus.Registry        // the fast server's request metrics
	// beforeStore, when set, runs as the presenter's beforeMemoStore (set
	// before the servers start, so their goroutines see it).
	beforeStore atomic.Pointer[func(eater string)]
}

const memoExperiments = `
experiments:
  eats_orders_tracking_retail_call_picker:
    default: {enabled: true}
    clauses:
      - name: off
        if: {eater_id: {in: [no-call]}}
        value: {enabled: false}
  eats_orders_tracking_retail_contact_us:
    default: {enabled: true}
`

func newMemoKit(t *testing.T) *memoKit {
	t.Helper()
	db, dsn := pgtest.Open(t)
	k := &memoKit{db: db, phones: &lockedPhones{m: fakePhones{}}, expsPath: filepath.Join(t.TempDir(), "experiments.yaml")}
	require.NoError(t, os.WriteFile(k.expsPath, []byte(memoExperiments), 0o600))
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	m, err := newMetrics(reg)
	require.NoError(t, err)
	k.exps, err = experiments.NewStore(experiments.StoreParams{Path: k.expsPath, Registerer: reg,
		Definitions: []experiments.Definition{CallPicker.Definition(), ContactUs.Definition()}})
	require.NoError(t, err)
	require.NoError(t, k.exps.Load())
	cfg, err := parseConfig(nil)
	require.NoError(t, err)
	hub := newStreamHub(cfg, m, logger)
	st := newStore(db, k.phones)
	cache, err := statecache.New(statecache.Options[orderState]{Entries: 1000, MaxAge: time.Minute, DSN: dsn,
		Load: st.loadAll, Registerer: reg, Logger: logger, OnChange: hub.changed})
	require.NoError(t, err)
	texts, err := loadCatalog(messageFiles)
	require.NoError(t, err)
	k.p = &presenter{store: st, cache: cache, hub: hub, log: logger, metrics: m, now: time.Now,
		render: renderer{texts: texts, experiments: k.exps, maxOrders: 50}}
	k.p.beforeMemoStore = func(eater string) {
		if f := k.beforeStore.Load(); f != nil {
			(*f)(eater)
		}
	}
	hub.p = k.p
	ctx := context.Background()
	require.NoError(t, cache.Start(ctx))
	require.NoError(t, hub.start(ctx))
	t.Cleanup(func() {
		require.NoError(t, hub.shutdown(ctx))
		require.NoError(t, cache.Stop(ctx))
	})
	// Both servers as the service wraps its routes: request metrics per
	// route, the internal guard, and tracing.
	serve := func(p *presenter, reg *prometheus.Registry, spans *tracetest.InMemoryExporter) *httptest.Server {
		mux := http.NewServeMux()
		_, err := httpapi.NewAPI(httpapi.APIParams{Mux: mux, Registry: reg, Operations: []httpapi.Operations{p.register}})
		require.NoError(t, err)
		s := httptest.NewServer(httpapi.Traced(mux, sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))))
		t.Cleanup(s.Close)
		return s
	}
	k.spans, k.httpReg = tracetest.NewInMemoryExporter(), prometheus.NewRegistry()
	k.fast = serve(k.p, k.httpReg, k.spans)
	off := *k.p
	off.cache = nil
	k.huma = serve(&off, prometheus.NewRegistry(), tracetest.NewInMemoryExporter())
	// Nothing is served from memory until the feed proves itself.
	pgtest.Eventually(t, 10*time.Second, func() bool { return cache.Lag(time.Now()) >= 0 }, "the change feed is proven")
	return k
}

// lockedPhones are fakePhones a test adds to while the cache loads.
type lockedPhones struct {
	mu sync.Mutex
	m  fakePhones
}

func (l *lockedPhones) set(nr, picker, number string, expires time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[tracking.PhoneKey{OrderNr: nr, PickerID: picker}] = tracking.Phone{Number: number, ExpiresAt: expires}
}

func (l *lockedPhones) LookupMany(ctx context.Context, db sqlx.QueryerContext, keys []tracking.PhoneKey, now time.Time) (map[tracking.PhoneKey]tracking.Phone, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m.LookupMany(ctx, db, keys, now)
}

// settle waits until the feed has applied everything committed before.
func (k *memoKit) settle(t *testing.T) {
	t.Helper()
	written := time.Now()
	pgtest.Eventually(t, 10*time.Second, func() bool {
		now := time.Now()
		lag := k.p.cache.Lag(now)
		return lag >= 0 && now.Add(-lag).After(written)
	}, "the change feed passes the writes")
}

func (k *memoKit) memo(result string) int {
	var m dto.Metric
	if err := k.p.metrics.memo.WithLabelValues(result).Write(&m); err != nil {
		panic(err)
	}
	return int(m.GetCounter().GetValue())
}

// value reads a counter.
func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

type response struct {
	code   int
	header http.Header
	body   string
}

func get(t *testing.T, base string, headers map[string]string) response {
	t.Helper()
	r, err := tryGet(base, headers)
	require.NoError(t, err)
	return r
}

// tryGet polls the route; any goroutine may call it.
func tryGet(base string, headers map[string]string) (response, error) {
	req, err := http.NewRequest(http.MethodGet, base+trackingPath, nil)
	if err != nil {
		return response{}, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	h := resp.Header.Clone()
	h.Del("Date")
	return response{code: resp.StatusCode, header: h, body: string(b)}, nil
}

func (k *memoKit) insertOrder(t *testing.T, nr, eater, flow, status string, at time.Time) {
	t.Helper()
	_, err := k.db.Exec(`
INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at)
VALUES ($1, $2, jsonb_build_object('flow_type', $3::text, 'status', $4::text,
        'place', jsonb_build_object('id', '40', 'name', 'Shop <40> & "co"', 'phone', '+79990000040,,7'),
        'courier', jsonb_build_object('name', 'C', 'phone', '+79990000009'),
        'eta', '2030-01-01T10:00:00.5Z'), $5::timestamptz, $5::timestamptz - interval '1 hour')
ON CONFLICT (order_nr) DO UPDATE SET payload = EXCLUDED.payload, event_at = EXCLUDED.event_at`,
		nr, eater, flow, status, at)
	require.NoError(t, err)
}

func (k *memoKit) insertPicker(t *testing.T, nr, picker, status string) {
	t.Helper()
	_, err := k.db.Exec(`
INSERT INTO picker_orders (order_nr, payload, status_event_at)
VALUES ($1, jsonb_build_object('picker_id', $2::text, 'status', $3::text,
        'status_history', jsonb_build_object('picking_at', '2026-01-01T00:00:00Z')), now())
ON CONFLICT (order_nr) DO UPDATE SET payload = EXCLUDED.payload`, nr, picker, status)
	require.NoError(t, err)
}

// statusesOf is the cards' statuses listed in a body, in order (not the
// orders' own, inside "order").
func statusesOf(body string) []string {
	var out []string
	for _, part := range strings.Split(body, `},"status":"`)[1:] {
		out = append(out, part[:strings.IndexByte(part, '"')])
	}
	return out
}

// The fast path writes what huma writes: status, headers and body byte for
// byte, for several eaters, languages and states, from the memo's first
// build and from its bytes; errors and the answer without identity are
// huma's own on both.
func TestMemoAnswerIsHumasAnswer(t *testing.T) {
	t.Parallel()
	k := newMemoKit(t)
	now := time.Now()
	k.insertOrder(t, "p2", "e-p2", "retail", "place_confirmed", now)
	k.insertPicker(t, "p2", "pk1", "picking")
	k.phones.set("p2", "pk1", "+79991234567,,123", now.Add(time.Hour))
	k.insertOrder(t, "p1", "no-call", "retail", "place_confirmed", now)
	k.insertPicker(t, "p1", "pk1", "picking")
	k.phones.set("p1", "pk1", "+79991234567", now.Add(time.Hour))
	k.insertOrder(t, "m1", "e-many", "native", "taken", now)
	k.insertOrder(t, "m2", "e-many", "shop", "created", now.Add(time.Second))
	k.insertOrder(t, "m3", "e-many", "native", "delivered", now.Add(-5*time.Minute))
	k.insertOrder(t, "m4", "e-many", "pickup", "cancelled", now.Add(-time.Minute))
	k.settle(t)

	var cases []map[string]string
	for _, eater := range []string{"e-p2", "no-call", "e-many", "nobody"} {
		for _, lang := range []string{"", "en-GB", "ru"} {
			h := map[string]string{"X-Eats-User": "user_id=" + eater}
			if lang != "" {
				h["X-Request-Language"] = lang
			}
			cases = append(cases, h)
		}
	}
	cases = append(cases,
		map[string]string{"X-YaTaxi-User": "eats_user_id=e-p2", "Accept": "application/json"},
		map[string]string{"X-Eats-User": "user_id=e-many", "Accept": "text/html, */*;q=0.1"},
		map[string]string{},                                    // no identity: the empty list
		map[string]string{"X-Eats-User": "user_id="},           // 400
		map[string]string{"X-Eats-User": "garbage, user_id=1"}, // 400
	)
	hits, misses := k.memo(memoHit), k.memo(memoMiss)
	for _, h := range cases {
		want := get(t, k.huma.URL, h)
		for i := range 3 { // a state-cache miss (huma), the memo's build, its bytes
			got := get(t, k.fast.URL, h)
			require.Equal(t, want, got, "%v, request %d", h, i+1)
		}
	}
	require.Greater(t, k.memo(memoMiss), misses, "answers were built into the memo")
	require.Greater(t, k.memo(memoHit)-hits, 2*len(cases)/3, "answers were served from the memo")
	require.Equal(t, []string{"picker_call"}, statusesOf(get(t, k.fast.URL, cases[0]).body))
	require.Equal(t, []string{"picker_contact_us"}, statusesOf(get(t, k.fast.URL, cases[3]).body))
	require.Positive(t, value(t, k.p.metrics.cache.WithLabelValues(string(statecache.Hit))))
}

// A change committed and applied while an answer is being built and
// stored (the two writes racing): the old bytes are not kept, so every
// answer asked after the change was applied shows it; both when the entry
// was only dropped and when it was refilled meanwhile.
func TestMemoNeverKeepsAnswersOfAnOlderEntry(t *testing.T) {
	t.Parallel()
	k := newMemoKit(t)
	for _, refill := range []bool{false, true} {
		eater := fmt.Sprintf("e-race-%v", refill)
		nr := "race-" + eater
		h := map[string]string{"X-Eats-User": "user_id=" + eater}
		k.insertOrder(t, nr, eater, "native", "created", time.Now())
		k.settle(t)
		require.Equal(t, http.StatusOK, get(t, k.fast.URL, h).code) // fills the entry (huma)

		// The build stops before it stores; the change is committed and
		// applied (and, with refill, the entry filled again) meanwhile.
		reached, proceed := make(chan struct{}), make(chan struct{})
		var once sync.Once
		hook := func(e string) {
			if e == eater {
				once.Do(func() { close(reached); <-proceed })
			}
		}
		k.beforeStore.Store(&hook)
		answered := make(chan response, 1)
		go func() {
			r, err := tryGet(k.fast.URL, h)
			if err != nil {
				r.body = err.Error()
			}
			answered <- r
		}()
		select {
		case <-reached:
		case <-time.After(10 * time.Second):
			t.Fatal("the answer was not built into the memo")
		}
		k.insertOrder(t, nr, eater, "native", "taken", time.Now())
		pgtest.Eventually(t, 10*time.Second, func() bool {
			_, _, _, res := k.p.cache.Lookup(eater, "", time.Now())
			return res != statecache.Hit
		}, "the change is applied")
		if refill {
			_, err := k.p.states(context.Background(), eater, time.Now())
			require.NoError(t, err)
		}
		close(proceed)
		// Built from the entry before the change: it shows "created" (it
		// was asked before the change was applied), but is not kept.
		require.Equal(t, []string{"created"}, statusesOf((<-answered).body))
		k.beforeStore.Store(nil)
		for range 3 {
			require.Equal(t, []string{"taken"}, statusesOf(get(t, k.fast.URL, h).body), "refill %v", refill)
		}
	}
}

// The served body changes at the time the answer changes by itself, with
// no change committed: a phone's expiry (P2 to P1) and a delivered order's
// 15-minute mark (its entry lives on; the memo must not). Before those
// times the memo serves it.
func TestMemoEndsWhenTheAnswerChangesByItself(t *testing.T) {
	t.Parallel()
	k := newMemoKit(t)
	for _, tc := range []struct {
		name         string
		setup        func(eater string, at time.Time) // the answer changes at at
		before, then []string
	}{
		{"phone", func(eater string, at time.Time) {
			k.insertOrder(t, "ph-"+eater, eater, "retail", "place_confirmed", time.Now())
			k.insertPicker(t, "ph-"+eater, "pk1", "picking")
			k.phones.set("ph-"+eater, "pk1", "+79991234567", at)
		}, []string{"picker_call"}, []string{"picker_contact_us"}},
		{"15-minute mark", func(eater string, at time.Time) {
			k.insertOrder(t, "dl-"+eater, eater, "native", "delivered", at.Add(-finishedVisible))
		}, []string{"delivered"}, nil},
	} {
		// The answer must still be the first one once the memo holds it;
		// on a busy machine that takes a while, so the life doubles until
		// it is.
		served := false
		for attempt, life := 0, 3*time.Second; attempt < 4 && !served; attempt, life = attempt+1, 2*life {
			eater := fmt.Sprintf("e-%s-%d", strings.ReplaceAll(tc.name, " ", "-"), attempt)
			at := time.Now().Add(life)
			tc.setup(eater, at)
			k.settle(t)
			h := map[string]string{"X-Eats-User": "user_id=" + eater}
			hits := k.memo(memoHit)
			for time.Now().Before(at.Add(time.Second)) {
				sent := time.Now()
				got := statusesOf(get(t, k.fast.URL, h).body)
				done := time.Now()
				switch {
				case done.Before(at):
					require.Equal(t, tc.before, got, "%s: asked %s before", tc.name, at.Sub(sent))
				case !sent.Before(at):
					require.Equal(t, tc.then, got, "%s: asked %s after", tc.name, sent.Sub(at))
				}
				time.Sleep(20 * time.Millisecond)
			}
			served = k.memo(memoHit) > hits+5
		}
		require.True(t, served, "%s: never served from the memo before the change", tc.name)
	}
}

// An experiments reload changes the served body at once: the memo is keyed
// by the set's version.
func TestMemoFollowsAnExperimentsReload(t *testing.T) {
	t.Parallel()
	k := newMemoKit(t)
	k.insertOrder(t, "x1", "e-exp", "retail", "place_confirmed", time.Now())
	k.insertPicker(t, "x1", "pk1", "picking")
	k.phones.set("x1", "pk1", "+79991234567", time.Now().Add(time.Hour))
	k.settle(t)
	h := map[string]string{"X-Eats-User": "user_id=e-exp"}
	for range 3 {
		require.Equal(t, []string{"picker_call"}, statusesOf(get(t, k.fast.URL, h).body))
	}
	hits := k.memo(memoHit)
	require.Equal(t, []string{"picker_call"}, statusesOf(get(t, k.fast.URL, h).body))
	require.Equal(t, hits+1, k.memo(memoHit), "served from the memo")

	time.Sleep(10 * time.Millisecond) // a distinct load time on any clock
	require.NoError(t, os.WriteFile(k.expsPath, []byte(strings.Replace(memoExperiments, "default: {enabled: true}", "default: {enabled: false}", 1)), 0o600))
	require.NoError(t, k.exps.Load())
	require.Equal(t, []string{"picker_contact_us"}, statusesOf(get(t, k.fast.URL, h).body))
	require.Equal(t, get(t, k.huma.URL, h), get(t, k.fast.URL, h))
}

// Streams take their frames from the same memo: the first frame builds the
// answer once, a poll then gets the same bytes without building it again,
// and a change builds it once more for both.
func TestMemoIsSharedByStreamsAndPolls(t *testing.T) {
	t.Parallel()
	k := newMemoKit(t)
	k.insertOrder(t, "s1", "e-stream", "native", "created", time.Now())
	k.settle(t)
	h := map[string]string{"X-Eats-User": "user_id=e-stream"}
	frame := func(s *stream) string {
		t.Helper()
		select {
		case <-s.wake:
		case <-time.After(10 * time.Second):
			t.Fatal("no frame")
		}
		body, _, _ := s.take()
		return string(body)
	}
	misses := k.memo(memoMiss)
	s, err := k.p.hub.open("e-stream", langRU, "", time.Now())
	require.NoError(t, err)
	t.Cleanup(func() { k.p.hub.close(s) })
	first := frame(s)
	require.Equal(t, misses+1, k.memo(memoMiss), "built once for the stream")
	hits := k.memo(memoHit)
	require.Equal(t, first+"\n", get(t, k.fast.URL, h).body)
	require.Equal(t, misses+1, k.memo(memoMiss), "the poll built nothing")
	require.Equal(t, hits+1, k.memo(memoHit))

	k.insertOrder(t, "s1", "e-stream", "native", "taken", time.Now())
	second := frame(s)
	require.Equal(t, []string{"taken"}, statusesOf(second))
	require.Equal(t, misses+2, k.memo(memoMiss), "built once more for the change")
	require.Equal(t, second+"\n", get(t, k.fast.URL, h).body)
	require.Equal(t, misses+2, k.memo(memoMiss))
	require.Positive(t, value(t, k.p.metrics.memo.WithLabelValues(memoHit)))
}

// Polls answered from the memo are requests of the route like any other:
// counted in its latency histogram and traced under its name.
func TestMemoServedPollsAreMeasuredAndTraced(t *testing.T) {
	t.Parallel()
	k := newMemoKit(t)
	k.insertOrder(t, "mt", "e-measured", "native", "created", time.Now())
	k.settle(t)
	h := map[string]string{"X-Eats-User": "user_id=e-measured"}
	for range 2 { // the fill, the memo's build
		get(t, k.fast.URL, h)
	}
	k.spans.Reset()
	hits := k.memo(memoHit)
	for range 5 {
		require.Equal(t, http.StatusOK, get(t, k.fast.URL, h).code)
	}
	require.Equal(t, hits+5, k.memo(memoHit), "served from the memo")

	spans := k.spans.GetSpans()
	require.Len(t, spans, 5)
	for _, s := range spans {
		require.Equal(t, "GET "+trackingPath, s.Name)
		route := ""
		for _, kv := range s.Attributes {
			if kv.Key == "http.route" {
				route = kv.Value.AsString()
			}
		}
		require.Equal(t, trackingPath, route)
	}
	families, err := k.httpReg.Gather()
	require.NoError(t, err)
	var count uint64
	for _, f := range families {
		if f.GetName() != "eot_http_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == "GET "+trackingPath && labels["code"] == "200" {
				count = m.GetHistogram().GetSampleCount()
			}
		}
	}
	require.Equal(t, uint64(7), count, "every poll measured under the route")
}
