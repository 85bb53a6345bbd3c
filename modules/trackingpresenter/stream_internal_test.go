package trackingpresenter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
