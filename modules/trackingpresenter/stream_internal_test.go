package trackingpresenter

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/trackingpresenter/internal/statecache"
)

// A burst offered to a stream that has not written yet gives one frame:
// the latest body, with the earliest change's time (for the latency
// metric); the version already offered is not offered again.
func TestStreamCoalescesToTheLatest(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	s := newStream("e", langRU, "", t0)
	require.False(t, s.offer([]byte("a"), "1", t0))
	require.True(t, s.offer([]byte("b"), "2", t0.Add(time.Second)))
	require.True(t, s.offer([]byte("c"), "3", t0.Add(2*time.Second)))
	require.False(t, s.offer([]byte("c"), "3", t0.Add(3*time.Second)), "same version: nothing new")
	require.Len(t, s.wake, 1)
	body, id, at := s.take()
	require.Equal(t, "c", string(body))
	require.Equal(t, "3", id)
	require.Equal(t, t0, at)
	_, id, _ = s.take()
	require.Empty(t, id)

	// The client's Last-Event-ID counts as offered.
	s = newStream("e", langRU, "3", t0)
	require.False(t, s.offer([]byte("c"), "3", t0))
	require.Empty(t, s.wake)

	s.end(endShutdown)
	s.end(endMaxAge)
	require.Equal(t, endShutdown, s.endReason())
	require.False(t, s.offer([]byte("d"), "4", t0), "an ended stream takes nothing")
}

// The id depends on the body alone: 62 bits, 16 hex digits.
func TestStreamVersion(t *testing.T) {
	t.Parallel()
	v := version([]byte(`{"a":1}`))
	require.Len(t, v, 16)
	require.Equal(t, v, version([]byte(`{"a":1}`)))
	require.NotEqual(t, v, version([]byte(`{"a":2}`)))
	require.Contains(t, "0123", v[:1], "the top two bits are clear")
}

// A replica whose change feed stays unproven for over 2 s ends its streams
// and refuses new ones: they would silently miss changes.
func TestStreamsEndWhenTheFeedIsUnproven(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	require.NoError(t, err)
	// Never started: its feed never proves itself.
	c, err := statecache.New(statecache.Options[orderState]{Entries: 10, MaxAge: time.Minute, DSN: "postgres://unused",
		Load:       func(context.Context, int) (map[string][]orderState, time.Time, error) { return nil, time.Time{}, nil },
		Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	cfg, err := parseConfig(nil)
	require.NoError(t, err)
	h := newStreamHub(cfg, m, slog.New(slog.DiscardHandler))
	h.p = &presenter{cache: c}
	s, err := h.open("", langRU, "", time.Now())
	require.NoError(t, err)
	require.NoError(t, h.start(context.Background()))
	t.Cleanup(func() { require.NoError(t, h.shutdown(context.Background())) })
	select {
	case <-s.done:
		require.Equal(t, endFeedUnproven, s.endReason())
	case <-time.After(5 * time.Second):
		t.Fatal("the stream was not ended")
	}
	_, err = h.open("", langRU, "", time.Now())
	require.ErrorIs(t, err, errFeedUnproven)
}

// A picker change of an order notified while the eater's answer was being
// computed (before the hub knew the order was the eater's) makes the hub
// compute it again; one of an unrelated order does not.
func TestStreamRecomputesAfterAMissedOrderChange(t *testing.T) {
	t.Parallel()
	m, err := newMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	cfg, err := parseConfig(nil)
	require.NoError(t, err)
	h := newStreamHub(cfg, m, slog.New(slog.DiscardHandler))
	_, err = h.open("e1", langRU, "", time.Now())
	require.NoError(t, err)
	_, _, ok := h.next() // the first frame's recompute, now "reading"
	require.True(t, ok)
	since := h.orderSeq
	h.changed("o:other")
	h.remember("e1", []orderState{{OrderNr: "o1"}}, since, time.Now(), false)
	require.NotContains(t, h.dirty, "e1")

	since = h.orderSeq
	h.changed("o:o2") // not yet known as e1's
	require.NotContains(t, h.dirty, "e1")
	h.remember("e1", []orderState{{OrderNr: "o1"}, {OrderNr: "o2"}}, since, time.Now(), false)
	require.Contains(t, h.dirty, "e1")
}
