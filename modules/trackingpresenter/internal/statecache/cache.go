package statecache

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stateCache keeps eaters' order states in process, so polls (which far
// outnumber changes) touch no database. It is exact, not time-based: the
// change feed (feed.go) delivers every committed change to orders,
// picker_orders and picker_phones as an invalidation, in commit order, and
// a heartbeat through the same feed proves how far behind the feed can be.
// Nothing is served unless that proof is younger than maxLag, so an answer
// never lags a committed change by more than maxLag; while the feed is
// behind or down, every request reads the database.
//
// It works in two modes:
//   - lazy: an entry per eater asked about, filled from the database on a
//     miss and dropped on a change;
//   - complete: after the loader installed every listed order of every
//     eater (install), an eater without an entry has no listed orders,
//     unless a change marked it dirty since; then every poll is answered
//     from memory. A change the cache cannot attribute, a lost feed or
//     running out of room returns it to lazy mode until the next load.
//
// Fills race with changes committed while they read: a fill takes a token
// before reading, and put (or install) refuses or marks dirty whatever an
// invalidation that arrived since may concern.
type stateCache[S State] struct {
	maxEntries int
	maxLag     time.Duration
	maxAge     time.Duration // life of a lazy entry

	mu       sync.RWMutex
	entries  map[string]*cacheEntry[S] // by eater_id
	byOrder  map[string]string         // order_nr → eater_id of the entry holding it
	complete bool                      // every eater not in entries nor dirty has no listed order
	dirty    map[string]struct{}       // complete mode: eaters changed since their state was known
	seq      uint64                    // invalidations applied so far
	epoch    uint64                    // bumped whenever the feed is (re)established or lost
	horizon  time.Time                 // every change committed before it has been applied; zero: none proven
	recent   []invalidation            // the last invalidations, the newest last (seq = c.seq)
	// recentFrom: every invalidation since is in recent (the feed's start,
	// or the oldest kept after trimming).
	recentFrom time.Time
	// loadKeys collects the invalidations applied while a complete load
	// reads (nil when none runs), however many: install marks their eaters
	// dirty.
	loadKeys map[string]struct{}
	// raceWindow: how long after a change a phone read through Redis may
	// still be the old one (picker-ingest writes Redis just after its
	// commit); an entry holding a phone filled that soon lives no longer.
	raceWindow time.Duration
	// derivedBytes is what the entries' derived values hold (keys and
	// bytes): added under mu's read lock by setDerived, so atomic.
	derivedBytes atomic.Int64
}

// invalidation is one change notification and when it was applied.
type invalidation struct {
	key string
	at  time.Time
}

type cacheEntry[S State] struct {
	states  []S // shared by readers: never modified
	expires time.Time

	// derived are values computed from states (an encoded answer per
	// language and experiments version), so they live and die with the
	// entry: whatever replaces or drops the entry drops them, and no
	// second invalidation path exists. dmu guards them; it is taken only
	// under the cache's read lock, so holding the write lock excludes it.
	dmu         sync.Mutex
	derived     []derivedValue
	derivedSize int64 // bytes of derived's keys and values
}

// derivedValue is one value derived from an entry's states.
type derivedValue struct {
	key   string
	b     []byte
	until time.Time // zero: as long as the entry
}

// maxDerived bounds the values an entry keeps (two languages times the
// experiments version in force and the one before): the oldest goes first.
const maxDerived = 4

// Token is the cache's position when a fill started reading (Begin): Put
// refuses what a change since may concern.
type Token struct{ seq, epoch uint64 }

// recentMax bounds the invalidations a fill can be checked against; a
// fill that sees more arrive while it reads is simply not cached.
const recentMax = 4096

// forever is the expiry of entries that only a change can make stale.
var forever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func newStateCache[S State](maxEntries int, maxLag, maxAge time.Duration) *stateCache[S] {
	return &stateCache[S]{
		maxEntries: maxEntries,
		maxLag:     maxLag,
		maxAge:     maxAge,
		raceWindow: maxLag,
		entries:    make(map[string]*cacheEntry[S]),
		byOrder:    make(map[string]string),
		dirty:      make(map[string]struct{}),
	}
}

// Result is what Get found, the label of eot_tracking_state_cache_total.
type Result string

// The results of Get.
const (
	Hit    Result = "hit"
	Miss   Result = "miss"   // no valid entry: read the database
	Behind Result = "behind" // the feed cannot prove freshness: read the database
)

// get returns the eater's states if they are known at now and the feed is
// at most maxLag behind. A hit may be no states at all.
func (c *stateCache[S]) get(eater string, now time.Time) ([]S, Result) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.horizon.IsZero() || now.Sub(c.horizon) > c.maxLag {
		return nil, Behind
	}
	if e := c.entries[eater]; e != nil {
		if now.Before(e.expires) {
			return e.states, Hit
		}
		return nil, Miss
	}
	if _, dirty := c.dirty[eater]; c.complete && !dirty {
		return nil, Hit
	}
	return nil, Miss
}

// lookup is get plus the value derived from the entry under key, if one
// is stored and valid at now. It also returns the entry (nil for an
// eater complete mode knows has no orders) for setDerived.
func (c *stateCache[S]) lookup(eater, key string, now time.Time) ([]S, []byte, *cacheEntry[S], Result) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.horizon.IsZero() || now.Sub(c.horizon) > c.maxLag {
		return nil, nil, nil, Behind
	}
	if e := c.entries[eater]; e != nil {
		if !now.Before(e.expires) {
			return nil, nil, nil, Miss
		}
		e.dmu.Lock()
		defer e.dmu.Unlock()
		for i := range e.derived {
			if d := &e.derived[i]; d.key == key && (d.until.IsZero() || now.Before(d.until)) {
				return e.states, d.b, e, Hit
			}
		}
		return e.states, nil, e, Hit
	}
	if _, dirty := c.dirty[eater]; c.complete && !dirty {
		return nil, nil, nil, Hit
	}
	return nil, nil, nil, Miss
}

// setDerived stores b under key on e, valid until until (zero: as long as
// e), if e is still the eater's entry and valid at now. Otherwise a change
// replaced or dropped it since b was computed from its states, and b is
// not stored: bytes of an older entry are never served. It reports
// whether b was stored.
func (c *stateCache[S]) setDerived(eater string, e *cacheEntry[S], key string, b []byte, now, until time.Time) bool {
	if e == nil {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.entries[eater] != e || !now.Before(e.expires) {
		return false
	}
	e.dmu.Lock()
	defer e.dmu.Unlock()
	size := e.derivedSize
	kept := e.derived[:0]
	for _, d := range e.derived {
		if d.key == key || (!d.until.IsZero() && !now.Before(d.until)) {
			size -= int64(len(d.key) + len(d.b))
			continue
		}
		kept = append(kept, d)
	}
	if len(kept) >= maxDerived {
		size -= int64(len(kept[0].key) + len(kept[0].b))
		kept = append(kept[:0], kept[1:]...)
	}
	clear(e.derived[len(kept):]) // let dropped bytes go
	e.derived = append(kept, derivedValue{key: key, b: b, until: until})
	size += int64(len(key) + len(b))
	c.derivedBytes.Add(size - e.derivedSize)
	e.derivedSize = size
	return true
}

// releaseLocked accounts for an entry leaving the cache (write lock held:
// no setDerived runs).
func (c *stateCache[S]) releaseLocked(e *cacheEntry[S]) {
	c.derivedBytes.Add(-e.derivedSize)
}

// begin returns the token a fill passes to put or install.
func (c *stateCache[S]) begin() Token {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return Token{seq: c.seq, epoch: c.epoch}
}

// sinceLocked returns the invalidations after tok, or false when they are
// not all known any more (too many, or the feed was lost).
func (c *stateCache[S]) sinceLocked(tok Token) ([]invalidation, bool) {
	if tok.epoch != c.epoch {
		return nil, false
	}
	n := c.seq - tok.seq
	if n > uint64(len(c.recent)) {
		return nil, false
	}
	return c.recent[len(c.recent)-int(n):], true //nolint:gosec // n <= len(c.recent), checked above, so it fits an int
}

// put stores what a fill read at now since tok, unless a change to it may
// have been committed meanwhile. until, when not zero, is when the states
// stop being valid by themselves (a phone's life); otherwise a lazy entry
// lives maxAge and a complete-mode entry until a change. It reports
// whether the entry was stored.
func (c *stateCache[S]) put(eater string, tok Token, states []S, now, until time.Time) bool {
	_, ok := c.putEntry(eater, tok, states, now, until)
	return ok
}

// putEntry is put, also returning the entry that holds the states (nil
// when none does: refused, or an eater complete mode then knows has none).
func (c *stateCache[S]) putEntry(eater string, tok Token, states []S, now, until time.Time) (*cacheEntry[S], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	changes, ok := c.sinceLocked(tok)
	if !ok {
		return nil, false
	}
	for _, inv := range changes {
		if touches(inv.key, eater, states) {
			return nil, false
		}
	}
	delete(c.dirty, eater)
	if old := c.entries[eater]; old != nil {
		c.unlinkLocked(eater, old)
		c.releaseLocked(old)
		delete(c.entries, eater)
	}
	if c.complete && len(states) == 0 && until.IsZero() {
		return nil, true // absent and clean: no listed orders
	}
	if len(c.entries) >= c.maxEntries {
		c.lazyLocked()
		c.evictLocked()
	}
	expires := until
	if expires.IsZero() {
		expires = forever
		if !c.complete {
			expires = now.Add(c.maxAge)
		}
	}
	if c.phoneRaceLocked(eater, states, now) {
		expires = earliest(expires, now.Add(c.raceWindow))
	}
	e := &cacheEntry[S]{states: states, expires: expires}
	c.entries[eater] = e
	for i := range states {
		c.byOrder[states[i].OrderKey()] = eater
	}
	return e, true
}

// phoneRaceLocked reports whether states hold a phone that may have been
// read from Redis before picker-ingest updated it: a change touching them
// was applied within raceWindow before now (or may have been: the log does
// not reach back that far).
func (c *stateCache[S]) phoneRaceLocked(eater string, states []S, now time.Time) bool {
	hasPhone := false
	for i := range states {
		if _, ok := states[i].PhoneExpiry(); ok {
			hasPhone = true
			break
		}
	}
	if !hasPhone {
		return false
	}
	since := now.Add(-c.raceWindow)
	if c.recentFrom.After(since) {
		return true
	}
	for i := len(c.recent) - 1; i >= 0 && c.recent[i].at.After(since); i-- {
		if touches(c.recent[i].key, eater, states) {
			return true
		}
	}
	return false
}

// beginLoad starts collecting the changes a complete load must account
// for; it returns the load's token for install.
func (c *stateCache[S]) beginLoad() Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loadKeys = make(map[string]struct{})
	return Token{seq: c.seq, epoch: c.epoch}
}

// endLoad stops collecting (a load that failed).
func (c *stateCache[S]) endLoad() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loadKeys = nil
}

// install replaces everything with a complete load read since tok (from
// beginLoad; its phones read from phonesAt on): the listed states of every
// eater that has any. Eaters a change since tok may concern are marked
// dirty instead. It reports false (and changes nothing) when the load
// cannot be trusted or does not fit.
func (c *stateCache[S]) install(tok Token, loaded map[string]*cacheEntry[S], phonesAt time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := c.loadKeys
	c.loadKeys = nil
	if keys == nil || tok.epoch != c.epoch || len(loaded) > c.maxEntries {
		return false
	}
	byOrder := make(map[string]string, len(loaded))
	for eater, e := range loaded {
		for i := range e.states {
			byOrder[e.states[i].OrderKey()] = eater
		}
	}
	dirty := make(map[string]struct{})
	for key := range keys {
		var eater string
		switch {
		case strings.HasPrefix(key, "e:"):
			eater = key[2:]
		case strings.HasPrefix(key, "o:"):
			var ok bool
			if eater, ok = byOrder[key[2:]]; !ok {
				continue // not listed: a picker change cannot list it
			}
		default:
			return false
		}
		dirty[eater] = struct{}{}
		if e := loaded[eater]; e != nil {
			for i := range e.states {
				delete(byOrder, e.states[i].OrderKey())
			}
			delete(loaded, eater)
		}
	}
	for eater, e := range loaded {
		if c.phoneRaceLocked(eater, e.states, phonesAt) {
			e.expires = earliest(e.expires, phonesAt.Add(c.raceWindow))
		}
	}
	c.entries, c.byOrder, c.dirty, c.complete = loaded, byOrder, dirty, true
	c.derivedBytes.Store(0) // the old entries are gone, the new ones hold none yet
	return true
}

// touches reports whether an invalidation key may concern the fill.
func touches[S State](key, eater string, states []S) bool {
	switch {
	case strings.HasPrefix(key, "e:"):
		return key[2:] == eater
	case strings.HasPrefix(key, "o:"):
		for i := range states {
			if states[i].OrderKey() == key[2:] {
				return true
			}
		}
		return false
	default: // "*" and anything unknown
		return true
	}
}

// invalidate applies one change: "e:<eater_id>" concerns the eater,
// "o:<order_nr>" the eater holding the order (a picker change of an order
// that is not listed cannot list it), anything else everything.
func (c *stateCache[S]) invalidate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	if c.loadKeys != nil {
		c.loadKeys[key] = struct{}{}
	}
	c.recent = append(c.recent, invalidation{key: key, at: time.Now()})
	if len(c.recent) >= 2*recentMax {
		c.recent = append(make([]invalidation, 0, 2*recentMax), c.recent[len(c.recent)-recentMax:]...)
		c.recentFrom = c.recent[0].at
	}
	switch {
	case strings.HasPrefix(key, "e:"):
		c.dropLocked(key[2:])
	case strings.HasPrefix(key, "o:"):
		if eater, ok := c.byOrder[key[2:]]; ok {
			c.dropLocked(eater)
		}
	default:
		c.lazyLocked()
		c.clearLocked()
	}
}

// advance records that every change committed before t has been applied.
func (c *stateCache[S]) advance(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.horizon) {
		c.horizon = t
	}
}

// reset forgets everything and every fill in flight: the feed was lost (or
// just established), so changes may have gone unseen. Nothing is served
// until the feed proves its freshness again.
func (c *stateCache[S]) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.horizon = time.Time{}
	c.recent = nil
	c.recentFrom = time.Now()
	c.loadKeys = nil
	c.lazyLocked()
	c.clearLocked()
}

// isComplete reports the mode.
func (c *stateCache[S]) isComplete() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.complete
}

// lag is how far behind the feed may be at now; -1 when unproven.
func (c *stateCache[S]) lag(now time.Time) time.Duration {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.horizon.IsZero() {
		return -1
	}
	return now.Sub(c.horizon)
}

// size is the number of entries.
func (c *stateCache[S]) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// dropLocked forgets the eater's state; in complete mode it must then be
// read again.
func (c *stateCache[S]) dropLocked(eater string) {
	if e := c.entries[eater]; e != nil {
		c.unlinkLocked(eater, e)
		c.releaseLocked(e)
		delete(c.entries, eater)
	}
	if c.complete {
		c.dirty[eater] = struct{}{}
	}
}

func (c *stateCache[S]) unlinkLocked(eater string, e *cacheEntry[S]) {
	for i := range e.states {
		if nr := e.states[i].OrderKey(); c.byOrder[nr] == eater {
			delete(c.byOrder, nr)
		}
	}
}

// lazyLocked leaves complete mode: absent eaters are unknown again.
func (c *stateCache[S]) lazyLocked() {
	c.complete = false
	clear(c.dirty)
}

func (c *stateCache[S]) clearLocked() {
	clear(c.entries)
	clear(c.byOrder)
	c.derivedBytes.Store(0)
}

// evictLocked drops about 1% of the entries, whichever the map's random
// iteration yields first: cheap, and fair enough for a cache that refills
// from one indexed query. Only in lazy mode: in complete mode an absent
// entry means "no orders".
func (c *stateCache[S]) evictLocked() {
	n := max(1, c.maxEntries/100)
	for eater, e := range c.entries {
		c.unlinkLocked(eater, e)
		c.releaseLocked(e)
		delete(c.entries, eater)
		if n--; n == 0 {
			return
		}
	}
}
