package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/postgres"
)

// Eater e (1..n) has order orderNr(e). The seed is benchtracking's
// approach cut to what this needs: one retail order per eater, created 10
// minutes ago and confirmed by the place, its picker order picking
// (picking_at set) by picker pickerID(e, 0), who has no phone, so the eater
// sees P1. With swaps > 0 each order also gets a phone for each of the
// pickers pickerID(e, 1..swaps), which the events then name (see
// generator.run). Triggers are off: no change feed for a seed.
const (
	seedOrders = `
INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at)
SELECT 'S' || lpad(i::text, 7, '0'), i::text,
       jsonb_build_object('flow_type', 'retail', 'status', 'place_confirmed',
           'place', jsonb_build_object('id', '40', 'name', 'Place 40', 'phone', '+79990000040')),
       now() - interval '9 minutes', now() - interval '10 minutes'
FROM generate_series(1, $1::int) AS i`
	seedPickerOrders = `
INSERT INTO picker_orders (order_nr, payload, status_event_at, picker_event_at, picker_event_status)
SELECT order_nr,
       jsonb_build_object('picker_id', 'picker-' || eater_id || '-0000', 'status', 'picking', 'status_history', jsonb_build_object(
           'new_at', to_char(now() AT TIME ZONE 'UTC' - interval '9 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'assigned_at', to_char(now() AT TIME ZONE 'UTC' - interval '8 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'picking_at', to_char(now() AT TIME ZONE 'UTC' - interval '7 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))),
       now() - interval '7 minutes', now() - interval '8 minutes', 'assigned'
FROM orders`
	seedPhones = `
INSERT INTO picker_phones (order_nr, picker_id, phone, expires_at, event_at)
SELECT order_nr, 'picker-' || eater_id || '-' || lpad(j::text, 4, '0'), '` + phonePrefix + `' || lpad(j::text, 8, '0'),
       now() + interval '1 day', now() - interval '7 minutes'
FROM orders, generate_series(1, $1::int) AS j`
)

func orderNr(eater int) string { return fmt.Sprintf("S%07d", eater) }

// pickerID is the eater's j-th picker (zero-padded: of two events at the
// same time the greater picker_id wins, DESIGN §3.1).
func pickerID(eater, j int) string { return fmt.Sprintf("picker-%d-%04d", eater, j) }

func seed(ctx context.Context, dbURL string, eaters, swaps int) error {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.ExecContext(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if _, err := tx.ExecContext(ctx, seedOrders, eaters); err != nil {
		return fmt.Errorf("seed orders: %w", err)
	}
	if _, err := tx.ExecContext(ctx, seedPickerOrders); err != nil {
		return fmt.Errorf("seed picker orders: %w", err)
	}
	if swaps > 0 {
		if _, err := tx.ExecContext(ctx, seedPhones, swaps); err != nil {
			return fmt.Errorf("seed phones: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed: commit: %w", err)
	}
	_, err = db.ExecContext(ctx, "VACUUM ANALYZE orders, picker_orders, picker_phones")
	return err
}

// The phone an eater's j-th event brings is phonePrefix followed by j in 8
// digits: a valid phone, different for each event of the eater, and found
// in a frame or a poll's body by a byte search.
const phonePrefix = "+7996"

var phoneMarker = []byte(`"` + phonePrefix)

// phoneSeq is the event number in a frame's or a poll's body, 0 if none.
func phoneSeq(body []byte) int64 {
	i := bytes.Index(body, phoneMarker)
	if i < 0 || len(body) < i+len(phoneMarker)+8 {
		return 0
	}
	n, err := strconv.ParseInt(string(body[i+len(phoneMarker):i+len(phoneMarker)+8]), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// The kinds of event (-events).
const (
	// eventsSwap: a STATUS_CHANGE (picking) naming the eater's next
	// picker, whose phone the seed holds: P1 → P2, then P2 with another
	// phone. Each picker is named once, so no phone cache entry of an
	// earlier event can stand in for it.
	eventsSwap = "swap"
	// eventsPhone: a PICKER_PHONE_FORWARDING_READY with a new phone for the
	// current picker (each expires a millisecond after the one before, as
	// the later expiry wins): P1 → P2, then a replaced phone.
	eventsPhone = "phone"
)

// pickerQueue is the picker events' River kind and queue (DESIGN §3.1).
const pickerQueue = "eats_orders_tracking_picker_orders"

// pickerEvent is a picker event's job args as a producer writes them
// (DESIGN §3.1, snake_case): the producer's side of the contract, so the
// benchmark sends what procaas sends rather than the service's own type.
type pickerEvent struct {
	EventType   tracking.EventType `json:"event_type"`
	OrderNr     string             `json:"order_nr"`
	OrderStatus string             `json:"order_status"`
	PlaceID     string             `json:"place_id"`
	PickerID    string             `json:"picker_id,omitempty"`
	Forwarding  *forwarding        `json:"customer_picker_phone_forwarding,omitempty"`
	CreatedAt   time.Time          `json:"created_at"`
}

type forwarding struct {
	Phone     string    `json:"phone"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (pickerEvent) Kind() string                 { return pickerQueue }
func (pickerEvent) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: pickerQueue} }

// generator inserts picker events as River jobs with an insert-only River
// client, as a producer would (the client notifies the service's workers).
type generator struct {
	db      *sqlx.DB
	client  *river.Client[*sql.Tx]
	kind    string
	eaters  int
	swaps   int   // most events per eater with eventsSwap
	count   []int // events so far, by eater
	last    time.Time
	expires time.Time
}

func newGenerator(dbURL, kind string, eaters, swaps int) (*generator, error) {
	db, err := postgres.Open(dbURL, 8)
	if err != nil {
		return nil, err
	}
	client, err := river.NewClient(riverdatabasesql.New(db.DB), &river.Config{})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("river insert client: %w", err)
	}
	return &generator{db: db, client: client, kind: kind, eaters: eaters, swaps: swaps, count: make([]int, eaters+1),
		expires: time.Now().UTC().Add(6 * time.Hour).Truncate(time.Second)}, nil
}

func (g *generator) close() { g.db.Close() }

type event struct {
	eater, j  int
	createdAt time.Time
}

// next draws an eater at random (with eventsSwap, one with a picker left)
// and numbers its event; created_at grows strictly, so of two events of
// one eater the later always wins.
func (g *generator) next() (event, bool) {
	for range 100 {
		e := 1 + rand.IntN(g.eaters) //nolint:gosec // which eater gets an event needs no secure randomness
		if g.kind == eventsSwap && g.count[e] >= g.swaps {
			continue
		}
		g.count[e]++
		at := time.Now().UTC().Truncate(time.Microsecond)
		if !at.After(g.last) {
			at = g.last.Add(time.Microsecond)
		}
		g.last = at
		return event{eater: e, j: g.count[e], createdAt: at}, true
	}
	return event{}, false
}

func (g *generator) args(ev event) pickerEvent {
	a := pickerEvent{OrderNr: orderNr(ev.eater), OrderStatus: "picking", PlaceID: "40", CreatedAt: ev.createdAt}
	if g.kind == eventsSwap {
		a.EventType, a.PickerID = tracking.EventStatusChange, pickerID(ev.eater, ev.j)
		return a
	}
	a.EventType, a.PickerID = tracking.EventPickerPhoneForwardingReady, pickerID(ev.eater, 0)
	a.Forwarding = &forwarding{
		Phone: fmt.Sprintf("%s%08d", phonePrefix, ev.j), ExpiresAt: g.expires.Add(time.Duration(ev.j) * time.Millisecond)}
	return a
}

// run inserts rate events/s until ctx ends, from 8 goroutines; an event's
// time is taken before its insert.
func (g *generator) run(ctx context.Context, rate int, t *tracker) error {
	due := make(chan event, rate)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for range 8 {
		wg.Go(func() {
			for ev := range due {
				t.sent(ev.eater, int64(ev.j), time.Now())
				if _, err := g.client.Insert(context.Background(), g.args(ev), nil); err != nil {
					t.forget(ev.eater, int64(ev.j))
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var err error
loop:
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			break loop
		case <-time.After(time.Until(start.Add(time.Duration(i) * interval))):
			ev, ok := g.next()
			if !ok {
				err = fmt.Errorf("no eater with a seeded picker left after %d events: raise the seed's swaps", i)
				break loop
			}
			due <- ev
		}
	}
	close(due)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d event inserts failed, the first: %v", n, firstErr.Load())
	}
	return err
}

// tracker matches events to what the clients receive. An answer showing
// event k of an eater reflects every earlier event of that eater too (a
// later one replaces the phone), so it settles them all, at the time it
// was received.
type tracker struct {
	mu      sync.Mutex
	pending [][]sentEvent // by eater
	lat     []time.Duration
}

type sentEvent struct {
	seq int64
	at  time.Time
}

func newTracker(eaters int) *tracker {
	return &tracker{pending: make([][]sentEvent, eaters+1)}
}

func (t *tracker) sent(eater int, seq int64, at time.Time) {
	t.mu.Lock()
	t.pending[eater] = append(t.pending[eater], sentEvent{seq, at})
	t.mu.Unlock()
}

func (t *tracker) forget(eater int, seq int64) {
	t.mu.Lock()
	t.pending[eater] = slices.DeleteFunc(t.pending[eater], func(e sentEvent) bool { return e.seq == seq })
	t.mu.Unlock()
}

func (t *tracker) seen(eater int, seq int64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pending[eater]
	kept := p[:0]
	for _, e := range p {
		if e.seq <= seq {
			t.lat = append(t.lat, at.Sub(e.at))
		} else {
			kept = append(kept, e)
		}
	}
	t.pending[eater] = kept
}

// drain waits up to grace for the pending events, then returns the
// latencies seen so far and how many events were never seen, and resets.
func (t *tracker) drain(grace time.Duration) ([]time.Duration, int) {
	deadline := time.Now().Add(grace)
	for {
		t.mu.Lock()
		n := 0
		for _, p := range t.pending {
			n += len(p)
		}
		if n == 0 || time.Now().After(deadline) {
			lat := t.lat
			t.lat = nil
			for i := range t.pending {
				t.pending[i] = nil
			}
			t.mu.Unlock()
			return lat, n
		}
		t.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

// streamSet is one stream per eater, each read by its own goroutine.
type streamSet struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	first    atomic.Int64 // streams that got their first frame
	frames   atomic.Int64
	ended    atomic.Int64 // streams the server ended (EOF or error) before close
	refused  atomic.Int64
	firstErr atomic.Value
	openedIn time.Duration
}

var dataPrefix = []byte("data:")

// openStreams opens one stream per eater, 64 handshakes at a time, and
// returns when each has its first frame (or fails when one is refused).
func openStreams(url string, eaters int, t *tracker) (*streamSet, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &streamSet{cancel: cancel}
	// One connection per stream, closed with it; no idle pool.
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DisableKeepAlives:     true,
		DisableCompression:    true,
		ResponseHeaderTimeout: 30 * time.Second,
		ReadBufferSize:        1024,
		WriteBufferSize:       512,
	}
	client := &http.Client{Transport: tr}
	sem := make(chan struct{}, 64)
	start := time.Now()
	for e := 1; e <= eaters; e++ {
		s.wg.Go(func() { s.read(ctx, client, url, e, sem, t) })
	}
	deadline := time.Now().Add(3 * time.Minute)
	for s.first.Load() < int64(eaters) {
		if n := s.refused.Load() + s.ended.Load(); n > 0 {
			s.close()
			return nil, fmt.Errorf("%d streams refused or ended while opening, the first: %v", n, s.firstErr.Load())
		}
		if time.Now().After(deadline) {
			s.close()
			return nil, fmt.Errorf("only %d of %d streams had their first frame after 3 minutes", s.first.Load(), eaters)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.openedIn = time.Since(start)
	fmt.Printf("  %d streams open with their first frame in %s\n", eaters, s.openedIn.Round(time.Millisecond))
	return s, nil
}

// read holds one stream: it reads lines with a small buffer (a frame's
// data line is the whole answer; a longer line is gathered in line) and
// looks only at data lines.
func (s *streamSet) read(ctx context.Context, client *http.Client, url string, eater int, sem chan struct{}, t *tracker) {
	sem <- struct{}{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("X-Eats-User", "user_id="+strconv.Itoa(eater))
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	<-sem
	if err != nil {
		if ctx.Err() == nil {
			s.refused.Add(1)
			s.firstErr.CompareAndSwap(nil, fmt.Errorf("eater %d: %w", eater, err))
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		s.refused.Add(1)
		s.firstErr.CompareAndSwap(nil, fmt.Errorf("eater %d: %s: %s", eater, resp.Status, b))
		return
	}
	br := bufio.NewReaderSize(resp.Body, 2048)
	var long []byte
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				s.ended.Add(1)
				s.firstErr.CompareAndSwap(nil, fmt.Errorf("eater %d: stream ended: %w", eater, err))
			}
			return
		}
		if len(long) > 0 {
			line = append(long, line...)
			long = line[:0]
		}
		if !bytes.HasPrefix(line, dataPrefix) {
			continue
		}
		now := time.Now()
		s.frames.Add(1)
		if first {
			first = false
			s.first.Add(1)
		}
		if k := phoneSeq(line); k > 0 {
			t.seen(eater, k, now)
		}
	}
}

// close ends every stream (the client closes the connections) and waits
// for the readers.
func (s *streamSet) close() {
	s.cancel()
	s.wg.Wait()
}

// poller is the polling phase: every eater polls every interval, the
// eaters' polls spread evenly over it, through one keep-alive pool (as a
// gateway in front would). A scheduler hands due eaters to a few workers
// every pollTick: cheaper for this process, which shares the machine with
// the service, than a goroutine and a timer per eater.
type poller struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	lat    []time.Duration
	failed atomic.Int64
	late   atomic.Int64 // polls that found every worker busy
	start  time.Time
}

const (
	pollTick    = time.Millisecond
	pollWorkers = 64
)

type pollResult struct {
	rps    float64
	lat    []time.Duration
	failed int64
	late   int64
}

func startPolling(url string, eaters int, every time.Duration, t *tracker) *poller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &poller{cancel: cancel, start: time.Now()}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: pollWorkers, MaxIdleConnsPerHost: pollWorkers, DisableCompression: true, IdleConnTimeout: time.Minute,
	}, Timeout: 10 * time.Second}
	due := make(chan int, pollWorkers)
	var workers sync.WaitGroup
	for range pollWorkers {
		workers.Go(func() {
			var lat []time.Duration
			for e := range due {
				sent := time.Now()
				body, err := getTracking(client, url, e)
				now := time.Now()
				if err != nil {
					p.failed.Add(1)
					continue
				}
				lat = append(lat, now.Sub(sent))
				if k := phoneSeq(body); k > 0 {
					t.seen(e, k, now)
				}
			}
			p.mu.Lock()
			p.lat = append(p.lat, lat...)
			p.mu.Unlock()
		})
	}
	p.wg.Go(func() {
		defer func() { close(due); workers.Wait() }()
		// Eater e (1-based) polls at start + (e-1)·every/eaters, then
		// every interval after.
		sent := 0
		tick := time.NewTicker(pollTick)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				upTo := int(int64(now.Sub(p.start)) * int64(eaters) / int64(every))
				for ; sent <= upTo; sent++ {
					select {
					case due <- sent%eaters + 1:
					default:
						p.late.Add(1)
						due <- sent%eaters + 1
					}
				}
			}
		}
	})
	return p
}

// stop ends the polling. The requests and their rate are those of the
// whole phase: the measured window and the grace after it.
func (p *poller) stop() pollResult {
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return pollResult{rps: float64(len(p.lat)) / time.Since(p.start).Seconds(), lat: p.lat, failed: p.failed.Load(), late: p.late.Load()}
}
