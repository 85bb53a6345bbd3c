package statecache

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lookupDerived is lookup's derived value, or nil.
func lookupDerived(c *stateCache[order], eater, key string, now time.Time) []byte {
	_, b, _, _ := c.lookup(eater, key, now)
	return b
}

// A derived value is served with its entry, by key, until its own end.
func TestDerivedLivesWithItsEntry(t *testing.T) {
	t.Parallel()
	c, now := testCache(10)
	require.True(t, c.put("e1", c.begin(), states("o1"), now, noExpiry))
	got, b, e, res := c.lookup("e1", "ru", now)
	require.Equal(t, Hit, res)
	require.Equal(t, "o1", got[0].nr)
	require.Nil(t, b, "nothing derived yet")
	require.True(t, c.setDerived("e1", e, "ru", []byte("RU"), now, now.Add(time.Second)))
	require.True(t, c.setDerived("e1", e, "en", []byte("EN"), now, noExpiry))
	require.Equal(t, "RU", string(lookupDerived(c, "e1", "ru", now)))
	require.Equal(t, "EN", string(lookupDerived(c, "e1", "en", now)))
	require.Nil(t, lookupDerived(c, "e1", "ru", now.Add(time.Second)), "past its own end (a phone, a 15-minute mark)")
	require.Equal(t, int64(len("ru")+len("RU")+len("en")+len("EN")), c.derivedBytes.Load())

	// Replacing a key, and the bound per entry: the oldest goes.
	require.True(t, c.setDerived("e1", e, "ru", []byte("RU2"), now, noExpiry))
	require.Equal(t, "RU2", string(lookupDerived(c, "e1", "ru", now)))
	for _, k := range []string{"k1", "k2", "k3"} {
		require.True(t, c.setDerived("e1", e, k, []byte("x"), now, noExpiry))
	}
	require.Nil(t, lookupDerived(c, "e1", "en", now), "the oldest of more than maxDerived")
	require.Equal(t, "RU2", string(lookupDerived(c, "e1", "ru", now)))
	require.Equal(t, int64(len("ruRU2")+3*len("k1x")), c.derivedBytes.Load())
}

// Every way an entry's states change or go drops its derived values, and
// the bytes they held are no longer counted.
func TestDerivedGoesWithItsEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(c *stateCache[order], now time.Time)
	}{
		{"invalidate eater", func(c *stateCache[order], _ time.Time) { c.invalidate("e:e1") }},
		{"invalidate order", func(c *stateCache[order], _ time.Time) { c.invalidate("o:o1") }},
		{"invalidate everything", func(c *stateCache[order], _ time.Time) { c.invalidate("*") }},
		{"put", func(c *stateCache[order], now time.Time) {
			require.True(t, c.put("e1", c.begin(), states("o1", "o2"), now, noExpiry))
		}},
		{"install", func(c *stateCache[order], now time.Time) {
			require.True(t, c.install(c.beginLoad(), map[string]*cacheEntry[order]{"e1": {states: states("o1"), expires: forever}}, now))
		}},
		{"reset", func(c *stateCache[order], now time.Time) { c.reset(); c.advance(now) }},
		{"eviction", func(c *stateCache[order], now time.Time) {
			require.True(t, c.put("e2", c.begin(), states("o2"), now, noExpiry)) // full: evicts one of the two
			if c.entries["e1"] != nil {
				require.True(t, c.put("e3", c.begin(), states("o3"), now, noExpiry))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, now := testCache(1)
			require.True(t, c.put("e1", c.begin(), states("o1"), now, noExpiry))
			_, _, e, _ := c.lookup("e1", "ru", now)
			require.True(t, c.setDerived("e1", e, "ru", []byte("old"), now, noExpiry))
			tc.change(c, now)
			require.Nil(t, lookupDerived(c, "e1", "ru", now))
			require.False(t, c.setDerived("e1", e, "ru", []byte("old"), now, noExpiry), "the old entry takes nothing more")
			require.Zero(t, c.derivedBytes.Load())
		})
	}
}

// Two writes racing: bytes computed from an entry's states are not kept
// once a change replaced or dropped the entry while they were computed,
// so a reader after the change never gets the old bytes; bytes computed
// from the new entry are kept.
func TestDerivedOfAnOlderEntryIsRefused(t *testing.T) {
	t.Parallel()
	c, now := testCache(10)
	require.True(t, c.put("e1", c.begin(), states("o1"), now, noExpiry))
	_, _, old, _ := c.lookup("e1", "ru", now)
	// The change lands while "old" is computed; the entry is refilled.
	c.invalidate("e:e1")
	require.True(t, c.put("e1", c.begin(), states("o1", "o2"), now, noExpiry))
	require.False(t, c.setDerived("e1", old, "ru", []byte("old"), now, noExpiry))
	got, b, cur, res := c.lookup("e1", "ru", now)
	require.Equal(t, Hit, res)
	require.Len(t, got, 2)
	require.Nil(t, b, "the old bytes were not kept")
	require.True(t, c.setDerived("e1", cur, "ru", []byte("new"), now, noExpiry))
	require.Equal(t, "new", string(lookupDerived(c, "e1", "ru", now)))

	// An expired entry takes nothing; neither does "no entry" (an eater
	// complete mode knows has no orders).
	require.False(t, c.setDerived("e1", cur, "en", []byte("x"), forever, noExpiry))
	require.False(t, c.setDerived("e9", nil, "ru", []byte("x"), now, noExpiry))

	// Nothing is served while the feed is unproven, derived values neither.
	_, b, _, res = c.lookup("e1", "ru", now.Add(maxLag+time.Millisecond))
	require.Equal(t, Behind, res)
	require.Nil(t, b)
}
