// Package pickerfake is a fake eats-picker-orders for tests, the demo and
// system tests: a real HTTP server (or just its http.Handler) that answers
// `GET /api/v1/order?eats_id=<order_nr>` in the upstream's shape, with a
// behaviour set per order (200, 404, 5xx, slow, garbage, a raw answer, or a
// script of those) and a switch that takes the whole service down.
//
// We don't own eats-picker-orders, so tests talk to this fake over loopback
// instead of mocking the client: retries, deadlines and the circuit breaker
// then meet real sockets. Every method is safe for concurrent use.
package pickerfake

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Path is where the fake serves orders, as eats-picker-orders does.
const Path = "/api/v1/order"

// Order is what the fake answers for one order with behaviour OK.
type Order struct {
	// Status is sent as is, so tests can send statuses the client rejects.
	Status string
	// PickerID is omitted from the answer when empty.
	PickerID string
	// StatusUpdatedAt defaults to the time of Set when zero.
	StatusUpdatedAt time.Time
	PlaceID         int
	// Phone, when not empty, adds customer_picker_phone_forwarding.
	Phone string
	// PhoneExpiresAt defaults to an hour after Set when zero and Phone is set.
	PhoneExpiresAt time.Time
}

type kind int

const (
	kindOK kind = iota
	kindNotFound
	kindServerError
	kindSlow
	kindGarbage
	kindRaw
)

// Behaviour is how the fake answers one request for an order.
type Behaviour struct {
	kind   kind
	delay  time.Duration
	status int
	body   string
}

// The fixed behaviours. OK is the default for an order that was Set; an
// order never Set answers NotFound whatever its behaviour says.
var (
	OK          = Behaviour{kind: kindOK}
	NotFound    = Behaviour{kind: kindNotFound}
	ServerError = Behaviour{kind: kindServerError}
	Garbage     = Behaviour{kind: kindGarbage}
)

// Slow waits d (or until the client gives up) and then answers as OK.
func Slow(d time.Duration) Behaviour { return Behaviour{kind: kindSlow, delay: d} }

// Respond answers the given status and body verbatim (as application/json),
// for contract tests that need answers the Order type cannot express.
func Respond(status int, body string) Behaviour {
	return Behaviour{kind: kindRaw, status: status, body: body}
}

// String names the behaviour in test failures.
func (b Behaviour) String() string {
	switch b.kind {
	case kindOK:
		return "OK"
	case kindNotFound:
		return "NotFound"
	case kindServerError:
		return "ServerError"
	case kindSlow:
		return fmt.Sprintf("Slow(%s)", b.delay)
	case kindGarbage:
		return "Garbage"
	case kindRaw:
		return fmt.Sprintf("Respond(%d)", b.status)
	}
	return "unknown"
}

type entry struct {
	order  *Order
	script []Behaviour // answered in turn, the last one repeats; empty means OK
	next   int
}

// Server is the fake. Create it with New, then Start or Serve it, or mount
// Handler on a mux of your own.
type Server struct {
	mu      sync.Mutex
	orders  map[string]*entry
	hits    map[string]int
	total   int
	down    bool
	srv     *httptest.Server
	closing chan struct{} // closed by Close so slow answers stop waiting
	closed  sync.Once
}

// New returns a fake that knows no orders and is not listening yet.
func New() *Server {
	return &Server{
		orders:  make(map[string]*entry),
		hits:    make(map[string]int),
		closing: make(chan struct{}),
	}
}

// Start listens on a random port of 127.0.0.1.
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		panic("pickerfake: server already started")
	}
	s.srv = httptest.NewServer(s.Handler())
}

// Serve serves on l (the demo passes a listener of its own) without
// blocking; Close stops it.
func (s *Server) Serve(l net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		panic("pickerfake: server already started")
	}
	s.srv = httptest.NewUnstartedServer(s.Handler())
	_ = s.srv.Listener.Close() // replaced by the caller's listener
	s.srv.Listener = l
	s.srv.Start()
}

// URL is the base URL to give the client ("http://127.0.0.1:port"), or ""
// before Start or Serve.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return ""
	}
	return s.srv.URL
}

// Close stops the server, cutting slow answers short. Calling it more than
// once, or on a fake that never listened, is fine.
func (s *Server) Close() {
	s.closed.Do(func() {
		close(s.closing)
		s.mu.Lock()
		srv := s.srv
		s.mu.Unlock()
		if srv != nil {
			srv.Close()
		}
	})
}

// Set makes the fake know the order. It keeps the order's behaviour.
func (s *Server) Set(orderNr string, o Order) {
	now := time.Now()
	if o.StatusUpdatedAt.IsZero() {
		o.StatusUpdatedAt = now
	}
	if o.Phone != "" && o.PhoneExpiresAt.IsZero() {
		o.PhoneExpiresAt = now.Add(time.Hour)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entry(orderNr).order = &o
}

// SetBehaviour makes every next request for the order answer b.
func (s *Server) SetBehaviour(orderNr string, b Behaviour) { s.Script(orderNr, b) }

// Script makes the next requests for the order answer bs in turn, then
// repeat the last one. With no behaviours the order answers OK again.
func (s *Server) Script(orderNr string, bs ...Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(orderNr)
	e.script = append([]Behaviour(nil), bs...)
	e.next = 0
}

// SetDown makes every request answer 503 while down is true.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Hits is how many requests asked for the order, whatever they were answered.
func (s *Server) Hits(orderNr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[orderNr]
}

// TotalHits is how many requests reached the fake, including malformed ones.
func (s *Server) TotalHits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Handler serves the fake's API; the demo mounts it on its own mux.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.serveOrder)
	return mux
}

// entry must be called with mu held.
func (s *Server) entry(orderNr string) *entry {
	e, ok := s.orders[orderNr]
	if !ok {
		e = &entry{}
		s.orders[orderNr] = e
	}
	return e
}

// pick counts the hit and decides the answer under one lock, so a script
// advances exactly once per request even under concurrent requests.
func (s *Server) pick(orderNr string) (b Behaviour, o *Order, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	if orderNr == "" {
		return Behaviour{}, nil, s.down
	}
	s.hits[orderNr]++
	if s.down {
		return Behaviour{}, nil, true
	}
	e, ok := s.orders[orderNr]
	if !ok {
		return NotFound, nil, false
	}
	b = OK
	if len(e.script) > 0 {
		b = e.script[min(e.next, len(e.script)-1)]
		e.next++
	}
	if e.order != nil {
		copied := *e.order
		o = &copied
	}
	return b, o, false
}

func (s *Server) serveOrder(w http.ResponseWriter, r *http.Request) {
	orderNr := r.URL.Query().Get("eats_id")
	b, o, down := s.pick(orderNr)
	switch {
	case down:
		writeError(w, http.StatusServiceUnavailable, "service_unavailable", "eats-picker-orders is down")
		return
	case r.Method != http.MethodGet:
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "only GET is served")
		return
	case orderNr == "":
		writeError(w, http.StatusBadRequest, "bad_request", "eats_id is required")
		return
	}

	if b.kind == kindSlow {
		t := time.NewTimer(b.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return // the client gave up; nobody reads the answer
		case <-s.closing:
			return
		}
	}

	switch b.kind {
	case kindNotFound:
		writeError(w, http.StatusNotFound, "order_not_found", "order not found")
	case kindServerError:
		writeError(w, http.StatusInternalServerError, "internal_error", "something broke")
	case kindGarbage:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"meta":{},"payload":{"eats_id":`))
	case kindRaw:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(b.status)
		_, _ = w.Write([]byte(b.body))
	default: // OK and Slow
		if o == nil {
			writeError(w, http.StatusNotFound, "order_not_found", "order not found")
			return
		}
		writeJSON(w, http.StatusOK, answer(orderNr, o))
	}
}

// answer builds the upstream's 200 body. The fields eats-picker-orders sends
// but we do not read (brand_id, items, ...) are there to prove the client
// ignores unknown fields.
func answer(orderNr string, o *Order) map[string]any {
	payload := map[string]any{
		"eats_id":           orderNr,
		"status":            o.Status,
		"status_updated_at": o.StatusUpdatedAt.Format(time.RFC3339Nano),
		"place_id":          o.PlaceID,
		"brand_id":          1,
		"flow_type":         "picking_packing",
		"items":             []map[string]any{{"id": "item-1", "count": 2}},
	}
	if o.PickerID != "" {
		payload["picker_id"] = o.PickerID
	}
	if o.Phone != "" {
		payload["customer_picker_phone_forwarding"] = map[string]any{
			"phone":      o.Phone,
			"expires_at": o.PhoneExpiresAt.Format(time.RFC3339Nano),
			"extension":  "1234",
		}
	}
	return map[string]any{"meta": map[string]any{"version": "fake"}, "payload": payload}
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"code": code, "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
