package statecache

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// order is the State of the tests: an order number and, when not zero,
// the expiry of the phone the state holds.
type order struct {
	nr    string
	phone time.Time
}

func (o order) OrderKey() string { return o.nr }

func (o order) PhoneExpiry() (time.Time, bool) { return o.phone, !o.phone.IsZero() }

func states(orderNrs ...string) []order {
	out := make([]order, len(orderNrs))
	for i, nr := range orderNrs {
		out[i].nr = nr
	}
	return out
}

func testCache(maxEntries int) (*stateCache[order], time.Time) {
	c := newStateCache[order](maxEntries, maxLag, time.Minute)
	now := time.Now()
	c.advance(now)
	return c, now
}

var noExpiry time.Time

func TestCacheServesOnlyWhileTheFeedIsProvenFresh(t *testing.T) {
	t.Parallel()
	c := newStateCache[order](10, maxLag, time.Minute)
	now := time.Now()
	require.True(t, c.put("e1", c.begin(), states("o1"), now, noExpiry))

	_, res := c.get("e1", now)
	require.Equal(t, Behind, res, "no heartbeat yet: nothing is served")

	c.advance(now.Add(-100 * time.Millisecond))
	got, res := c.get("e1", now)
	require.Equal(t, Hit, res)
	require.Equal(t, "o1", got[0].nr)

	_, res = c.get("e1", now.Add(maxLag))
	require.Equal(t, Behind, res, "a heartbeat older than maxLag: the feed may be behind")
	c.advance(now.Add(-time.Second)) // never moves back
	_, res = c.get("e1", now)
	require.Equal(t, Hit, res)

	c.advance(now.Add(time.Minute))
	_, res = c.get("e1", now.Add(time.Minute))
	require.Equal(t, Miss, res, "a lazy entry lives maxAge")
	_, res = c.get("e2", now)
	require.Equal(t, Miss, res)
}

func TestCacheEntryWithAPhoneExpiresWithIt(t *testing.T) {
	t.Parallel()
	c, now := testCache(10)
	require.True(t, c.put("e1", c.begin(), states("o1"), now, now.Add(time.Second)))
	c.advance(now.Add(900 * time.Millisecond))
	_, res := c.get("e1", now.Add(999*time.Millisecond))
	require.Equal(t, Hit, res)
	c.advance(now.Add(time.Second))
	_, res = c.get("e1", now.Add(time.Second))
	require.Equal(t, Miss, res)

	require.True(t, c.install(c.beginLoad(), map[string]*cacheEntry[order]{"e1": {states: states("o1"), expires: now.Add(2 * time.Second)}}, now))
	c.advance(now.Add(2 * time.Second))
	_, res = c.get("e1", now.Add(2*time.Second))
	require.Equal(t, Miss, res, "in complete mode too")
}

func TestCacheInvalidation(t *testing.T) {
	t.Parallel()
	c, now := testCache(10)
	require.True(t, c.put("e1", c.begin(), states("o1", "o2"), now, noExpiry))
	require.True(t, c.put("e2", c.begin(), states("o3"), now, noExpiry))

	c.invalidate("o:o2") // a picker change of e1's order
	_, res := c.get("e1", now)
	require.Equal(t, Miss, res)
	_, res = c.get("e2", now)
	require.Equal(t, Hit, res)

	c.invalidate("e:e2") // an orders change (e.g. a new order of e2)
	_, res = c.get("e2", now)
	require.Equal(t, Miss, res)

	require.True(t, c.put("e1", c.begin(), states("o1"), now, noExpiry))
	require.True(t, c.put("e2", c.begin(), states("o3"), now, noExpiry))
	c.invalidate("o:unknown")
	require.Equal(t, 2, c.size())
	c.invalidate("*")
	require.Equal(t, 0, c.size())

	// A re-put replaces the order links: o2 no longer belongs to e1.
	require.True(t, c.put("e1", c.begin(), states("o1", "o2"), now, noExpiry))
	require.True(t, c.put("e1", c.begin(), states("o1"), now, noExpiry))
	c.invalidate("o:o2")
	_, res = c.get("e1", now)
	require.Equal(t, Hit, res)
}

// A change committed while a fill reads must not be cached over.
func TestCacheRefusesFillsRacingAChange(t *testing.T) {
	t.Parallel()
	c, now := testCache(10)

	tok := c.begin()
	c.invalidate("o:o1")
	require.False(t, c.put("e1", tok, states("o1"), now, noExpiry), "the fill may predate the change to o1")

	tok = c.begin()
	c.invalidate("e:e1")
	require.False(t, c.put("e1", tok, states("o1"), now, noExpiry), "the fill may predate the eater's new order")

	tok = c.begin()
	c.invalidate("e:e9")
	c.invalidate("o:o9")
	require.True(t, c.put("e1", tok, states("o1"), now, noExpiry), "unrelated changes do not matter")

	tok = c.begin()
	for i := range 2 * recentMax {
		c.invalidate(fmt.Sprintf("o:x%d", i))
	}
	require.False(t, c.put("e1", tok, states("o1"), now, noExpiry), "too many changes to check")

	tok = c.begin()
	c.reset()
	require.False(t, c.put("e1", tok, states("o1"), now, noExpiry), "the feed was lost during the fill")
	_, res := c.get("e1", now)
	require.Equal(t, Behind, res, "reset forgets the horizon")
	require.Equal(t, 0, c.size())
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	c, now := testCache(200)
	for i := range 1000 {
		c.put(fmt.Sprintf("e%d", i), c.begin(), states(fmt.Sprintf("o%d", i)), now, noExpiry)
		require.LessOrEqual(t, c.size(), 200)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	require.Len(t, c.byOrder, len(c.entries), "evicted entries leave no order links")
}

// In complete mode an eater without an entry has no listed orders, unless
// a change made it dirty; a fill makes it clean again.
func TestCacheCompleteMode(t *testing.T) {
	t.Parallel()
	c, now := testCache(10)
	require.True(t, c.install(c.beginLoad(), map[string]*cacheEntry[order]{
		"e1": {states: states("o1"), expires: forever},
		"e2": {states: states("o2", "o3"), expires: forever},
	}, now))
	require.True(t, c.isComplete())
	got, res := c.get("e1", now)
	require.Equal(t, Hit, res)
	require.Len(t, got, 1)
	got, res = c.get("nobody", now)
	require.Equal(t, Hit, res, "known to have no orders")
	require.Empty(t, got)

	c.invalidate("e:nobody") // their first order
	_, res = c.get("nobody", now)
	require.Equal(t, Miss, res)
	require.True(t, c.put("nobody", c.begin(), states("o9"), now, noExpiry))
	got, res = c.get("nobody", now)
	require.Equal(t, Hit, res)
	require.Len(t, got, 1)
	require.True(t, now.Add(time.Hour).Before(c.entries["nobody"].expires), "complete-mode entries wait for a change")

	c.invalidate("o:o3") // a picker change of e2's order
	_, res = c.get("e2", now)
	require.Equal(t, Miss, res)
	require.True(t, c.put("e2", c.begin(), nil, now, noExpiry)) // its orders are gone
	got, res = c.get("e2", now)
	require.Equal(t, Hit, res)
	require.Empty(t, got)

	c.invalidate("o:not-listed")
	require.True(t, c.isComplete())
	c.invalidate("*")
	require.False(t, c.isComplete())
	_, res = c.get("e1", now)
	require.Equal(t, Miss, res)
}

// Changes committed while the complete set was read make their eaters
// dirty; a load that cannot be checked is refused.
func TestCacheInstallAccountsForChangesDuringTheLoad(t *testing.T) {
	t.Parallel()
	c, now := testCache(10)
	loaded := func() map[string]*cacheEntry[order] {
		return map[string]*cacheEntry[order]{
			"e1": {states: states("o1"), expires: forever},
			"e2": {states: states("o2"), expires: forever},
			"e3": {states: states("o3"), expires: forever},
		}
	}
	tok := c.beginLoad()
	c.invalidate("o:o2")       // e2's picker order changed
	c.invalidate("e:e4")       // e4's first order
	c.invalidate("o:unlisted") // irrelevant
	require.True(t, c.install(tok, loaded(), now))
	for eater, want := range map[string]Result{"e1": Hit, "e2": Miss, "e3": Hit, "e4": Miss, "e5": Hit} {
		_, res := c.get(eater, now)
		require.Equal(t, want, res, eater)
	}
	c.invalidate("o:o2")
	_, res := c.get("e3", now)
	require.Equal(t, Hit, res)

	tok = c.beginLoad()
	c.invalidate("*")
	require.False(t, c.install(tok, loaded(), now))
	tok = c.beginLoad()
	c.reset()
	require.False(t, c.install(tok, loaded(), now))
	require.False(t, c.install(c.beginLoad(), map[string]*cacheEntry[order]{"a": {}, "b": {}, "c": {}, "d": {}, "e": {}, "f": {}, "g": {}, "h": {}, "i": {}, "j": {}, "k": {}}, now),
		"more eaters than fit")

	// However many changes a load sees, it installs, their eaters dirty.
	c.advance(now)
	tok = c.beginLoad()
	for i := range 3 * recentMax {
		c.invalidate(fmt.Sprintf("e:x%d", i))
	}
	c.invalidate("o:o1")
	require.True(t, c.install(tok, loaded(), now))
	for eater, want := range map[string]Result{"e1": Miss, "e2": Hit, "x0": Miss, "x9999": Miss, "y": Hit} {
		_, res := c.get(eater, now)
		require.Equal(t, want, res, eater)
	}
	require.False(t, c.install(tok, loaded(), now), "a token installs once")

	// Running out of room leaves complete mode, then evicts.
	c.advance(now)
	require.True(t, c.install(c.beginLoad(), loaded(), now))
	for i := range 10 {
		c.put(fmt.Sprintf("x%d", i), c.begin(), states(fmt.Sprintf("ox%d", i)), now, noExpiry)
	}
	require.False(t, c.isComplete())
	require.LessOrEqual(t, c.size(), 10)
}

// withPhone is one order state holding a valid phone.
func withPhone(orderNr string, now time.Time) []order {
	s := states(orderNr)
	s[0].phone = now.Add(time.Hour)
	return s
}

// A phone read right after a change touching it may be Redis' old one: such
// an entry lives raceWindow at most; other entries wait for a change.
func TestCacheShortensEntriesWithAPhoneReadRightAfterAChange(t *testing.T) {
	t.Parallel()
	c, _ := testCache(10)
	now := time.Now()
	c.reset()
	c.advance(now)
	require.True(t, c.put("e1", c.begin(), withPhone("o1", now), now, noExpiry))
	require.False(t, c.entries["e1"].expires.After(now.Add(c.raceWindow)), "right after the feed (re)started, anything may have changed")

	later := now.Add(2 * c.raceWindow)
	c.recentFrom = now.Add(-time.Hour) // as if the feed had been up for long
	require.True(t, c.put("e1", c.begin(), withPhone("o1", later), later, noExpiry))
	require.True(t, c.entries["e1"].expires.After(later.Add(time.Minute-time.Millisecond)), "no recent change: a lazy entry's full life")

	c.invalidate("o:o1")
	c.recent[len(c.recent)-1].at = later.Add(-c.raceWindow / 2)
	require.True(t, c.put("e1", c.begin(), withPhone("o1", later), later, noExpiry))
	require.Equal(t, later.Add(c.raceWindow), c.entries["e1"].expires)

	require.True(t, c.put("e2", c.begin(), states("o2"), later, noExpiry))
	require.True(t, c.entries["e2"].expires.After(later.Add(c.raceWindow)), "no phone, no race")

	tok := c.beginLoad()
	loaded := map[string]*cacheEntry[order]{"e1": {states: withPhone("o1", later), expires: forever}, "e3": {states: withPhone("o3", later), expires: forever}}
	require.True(t, c.install(tok, loaded, later))
	require.Equal(t, later.Add(c.raceWindow), c.entries["e1"].expires)
	require.Equal(t, forever, c.entries["e3"].expires)
}
