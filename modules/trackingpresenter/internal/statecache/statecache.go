package statecache

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxLag is how far an answer may lag the last committed change (the
// issue's bound: one second), with room for the heartbeat's own trip. It
// also bounds an entry holding a phone filled right after a change (see
// stateCache.raceWindow).
const maxLag = 900 * time.Millisecond

// PhoneRaceWindow is how long after a change a state holding a phone may
// still hold the phone Redis had before picker-ingest wrote the new one
// (ingest writes Redis after its commit is notified). The cache keeps such
// an entry no longer than this; a reader that recomputes on the change
// notification must read again after it.
const PhoneRaceWindow = maxLag

// pingEvery is the change feed's heartbeat interval: the cache is fresh
// enough to serve while the last heartbeat is younger than maxLag.
const pingEvery = 200 * time.Millisecond

// State is what the cache needs to know of one order's state.
type State interface {
	// OrderKey is the order's number: a change notified as "o:<order_nr>"
	// concerns the state.
	OrderKey() string
	// PhoneExpiry reports whether the state holds a phone read through
	// Redis, and until when it may be shown: when that phone expires or,
	// sooner, when the cache entry it was read from ends (a newer phone
	// whose cache write failed may be the winner by then). The state is
	// wrong from then on with no change at all.
	PhoneExpiry() (time.Time, bool)
}

// Loader reads the listed states of every eater that has any, each
// eater's in the order Get returns them, and when it started reading
// phones (phones read since then may predate a change applied just
// before). It reads at most maxEaters eaters' states: on meeting one more
// it stops reading and returns ErrTooManyEaters, so memory stays bounded
// by the cache's size however many eaters there are.
type Loader[S State] func(ctx context.Context, maxEaters int) (byEater map[string][]S, phonesAt time.Time, err error)

// ErrTooManyEaters is a Loader's answer when more eaters have listed
// orders than the cache holds: the cache then stays lazy.
var ErrTooManyEaters = errors.New("more eaters have listed orders than the tracking cache holds")

// Options configure New.
type Options[S State] struct {
	// Entries bounds how many eaters' states the cache holds; more than 0.
	Entries int
	// MaxAge is how often the complete set is re-read, and the longest a
	// lazily cached eater lives.
	MaxAge time.Duration
	// DSN is the PostgreSQL connection the change feed LISTENs on.
	DSN string
	// Load reads the complete set.
	Load Loader[S]
	// Registerer takes the cache's gauges.
	Registerer prometheus.Registerer
	// Logger logs the feed's and the loader's progress.
	Logger *slog.Logger
	// OnChange, when set, is called with each change applied, after the
	// cache dropped what it concerns ("e:<eater_id>", "o:<order_nr>", or
	// anything else for everything), and with "*" whenever the feed is
	// (re)established or lost (changes may have gone unseen). It runs on
	// the feed's goroutine: it must not block.
	OnChange func(key string)
}

// Cache holds eaters' states: Get answers from memory; on a miss the
// caller takes a Token (Begin), reads the database and hands the result to
// Put. Start runs the change feed and the loader that keep it exact.
type Cache[S State] struct {
	c      *stateCache[S]
	feed   *changeFeed
	loader *loader
	load   Loader[S]
}

// New builds the cache and registers its gauges; it does no I/O.
func New[S State](o Options[S]) (*Cache[S], error) {
	c := &Cache[S]{c: newStateCache[S](o.Entries, maxLag, o.MaxAge), load: o.Load}
	var sink feedSink = c.c
	if o.OnChange != nil {
		sink = watchedSink{feedSink: c.c, onChange: o.OnChange}
	}
	c.feed = newChangeFeed(o.DSN, sink, o.Logger, pingEvery)
	c.loader = newLoader(c.loadAll, o.Logger, o.MaxAge)
	c.feed.listening = c.loader.request
	if err := registerMetrics(o.Registerer, c.c); err != nil {
		return nil, err
	}
	return c, nil
}

// Get returns the eater's states if they are known at now and the feed is
// at most maxLag behind. A hit may be no states at all.
func (c *Cache[S]) Get(eater string, now time.Time) ([]S, Result) {
	return c.c.get(eater, now)
}

// Lag is how far behind the change feed may be at now: every change
// committed before now-Lag has been applied. -1 while unproven (the feed
// is down or has not yet proven itself since it connected).
func (c *Cache[S]) Lag(now time.Time) time.Duration {
	return c.c.lag(now)
}

// Begin returns the token a fill passes to Put: take it before reading.
func (c *Cache[S]) Begin() Token {
	return c.c.begin()
}

// Put stores the eater's states a fill read at now since tok, unless a
// change to them may have been committed meanwhile. An entry holding a
// phone lives no longer than the phone. It reports whether it stored
// them, and the Ref of the entry holding them (for SetDerived).
func (c *Cache[S]) Put(eater string, tok Token, states []S, now time.Time) (Ref[S], bool) {
	e, ok := c.c.putEntry(eater, tok, states, now, expiry(states))
	return Ref[S]{eater: eater, e: e}, ok
}

// Ref names the entry a Lookup (or Put) saw, so SetDerived attaches a
// value to that entry and no other.
type Ref[S State] struct {
	eater string
	e     *cacheEntry[S]
}

// Lookup is Get plus the value derived from the entry under key (see
// SetDerived), nil when none is stored or it is no longer valid at now.
// A value is dropped with its entry: by the change feed's invalidation, a
// Put, the complete load's install, a reset, or eviction.
func (c *Cache[S]) Lookup(eater, key string, now time.Time) ([]S, []byte, Ref[S], Result) {
	states, b, e, res := c.c.lookup(eater, key, now)
	return states, b, Ref[S]{eater: eater, e: e}, res
}

// SetDerived stores b, computed from the states of the entry ref names,
// under key until until (zero: as long as the entry; it must not outlive
// the time b changes by itself). It stores nothing, and reports false,
// when that entry was replaced or dropped since (a change landed while b
// was computed: b may show the old states), or when ref names no entry.
func (c *Cache[S]) SetDerived(ref Ref[S], key string, b []byte, now, until time.Time) bool {
	return c.c.setDerived(ref.eater, ref.e, key, b, now, until)
}

// Start runs the change feed, then the loader, until Stop; it does not
// block.
func (c *Cache[S]) Start(ctx context.Context) error {
	if err := c.feed.Start(ctx); err != nil {
		return err
	}
	return c.loader.Start(ctx)
}

// Stop ends the loader first (it uses the feed's cache), then the feed,
// each waiting at most until ctx ends.
func (c *Cache[S]) Stop(ctx context.Context) error {
	return errors.Join(c.loader.Stop(ctx), c.feed.Stop(ctx))
}

// loadAll reads every listed order and installs the complete set. It
// returns the number of eaters with listed orders (when there are too
// many, the bound: the load stopped there).
func (c *Cache[S]) loadAll(ctx context.Context) (int, error) {
	tok := c.c.beginLoad()
	installed := false
	defer func() {
		if !installed {
			c.c.endLoad()
		}
	}()
	byEater, phonesAt, err := c.load(ctx, c.c.maxEntries)
	if errors.Is(err, ErrTooManyEaters) {
		return c.c.maxEntries, errTooBig
	}
	if err != nil {
		return 0, err
	}
	loaded := make(map[string]*cacheEntry[S], len(byEater))
	for eater, states := range byEater {
		until := expiry(states)
		if until.IsZero() {
			until = forever
		}
		loaded[eater] = &cacheEntry[S]{states: states, expires: until}
	}
	n := len(loaded)
	if n > c.c.maxEntries {
		return n, errTooBig
	}
	// install owns loaded from here on, and ends the load either way.
	installed = true
	if !c.c.install(tok, loaded, phonesAt) {
		return n, errOutdated
	}
	return n, nil
}

// expiry is when states stop being right with no change at all: when a
// shown phone expires. Zero: only a change can make them wrong. (A
// finished order leaving the list after 15 minutes needs no expiry: the
// presenter's render drops it.)
func expiry[S State](states []S) time.Time {
	var until time.Time
	for i := range states {
		if at, ok := states[i].PhoneExpiry(); ok {
			until = earliest(until, at)
		}
	}
	return until
}

// earliest returns the earlier of a and b, a zero a meaning "none yet".
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// watchedSink tells OnChange what the feed applied.
type watchedSink struct {
	feedSink
	onChange func(key string)
}

func (w watchedSink) invalidate(key string) {
	w.feedSink.invalidate(key)
	w.onChange(key)
}

func (w watchedSink) reset() {
	w.feedSink.reset()
	w.onChange("*")
}
