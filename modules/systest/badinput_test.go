//go:build system

package systest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// badCase is one way to break an event: the queue, the field the error must
// name, and how to break a valid event's fields (returning the args as any
// JSON value, so non-objects can be sent too).
type badCase struct {
	queue string
	field string
	name  string
	// phone is true for the picker cases that start from a valid
	// PICKER_PHONE_FORWARDING_READY rather than a STATUS_CHANGE.
	phone bool
	// httpOnly: PostgreSQL's jsonb cannot hold the value (a NUL), so no
	// job can carry it; only the HTTP endpoint can receive it.
	httpOnly bool
	make     func(r *rand.Rand, f map[string]any) any
}

// set returns a mutation that sets path (dotted, one level into an object)
// to v.
func set(path string, v func(r *rand.Rand) any) func(*rand.Rand, map[string]any) any {
	return func(r *rand.Rand, f map[string]any) any {
		parent, key := f, path
		if p, k, nested := strings.Cut(path, "."); nested {
			parent, key = f[p].(map[string]any), k
		}
		parent[key] = v(r)
		return f
	}
}

// del returns a mutation that removes path.
func del(path string) func(*rand.Rand, map[string]any) any {
	return func(_ *rand.Rand, f map[string]any) any {
		if p, k, nested := strings.Cut(path, "."); nested {
			delete(f[p].(map[string]any), k)
		} else {
			delete(f, path)
		}
		return f
	}
}

func is(v any) func(*rand.Rand) any { return func(*rand.Rand) any { return v } }

func oneOf(vs ...any) func(*rand.Rand) any {
	return func(r *rand.Rand) any { return vs[r.IntN(len(vs))] }
}

// randomText is n bytes of letters and digits: long values that neither
// compress nor repeat.
func randomText(r *rand.Rand, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func huge(min, max int) func(*rand.Rand) any {
	return func(r *rand.Rand) any { return randomText(r, min+r.IntN(max-min+1)) }
}

const fwd = "customer_picker_phone_forwarding"

// badPhones are values that are not phones; the long ones must show only
// their last four digits wherever they are quoted.
var badPhones = []any{"abc", "+1234", "+7999123456789012345", "+7999,,", "+79991234567,,12345678901", "7 999 abc 45 67",
	"+", "++79991234567", "79991234567;ext=1", "+7999-123-45-67#", "８９９９１２３４５６７"}

// registerBadPhones adds the digits of the phone-like bad values to the
// numbers no log line may hold in full.
func registerBadPhones(b *bundle) {
	digits := regexp.MustCompile(`[0-9]{9,}`)
	for _, bp := range badPhones {
		s := asciiDigits(bp.(string))
		for _, d := range digits.FindAllString(s, -1) {
			b.extra[d] = bp.(string)
		}
	}
}

// badCases lists the ways to break an event, by queue. Every field of both
// contracts is broken at least once: missing, empty, of another JSON type,
// out of its enum, malformed, too long, or with an extra field where none
// is allowed.
func badCases() []badCase {
	var cs []badCase
	pick := func(field, name string, phone bool, mk func(*rand.Rand, map[string]any) any) {
		cs = append(cs, badCase{queue: pickerQueue, field: field, name: name, phone: phone, make: mk})
	}
	order := func(field, name string, mk func(*rand.Rand, map[string]any) any) {
		cs = append(cs, badCase{queue: ordersQueue, field: field, name: name, make: mk})
	}
	notObject := func(v func(*rand.Rand) any) func(*rand.Rand, map[string]any) any {
		return func(r *rand.Rand, _ map[string]any) any { return v(r) }
	}
	types := oneOf(1, 2.5, true, []any{}, []any{"x"}, map[string]any{})

	pick("event_type", "missing", false, del("event_type"))
	pick("event_type", "empty", false, set("event_type", is("")))
	pick("event_type", "not a string", false, set("event_type", types))
	pick("order_nr", "missing", false, del("order_nr"))
	pick("order_nr", "empty", false, set("order_nr", is("")))
	pick("order_nr", "not a string", false, set("order_nr", types))
	pick("order_nr", "too long", false, set("order_nr", huge(257, 100_000)))
	cs = append(cs, badCase{queue: pickerQueue, field: "order_nr", name: "NUL", httpOnly: true, make: set("order_nr", is("ord-\u0000-1"))})
	cs = append(cs, badCase{queue: pickerQueue, field: "picker_id", name: "NUL", httpOnly: true, make: set("picker_id", is("pk\u0000"))})
	pick("order_status", "missing", false, del("order_status"))
	pick("order_status", "empty", false, set("order_status", is("")))
	pick("order_status", "unknown", false, set("order_status", oneOf("eating", "PICKING", "picking ", "done", "assigned\u00a0")))
	pick("order_status", "not a string", false, set("order_status", types))
	pick("place_id", "missing", false, del("place_id"))
	pick("place_id", "not a string", false, set("place_id", oneOf(40, 40.5, false, []any{"40"})))
	pick("place_id", "too long", false, set("place_id", huge(257, 2000)))
	pick("place_id", "a megabyte", false, set("place_id", huge(1<<20, 1<<20)))
	pick("customer_id", "not a string", false, set("customer_id", types))
	pick("customer_id", "too long", false, set("customer_id", huge(257, 5000)))
	pick("picker_id", "not a string", false, set("picker_id", types))
	pick("picker_id", "too long", false, set("picker_id", huge(257, 5000)))
	pick("picker_id", "missing in a phone event", true, del("picker_id"))
	pick("created_at", "malformed", false, set("created_at", oneOf("yesterday", "2025-02-30T00:00:00Z", "2025-01-01", "2025-01-01 10:00:00",
		"2025-01-01T10:00:00", "10000-01-01T00:00:00Z", "")))
	pick("created_at", "not a string", false, set("created_at", oneOf(1700000000, true, map[string]any{"seconds": 1})))
	pick("created_at", "year 0", false, set("created_at", is("0000-06-01T00:00:00Z")))
	pick(fwd, "missing in a phone event", true, del(fwd))
	pick(fwd, "not an object", true, set(fwd, oneOf("+79991234567", []any{}, 42, true)))
	pick(fwd+".extension", "extra field", true, set(fwd+".extension", is("1234")))
	pick(fwd+".ttl", "extra field", true, set(fwd+".ttl", is(600)))
	pick(fwd+".phone", "missing", true, del(fwd+".phone"))
	pick(fwd+".phone", "empty", true, set(fwd+".phone", is("")))
	pick(fwd+".phone", "not a phone", true, set(fwd+".phone", oneOf(badPhones...)))
	pick(fwd+".phone", "not a string", true, set(fwd+".phone", oneOf(79991234567, []any{"+79991234567"})))
	pick(fwd+".phone", "too long", true, set(fwd+".phone", huge(1000, 50_000)))
	pick(fwd+".expires_at", "missing", true, del(fwd+".expires_at"))
	pick(fwd+".expires_at", "malformed", true, set(fwd+".expires_at", oneOf("tomorrow", "2030-13-01T00:00:00Z", "2030-01-01", "")))
	pick(fwd+".expires_at", "not a string", true, set(fwd+".expires_at", oneOf(1900000000, false)))
	pick("event", "not an object", false, notObject(oneOf([]any{}, []any{1, 2}, "STATUS_CHANGE", 123, true, nil)))

	order("order_nr", "missing", del("order_nr"))
	order("order_nr", "empty", set("order_nr", is("")))
	order("order_nr", "not a string", set("order_nr", oneOf(123, true, []any{})))
	order("order_nr", "too long", set("order_nr", huge(10_000, 20_000)))
	order("eater_id", "missing", del("eater_id"))
	order("eater_id", "not a string", set("eater_id", oneOf(42, []any{"a"})))
	order("eater_id", "too long", set("eater_id", huge(10_000, 20_000)))
	order("flow_type", "missing", del("flow_type"))
	order("flow_type", "unknown", set("flow_type", oneOf("grocery", "RETAIL", "retail ")))
	order("flow_type", "not a string", set("flow_type", oneOf(1, false)))
	order("status", "missing", del("status"))
	order("status", "unknown", set("status", oneOf("eaten", "Delivered", "in_progress")))
	order("status", "not a string", set("status", oneOf(3, map[string]any{})))
	order("place", "missing", del("place"))
	order("place", "not an object", set("place", oneOf("Store 1", 40, []any{})))
	order("place.id", "missing", del("place.id"))
	order("place.id", "not a string", set("place.id", oneOf(40, true)))
	order("place.name", "missing", del("place.name"))
	order("place.name", "not a string", set("place.name", oneOf(1, []any{})))
	order("place.phone", "not a phone", set("place.phone", oneOf(badPhones...)))
	order("place.phone", "not a string", set("place.phone", is(79991234567)))
	order("courier", "not an object", set("courier", oneOf("Ivan", 1)))
	order("courier.name", "missing", func(r *rand.Rand, f map[string]any) any {
		f["courier"] = map[string]any{"phone": "+79990000000"}
		return f
	})
	order("courier.phone", "not a phone", func(r *rand.Rand, f map[string]any) any {
		f["courier"] = map[string]any{"name": "Ivan", "phone": badPhones[r.IntN(len(badPhones))]}
		return f
	})
	order("eta", "malformed", set("eta", oneOf("soon", "2030-01-01", "25:00")))
	order("eta", "not a string", set("eta", is(1900000000)))
	order("created_at", "missing", del("created_at"))
	order("created_at", "malformed", set("created_at", oneOf("yesterday", "2025-02-30T00:00:00Z", "")))
	order("created_at", "not a string", set("created_at", is(1700000000)))
	order("args", "not an object", notObject(oneOf([]any{}, "order", 5)))
	return cs
}

// malformed builds a broken job of case c from a valid event of the world.
func (w *world) malformed(c badCase) job {
	o := w.orders[w.rnd.IntN(len(w.orders))]
	var base map[string]any
	switch {
	case c.queue == ordersQueue:
		base = w.snapshot(o).Order.fields()
	case c.phone:
		// a fresh phone: the event is never applied, and its number must
		// not reach a log either
		base = w.phoneReady(o).Picker.fields()
	default:
		e := w.statusChange(o).Picker
		e.PickerID = o.pickers[0]
		base = e.fields()
	}
	seq := w.nextSeq()
	v := c.make(w.rnd, base)
	if m, ok := v.(map[string]any); ok {
		m[seqField] = seq
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return job{Seq: seq, Queue: c.queue, Args: b, Bad: c.field}
}

// TestMalformedJobs interleaves more than a thousand broken jobs of every
// kind with valid events: each broken one must end cancelled with an error
// that names its field, every valid one must be applied as the model says,
// the counters must count them exactly, and no process may die.
func TestMalformedJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	p := b.proc("eot", nil)
	p.start()
	w := b.world(30, 5)
	registerBadPhones(b)
	var cases []badCase
	for _, c := range badCases() {
		if !c.httpOnly {
			cases = append(cases, c)
		}
	}
	const malformedN = 1200
	var stream []job
	for i := range malformedN {
		stream = append(stream, w.malformed(cases[i%len(cases)]))
	}
	for range malformedN {
		stream = append(stream, w.next())
	}
	w.rnd.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
	next := func() job {
		if len(stream) == 0 {
			return w.next()
		}
		j := stream[0]
		stream = stream[1:]
		return j
	}
	before, err := p.scrape(context.Background())
	require.NoError(t, err)
	prod := newProducer(t, b.dsn, nil)
	stop := startProducing(prod, 300, next)
	steady(time.Duration(2*malformedN/300+1) * time.Second)
	stop()
	// Not waitDrained: a malformed job that is retried instead of cancelled
	// would keep the queue busy for days; requireJobsDone names it.
	waitSettled(t, b.db, 2*time.Minute)

	jobs := prod.jobs()
	byField := map[string]int{}
	badPicker, badOrders := 0, 0
	for _, j := range jobs {
		switch {
		case j.good():
		case j.Queue == pickerQueue:
			badPicker++
			byField[j.Bad]++
		default:
			badOrders++
			byField[j.Queue+" "+j.Bad]++
		}
	}
	require.GreaterOrEqual(t, badPicker+badOrders, 1000)
	t.Logf("produced %d malformed jobs (%d picker events, %d order events; %d ways of breaking %d fields) among %d valid events",
		badPicker+badOrders, badPicker, badOrders, len(cases), len(byField), len(jobs)-badPicker-badOrders)
	rep := requireJobsDone(t, b.db, jobs)
	after, err := p.scrape(context.Background())
	require.NoError(t, err)
	counted := func(name string, labels map[string]string) int {
		return int(after.sum(name, labels) - before.sum(name, labels))
	}
	require.Equal(t, badPicker, counted("eot_picker_events_total", map[string]string{"outcome": "cancelled"}),
		"eot_picker_events_total{outcome=cancelled} counts every broken picker event once")
	require.Equal(t, badOrders, counted("eot_order_ingest_events_total", map[string]string{"outcome": "invalid"}),
		"eot_order_ingest_events_total{outcome=invalid} counts every broken order event once")
	require.Equal(t, badPicker+badOrders, counted("eot_river_jobs_worked_total", map[string]string{"outcome": "cancelled"}))

	// Errors quote the broken value, but a phone only by its last 4 digits.
	var errs []string
	require.NoError(t, b.db.Select(&errs, `SELECT COALESCE(errors[array_length(errors, 1)]->>'error', '') FROM river_job WHERE state = 'cancelled'`))
	for _, e := range errs {
		for _, bp := range badPhones {
			s, ok := bp.(string)
			if ok && len(s) > 8 && strings.Contains(e, s) {
				t.Errorf("a job error quotes a phone in full: %.300s", e)
			}
		}
	}
	m := requireTablesMatch(t, b.db, jobs)
	views := b.requireViews(m, w.eaters, 10*time.Second, p)
	p.requireAlive(t)
	_, good99, goodN := rep.apply(time.Time{}, time.Now())
	var fields []string
	for f, n := range byField {
		fields = append(fields, fmt.Sprintf("%s×%d", f, n))
	}
	sort.Strings(fields)
	result(t, "%d malformed jobs (%d picker events, %d order events; %d ways of breaking %d fields) interleaved with %d valid events: "+
		"every malformed one cancelled with its field named, counted exactly by eot_picker_events_total/eot_order_ingest_events_total; "+
		"valid events applied (tables = model, %d tracking answers = model; apply p99 %s over %d); process alive. By field: %s",
		badPicker+badOrders, badPicker, badOrders, len(cases), len(byField), len(jobs)-badPicker-badOrders, views,
		good99.Round(time.Millisecond), goodN, strings.Join(fields, ", "))
}

// request is one malformed HTTP request and what must come back.
type request struct {
	name    string
	method  string
	path    string
	headers map[string]string
	body    []byte
	// status is the answer wanted; 0 means any 4xx.
	status int
	// problem: the answer must be application/problem+json with this
	// status; where (when set) must be one of errors[].location.
	problem bool
	where   string
}

// TestMalformedRequests sends bad requests of every kind to one process:
// each gets a 4xx (never a 5xx) with a problem+json body that says what is
// wrong, where the request reaches the API.
func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	p := b.proc("eot", nil)
	p.start()
	w := b.world(5, 2)
	registerBadPhones(b)
	auth := map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}
	var reqs []request

	// Identity headers (the gateway's, DESIGN §4.1).
	for _, h := range []struct{ header, value, where string }{
		{"X-Eats-User", "garbage", "header.X-Eats-User"},
		{"X-Eats-User", "user_id=", "header.X-Eats-User"},
		{"X-Eats-User", "user_id", "header.X-Eats-User"},
		{"X-Eats-User", "=42", "header.X-Eats-User"},
		{"X-Eats-User", "user_id=a=b", "header.X-Eats-User"},
		{"X-Eats-User", "user_id=1, user_id=2", "header.X-Eats-User"},
		{"X-Eats-User", "partner_user_id=", "header.X-Eats-User"},
		{"X-Eats-User", "user_id=1,,garbage", "header.X-Eats-User"},
		{"X-YaTaxi-User", "eats_user_id=", "header.X-YaTaxi-User"},
		{"X-YaTaxi-User", "eats_user_id", "header.X-YaTaxi-User"},
		{"X-YaTaxi-User", strings.Repeat("k=v,", 2000) + "x", "header.X-YaTaxi-User"},
		{"X-Eats-User", "user_id=" + strings.Repeat("a", 30_000) + "=", "header.X-Eats-User"},
	} {
		reqs = append(reqs, request{name: "identity " + h.header + ": " + trunc(h.value, 40), method: http.MethodGet, path: trackingPath,
			headers: map[string]string{h.header: h.value}, status: http.StatusBadRequest, problem: true, where: h.where})
	}
	// A header block over the server's limit: net/http answers 431 before
	// any handler runs (plain text, not problem+json).
	reqs = append(reqs, request{name: "identity header of 100 KB", method: http.MethodGet, path: trackingPath,
		headers: map[string]string{"X-Eats-User": "user_id=" + strings.Repeat("a", 100_000)}, status: http.StatusRequestHeaderFieldsTooLarge})
	reqs = append(reqs, request{name: "tracking with a body and a wrong method", method: http.MethodDelete, path: trackingPath, status: http.StatusMethodNotAllowed})

	// Bodies for the internal endpoint: every broken picker event.
	bodies := 0
	for i, c := range badCases() {
		if c.queue != pickerQueue {
			continue
		}
		for k := range 8 {
			j := w.malformed(c)
			r := request{name: fmt.Sprintf("event %s (%s) #%d", c.field, c.name, i*8+k), method: http.MethodPost, path: eventsPath,
				headers: auth, body: j.Args, status: http.StatusUnprocessableEntity, problem: true, where: "body." + c.field}
			if c.field == "event" {
				r.where = "body"
			}
			if len(j.Args) > 64<<10 {
				r.status, r.where = http.StatusRequestEntityTooLarge, ""
			}
			reqs = append(reqs, r)
			bodies++
		}
	}
	for _, bad := range []struct {
		name   string
		body   string
		ctype  string
		status int
	}{
		{"truncated JSON", `{"event_type": "STATUS_CHANGE", "order_nr":`, "application/json", http.StatusUnprocessableEntity},
		{"not JSON", `event_type=STATUS_CHANGE`, "application/json", http.StatusUnprocessableEntity},
		{"empty body", ``, "application/json", http.StatusBadRequest},
		{"form content type", `{}`, "application/x-www-form-urlencoded", http.StatusUnprocessableEntity},
		{"XML", `<event/>`, "application/xml", http.StatusUnprocessableEntity},
		{"invalid UTF-8", "{\"event_type\": \"STATUS_CHANGE\", \"order_nr\": \"\xff\xfe\"}", "application/json", http.StatusUnprocessableEntity},
		{"deep nesting", strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000), "application/json", http.StatusUnprocessableEntity},
		{"70 KB body", `{"event_type": "ITEM_ADD", "x": "` + strings.Repeat("a", 70_000) + `"}`, "application/json", http.StatusRequestEntityTooLarge},
	} {
		reqs = append(reqs, request{name: "body: " + bad.name, method: http.MethodPost, path: eventsPath,
			headers: map[string]string{"Authorization": "Bearer " + token, "Content-Type": bad.ctype}, body: []byte(bad.body),
			status: bad.status, problem: true})
	}
	reqs = append(reqs, request{name: "GET on the events endpoint", method: http.MethodGet, path: eventsPath, headers: auth, status: http.StatusMethodNotAllowed})

	client := &http.Client{Timeout: 10 * time.Second}
	codes := map[int]int{}
	problems := 0
	for _, r := range reqs {
		req, err := http.NewRequest(r.method, p.URL+r.path, bytes.NewReader(r.body))
		require.NoError(t, err)
		for k, v := range r.headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		require.NoError(t, err, r.name)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		codes[resp.StatusCode]++
		require.Less(t, resp.StatusCode, 500, "%s: %d %.300s", r.name, resp.StatusCode, body)
		require.GreaterOrEqual(t, resp.StatusCode, 400, "%s: %d %.300s", r.name, resp.StatusCode, body)
		if r.status != 0 {
			require.Equal(t, r.status, resp.StatusCode, "%s: %.300s", r.name, body)
		}
		if !r.problem {
			continue
		}
		problems++
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), r.name)
		var pr struct {
			Title  string `json:"title"`
			Status int    `json:"status"`
			Detail string `json:"detail"`
			Errors []struct {
				Message  string `json:"message"`
				Location string `json:"location"`
			} `json:"errors"`
		}
		require.NoError(t, json.Unmarshal(body, &pr), "%s: %.300s", r.name, body)
		require.Equal(t, resp.StatusCode, pr.Status, r.name)
		require.NotEmpty(t, pr.Title, r.name)
		require.NotEmpty(t, pr.Detail, r.name)
		if r.where != "" {
			var locs []string
			for _, e := range pr.Errors {
				require.NotEmpty(t, e.Message, r.name)
				locs = append(locs, e.Location)
			}
			require.Contains(t, locs, r.where, "%s: %.400s", r.name, body)
		}
		for _, bp := range badPhones {
			if s, ok := bp.(string); ok && len(s) > 8 && bytes.Contains(body, []byte(s)) {
				t.Errorf("%s: the answer quotes a phone in full: %.300s", r.name, body)
			}
		}
	}
	// The service still works, and counted no 5xx.
	require.Empty(t, b.viewProblem(p, newModel(), "nobody"))
	m, err := p.scrape(context.Background())
	require.NoError(t, err)
	require.Zero(t, m.count5xx())
	p.requireAlive(t)
	var cs []string
	for c, n := range codes {
		cs = append(cs, fmt.Sprintf("%d×%d", c, n))
	}
	sort.Strings(cs)
	result(t, "%d malformed requests (identity headers, %d broken events as bodies, bad JSON, wrong content types, oversized headers and bodies, wrong methods): "+
		"answers %s, none 5xx; %d problem+json bodies naming the field where the request reaches the API; process alive",
		len(reqs), bodies, strings.Join(cs, " "), problems)
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
