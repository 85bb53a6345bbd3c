package statecache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func newTestCache(t *testing.T, entries int, load Loader[order]) *Cache[order] {
	t.Helper()
	c, err := New(Options[order]{
		Entries: entries, MaxAge: time.Minute, Load: load,
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	return c
}

// The complete load installs what the Loader read: every eater it lists,
// none other, an entry with a phone living no longer than the phone.
func TestLoadAllInstallsTheCompleteSet(t *testing.T) {
	t.Parallel()
	now := time.Now()
	phoneExpires := now.Add(time.Hour)
	c := newTestCache(t, 100, func(context.Context, int) (map[string][]order, time.Time, error) {
		return map[string][]order{
			"A": {{nr: "a0"}, {nr: "a1"}, {nr: "a2", phone: phoneExpires}},
			"C": {{nr: "c1"}},
		}, now.Add(-time.Hour), nil
	})
	c.c.recentFrom = now.Add(-2 * time.Hour) // no change in the race window

	n, err := c.loadAll(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.True(t, c.c.isComplete())
	c.c.mu.RLock()
	got := c.c.entries["A"]
	_, hasB := c.c.entries["B"]
	c.c.mu.RUnlock()
	require.Equal(t, []order{{nr: "a0"}, {nr: "a1"}, {nr: "a2", phone: phoneExpires}}, got.states)
	require.False(t, hasB)
	require.Equal(t, phoneExpires, got.expires, "an entry with a phone lives no longer than the phone")
	require.Equal(t, forever, c.c.entries["C"].expires)

	c.c.advance(now)
	_, res := c.Get("B", now)
	require.Equal(t, Hit, res, "complete: B has no listed order")
}

// A load that fails, or lists more eaters than fit, installs nothing.
func TestLoadAllInstallsNothingItCannotTrust(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	c := newTestCache(t, 1, func(context.Context, int) (map[string][]order, time.Time, error) {
		return nil, time.Time{}, boom
	})
	_, err := c.loadAll(context.Background())
	require.ErrorIs(t, err, boom)
	require.False(t, c.c.isComplete())

	c = newTestCache(t, 1, func(context.Context, int) (map[string][]order, time.Time, error) {
		return map[string][]order{"A": {{nr: "a1"}}, "B": {{nr: "b1"}}}, time.Now(), nil
	})
	n, err := c.loadAll(context.Background())
	require.ErrorIs(t, err, errTooBig)
	require.Equal(t, 2, n)
	require.False(t, c.c.isComplete())
	c.c.mu.RLock()
	require.Nil(t, c.c.loadKeys, "the load ended")
	c.c.mu.RUnlock()

	// The Loader is told the bound, and stops there.
	asked := 0
	c = newTestCache(t, 7, func(_ context.Context, maxEaters int) (map[string][]order, time.Time, error) {
		asked = maxEaters
		return nil, time.Time{}, fmt.Errorf("load: %w", ErrTooManyEaters)
	})
	n, err = c.loadAll(context.Background())
	require.ErrorIs(t, err, errTooBig)
	require.Equal(t, 7, asked)
	require.Equal(t, 7, n, "more than the bound")
	require.False(t, c.c.isComplete())
}

// Put gives an entry holding a phone the phone's life.
func TestPutExpiresWithThePhone(t *testing.T) {
	t.Parallel()
	c := newTestCache(t, 10, nil)
	now := time.Now()
	c.c.advance(now)
	c.c.recentFrom = now.Add(-time.Hour)
	_, ok := c.Put("e1", c.Begin(), []order{{nr: "o1", phone: now.Add(time.Second)}, {nr: "o2"}}, now)
	require.True(t, ok)
	c.c.advance(now.Add(900 * time.Millisecond))
	_, res := c.Get("e1", now.Add(999*time.Millisecond))
	require.Equal(t, Hit, res)
	c.c.advance(now.Add(time.Second))
	_, res = c.Get("e1", now.Add(time.Second))
	require.Equal(t, Miss, res)
}

// OnChange hears each change after the cache applied it, and "*" when the
// feed is (re)established or lost.
func TestOnChangeHearsWhatTheFeedApplies(t *testing.T) {
	t.Parallel()
	c, now := testCache(10)
	var heard []string
	var dropped []bool
	w := watchedSink{feedSink: c, onChange: func(key string) {
		heard = append(heard, key)
		_, res := c.get("e1", now)
		dropped = append(dropped, res != Hit)
	}}
	require.True(t, c.put("e1", c.begin(), states("o1"), now, noExpiry))
	w.invalidate("e:e1")
	w.reset()
	require.Equal(t, []string{"e:e1", "*"}, heard)
	require.Equal(t, []bool{true, true}, dropped)
}
