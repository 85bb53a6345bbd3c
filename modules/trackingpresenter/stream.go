package trackingpresenter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eats/eats-orders-tracking/modules/trackingpresenter/internal/statecache"
)

// Ending reasons, the label of eot_tracking_streams_ended_total.
const (
	endClientGone   = "client_gone"   // the client went away
	endWriteFailed  = "write_failed"  // a write failed or missed its deadline (a slow reader)
	endMaxAge       = "max_age"       // TRACKING_STREAM_MAX_AGE passed
	endReplaced     = "replaced"      // a newer stream of the eater took its place (TRACKING_STREAMS_PER_EATER)
	endFeedUnproven = "feed_unproven" // the change feed was unproven for longer than feedUnprovenMax
	endShutdown     = "shutdown"      // the replica drains
)

var endReasons = []string{endClientGone, endWriteFailed, endMaxAge, endReplaced, endFeedUnproven, endShutdown}

const (
	// feedUnprovenMax: a replica whose change feed has not proven its
	// freshness for this long ends its streams (they would miss changes);
	// the clients poll, or reconnect to another replica.
	feedUnprovenMax = 2 * time.Second
	// streamWorkers recompute changed eaters' answers in parallel (one
	// eater is never recomputed by two at once).
	streamWorkers = 4
	// refreshRetry: after a failed recompute the eater is tried again.
	refreshRetry = time.Second
	// recentOrdersMax: the "o:" changes a recompute is checked against
	// (at least); more during one recompute and it is simply redone.
	recentOrdersMax = 4096
)

// Why a stream is refused (503).
var (
	errStreamsFull   = errors.New("TRACKING_STREAMS_MAX streams are open on this replica")
	errFeedUnproven  = errors.New("the change feed is not proven fresh on this replica")
	errShuttingDown  = errors.New("the replica is shutting down")
	errStreamsNoFeed = errors.New("the tracking cache is off on this replica (TRACKING_CACHE_ENTRIES=0)")
)

// encodeAnswer is the polling body byte for byte (huma's JSON: no HTML
// escaping) without its trailing newline, so it fits one data: line (JSON
// escapes every newline inside strings).
func encodeAnswer(orders []trackedOrder) []byte {
	r := trackingResponse{}
	r.Meta.CheckAfter = checkAfterSeconds
	r.Meta.Count = len(orders)
	r.Payload.TrackedOrders = orders
	if orders == nil {
		r.Payload.TrackedOrders = []trackedOrder{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		panic(err) // plain structs: cannot fail
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// version derives a body's event id from the body alone, so every replica
// gives the same body the same id: 62 bits of its SHA-256, in hex.
func version(body []byte) string {
	sum := sha256.Sum256(body)
	return fmt.Sprintf("%016x", binary.BigEndian.Uint64(sum[:8])>>2)
}

// stream is one open stream: the handler's goroutine writes what the hub
// offers. It keeps only the latest body not yet written, so a slow reader
// costs one body, never a queue, and never gets an older body after a
// newer one.
type stream struct {
	eater  string
	lang   language
	opened time.Time
	wake   chan struct{} // capacity 1: a body is pending
	done   chan struct{} // closed by end

	mu        sync.Mutex
	pending   []byte
	pendingID string
	pendingAt time.Time // the earliest change notification the pending body reflects; zero: none (first frame, time)
	lastID    string    // the newest version offered (written or pending), or the client's Last-Event-ID
	reason    string
}

func newStream(eater string, lang language, lastID string, now time.Time) *stream {
	return &stream{eater: eater, lang: lang, opened: now, lastID: lastID,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// offer makes body the next frame unless it is the version last offered.
// It reports whether it replaced a body not yet written.
func (s *stream) offer(body []byte, id string, at time.Time) (coalesced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason != "" || id == s.lastID {
		return false
	}
	if s.pending != nil {
		coalesced = true
		if !s.pendingAt.IsZero() && (at.IsZero() || s.pendingAt.Before(at)) {
			at = s.pendingAt
		}
	}
	s.pending, s.pendingID, s.pendingAt, s.lastID = body, id, at, id
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return coalesced
}

// take returns the pending body, if any.
func (s *stream) take() (body []byte, id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, id, at = s.pending, s.pendingID, s.pendingAt
	s.pending, s.pendingID, s.pendingAt = nil, "", time.Time{}
	return body, id, at
}

// end asks the stream to end for reason; the first reason stands.
func (s *stream) end(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason == "" {
		s.reason = reason
		close(s.done)
	}
}

// endReason is why the stream was ended, "" if it was not.
func (s *stream) endReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// streamHub holds a replica's open streams by eater and recomputes an
// eater's answer when the change feed names it (or at a time its states
// change by themselves), once per change and language, for all of the
// eater's streams.
type streamHub struct {
	cfg     Config
	metrics *presenterMetrics
	log     *slog.Logger
	// p computes answers; set by newPresenter (the presenter needs the
	// cache, whose feed calls the hub).
	p *presenter

	mu       sync.Mutex
	byEater  map[string][]*stream // oldest first; "" holds the streams without identity
	total    int
	orders   map[string]string   // order_nr → eater, from the streamed eaters' last answers
	ordersOf map[string][]string // eater → its order_nrs in orders
	timers   map[string]*time.Timer
	dirty    map[string]time.Time // eaters to recompute → earliest notification not yet reflected
	inflight map[string]bool
	// recentOrders are the last "o:" changes (order_nr by sequence), so a
	// recompute can tell whether one of its orders changed while it read,
	// before orders knew the order was this eater's.
	recentOrders []string
	orderSeq     uint64 // "o:" changes seen; recentOrders ends with the newest
	closed       bool
	unproven     bool // the feed has been unproven longer than feedUnprovenMax
	kick         chan struct{}
	stop         context.CancelFunc
	unsubscribe  func() // stops the experiments reload hook
	workersWG    sync.WaitGroup
	// serving counts the stream handlers running. A stream owns its
	// connection (streamconn.go), so the HTTP server's Shutdown does not
	// wait for it; shutdown does, so every stream's last retry: is
	// written before the process goes.
	serving sync.WaitGroup
}

func newStreamHub(cfg Config, m *presenterMetrics, logger *slog.Logger) *streamHub {
	return &streamHub{cfg: cfg, metrics: m, log: logger,
		byEater: map[string][]*stream{}, orders: map[string]string{}, ordersOf: map[string][]string{},
		timers: map[string]*time.Timer{}, dirty: map[string]time.Time{}, inflight: map[string]bool{},
		kick: make(chan struct{}, 1)}
}

// start runs the workers and the feed watch until stop.
func (h *streamHub) start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	// An answer depends on the experiments in force: a reload recomputes
	// every streamed eater as soon as the new set is readable.
	if h.p != nil && h.p.render.experiments != nil {
		h.unsubscribe = h.p.render.experiments.OnReload(func() { h.changed("*") })
	}
	for range streamWorkers {
		h.workersWG.Add(1)
		go func() {
			defer h.workersWG.Done()
			h.work(ctx)
		}()
	}
	if h.p != nil && h.p.cache != nil {
		h.workersWG.Add(1)
		go func() {
			defer h.workersWG.Done()
			h.watchFeed(ctx)
		}()
	}
	return nil
}

// shutdown ends every stream and refuses new ones (the replica drains:
// runStreams orders it before the HTTP server's Shutdown, which would
// otherwise wait for the streams until its deadline), then stops the
// workers.
func (h *streamHub) shutdown(ctx context.Context) error {
	h.endAll(endShutdown, true)
	if h.unsubscribe != nil {
		h.unsubscribe()
	}
	if h.stop != nil {
		h.stop()
	}
	done := make(chan struct{})
	go func() { h.serving.Wait(); h.workersWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop tracking streams: %w", ctx.Err())
	}
}

// endAll ends every open stream; closing also refuses new ones.
func (h *streamHub) endAll(reason string, closing bool) {
	h.mu.Lock()
	if closing {
		h.closed = true
	}
	var all []*stream
	for _, ss := range h.byEater {
		all = append(all, ss...)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.end(reason)
	}
}

// open registers a stream, ending the eater's oldest when it has
// TRACKING_STREAMS_PER_EATER already, and asks for its first frame.
func (h *streamHub) open(eater string, lang language, lastID string, now time.Time) (*stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return nil, errShuttingDown
	case h.unproven:
		return nil, errFeedUnproven
	}
	var replaced *stream
	ss := h.byEater[eater]
	if eater != "" && len(ss) >= h.cfg.StreamsPerEater {
		replaced, ss = ss[0], ss[1:]
		h.total--
	}
	if h.total >= h.cfg.StreamsMax {
		if replaced != nil {
			h.total++ // keep it: the new one is refused anyway
		}
		return nil, errStreamsFull
	}
	if replaced != nil {
		replaced.end(endReplaced)
	}
	s := newStream(eater, lang, lastID, now)
	h.byEater[eater] = append(ss, s)
	h.total++
	h.metrics.streamsOpen.Set(float64(h.total))
	if eater != "" {
		h.markLocked(eater, time.Time{})
	}
	return s, nil
}

// enter counts a stream handler in, unless the hub has closed (then
// shutdown no longer waits, and the stream has been ended already).
func (h *streamHub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.serving.Add(1)
	return true
}

// close forgets a stream whose handler returned.
func (h *streamHub) close(s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ss := h.byEater[s.eater]
	for i, o := range ss {
		if o == s {
			ss = append(ss[:i:i], ss[i+1:]...)
			h.total--
			break
		}
	}
	h.metrics.streamsOpen.Set(float64(h.total))
	if len(ss) > 0 {
		h.byEater[s.eater] = ss
		return
	}
	delete(h.byEater, s.eater)
	h.forgetLocked(s.eater)
}

// forgetLocked drops what the hub knew of an eater with no stream left.
func (h *streamHub) forgetLocked(eater string) {
	for _, nr := range h.ordersOf[eater] {
		if h.orders[nr] == eater {
			delete(h.orders, nr)
		}
	}
	delete(h.ordersOf, eater)
	if t, ok := h.timers[eater]; ok {
		t.Stop()
		delete(h.timers, eater)
	}
}

// changed is the change feed's callback (statecache Options.OnChange): it
// marks the eaters a change concerns for recomputing, never blocking.
func (h *streamHub) changed(key string) {
	at := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case strings.HasPrefix(key, "e:"):
		if _, ok := h.byEater[key[2:]]; ok {
			h.markLocked(key[2:], at)
		}
	case strings.HasPrefix(key, "o:"):
		h.orderSeq++
		h.recentOrders = append(h.recentOrders, key[2:])
		if len(h.recentOrders) >= 2*recentOrdersMax {
			h.recentOrders = append([]string(nil), h.recentOrders[recentOrdersMax:]...)
		}
		// A picker change of an order no streamed answer lists cannot
		// list it (the orders row does that, notified as "e:").
		if eater, ok := h.orders[key[2:]]; ok {
			h.markLocked(eater, at)
		}
	default:
		for eater := range h.byEater {
			if eater != "" {
				h.markLocked(eater, at)
			}
		}
	}
}

// markLocked asks for the eater's answer to be recomputed; at is when the
// change was notified (zero: not a change).
func (h *streamHub) markLocked(eater string, at time.Time) {
	if prev, ok := h.dirty[eater]; ok && (at.IsZero() || (!prev.IsZero() && prev.Before(at))) {
		at = prev
	}
	h.dirty[eater] = at
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// next takes a dirty eater no worker is recomputing.
func (h *streamHub) next() (string, time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for eater, at := range h.dirty {
		if !h.inflight[eater] {
			delete(h.dirty, eater)
			h.inflight[eater] = true
			if len(h.dirty) > 0 { // let another worker take the rest
				select {
				case h.kick <- struct{}{}:
				default:
				}
			}
			return eater, at, true
		}
	}
	return "", time.Time{}, false
}

func (h *streamHub) work(ctx context.Context) {
	for {
		eater, at, ok := h.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-h.kick:
				continue
			}
		}
		h.refresh(ctx, eater, at)
		h.mu.Lock()
		delete(h.inflight, eater)
		if _, again := h.dirty[eater]; again {
			select {
			case h.kick <- struct{}{}:
			default:
			}
		}
		h.mu.Unlock()
	}
}

// refresh recomputes the eater's answer once per language its streams
// speak and offers it to them, then schedules the next time the answer
// changes by itself.
func (h *streamHub) refresh(ctx context.Context, eater string, at time.Time) {
	h.mu.Lock()
	ss := append([]*stream(nil), h.byEater[eater]...)
	since := h.orderSeq
	h.mu.Unlock()
	if len(ss) == 0 {
		return
	}
	now := time.Now()
	// The bodies come from the memo the polls are served from: one
	// render and encode per change and language for polls and streams.
	type answer struct {
		body []byte
		id   string
	}
	answers := map[language]answer{}
	var states []orderState
	for _, s := range ss {
		a, ok := answers[s.lang]
		if !ok {
			full, st, _, err := h.p.answer(ctx, eater, s.lang, now, false)
			if err != nil {
				if ctx.Err() == nil {
					h.log.ErrorContext(ctx, "tracking stream: read orders", "err", err, "retry_in", refreshRetry)
					time.AfterFunc(refreshRetry, func() {
						h.mu.Lock()
						defer h.mu.Unlock()
						if _, ok := h.byEater[eater]; ok {
							h.markLocked(eater, at)
						}
					})
				}
				return
			}
			body := full[:len(full)-1] // one data: line, without the newline
			a, states = answer{body: body, id: version(body)}, st
			answers[s.lang] = a
		}
		if s.offer(a.body, a.id, at) {
			h.metrics.streamCoalesced.Inc()
		}
	}
	h.remember(eater, states, since, now, !at.IsZero())
}

// remember notes which orders the eater's answer reads (so a picker
// change of one reaches its streams) and schedules a recompute at the
// earliest time the answer changes with no change at all: a phone's
// expiry, a finished order leaving the list.
//
// A recompute on a change notification may have read a phone from Redis
// before picker-ingest replaced it there (Redis is written after the
// commit is notified): when the answer holds a phone it is read again once
// statecache.PhoneRaceWindow has passed, so a replaced phone reaches the
// stream within about a second, as it reaches polls.
func (h *streamHub) remember(eater string, states []orderState, since uint64, now time.Time, onChange bool) {
	nrs := make([]string, 0, len(states))
	hasPhone := false
	for i := range states {
		nrs = append(nrs, states[i].OrderNr)
		if _, ok := states[i].PhoneExpiry(); ok {
			hasPhone = true
		}
	}
	next := nextChange(states, now)
	if onChange && hasPhone {
		next = earliestAfter(next, now.Add(statecache.PhoneRaceWindow))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.byEater[eater]; !ok {
		return // its last stream closed meanwhile
	}
	for _, nr := range h.ordersOf[eater] {
		if h.orders[nr] == eater {
			delete(h.orders, nr)
		}
	}
	for _, nr := range nrs {
		h.orders[nr] = eater
	}
	h.ordersOf[eater] = nrs
	// A picker change of one of these orders notified while the answer
	// was computed found no eater for it: compute again.
	recent := h.recentOrders
	for i, seq := len(recent)-1, h.orderSeq; seq > since; i, seq = i-1, seq-1 {
		if i < 0 || slices.Contains(nrs, recent[i]) { // i < 0: not all known, be safe
			h.markLocked(eater, time.Time{})
			break
		}
	}
	if t, ok := h.timers[eater]; ok {
		t.Stop()
		delete(h.timers, eater)
	}
	if !next.IsZero() {
		// A little after, so the recompute sees the time passed.
		h.timers[eater] = time.AfterFunc(next.Sub(now)+10*time.Millisecond, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, ok := h.byEater[eater]; ok {
				h.markLocked(eater, time.Time{})
			}
		})
	}
}

func earliestAfter(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// watchFeed ends every stream when the change feed has been unproven for
// longer than feedUnprovenMax (streams would silently miss changes), and
// refuses new ones until it is proven again.
func (h *streamHub) watchFeed(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var unprovenSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			lag := h.p.cache.Lag(now)
			stale := false
			switch {
			case lag < 0:
				if unprovenSince.IsZero() {
					unprovenSince = now
				}
				stale = now.Sub(unprovenSince) > feedUnprovenMax
			default:
				unprovenSince = time.Time{}
				stale = lag > feedUnprovenMax
			}
			h.mu.Lock()
			was := h.unproven
			h.unproven = stale
			h.mu.Unlock()
			if stale {
				if !was {
					h.log.Warn("tracking change feed unproven; ending streams", "lag", lag)
				}
				h.endAll(endFeedUnproven, false)
			}
		}
	}
}
