package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPhoneSeqFindsTheEventNumberInABody(t *testing.T) {
	body := []byte(`data: {"payload":{"trackedOrders":[{"actions":[{"payload":{"contact_type":"picker","phone":"+799600000042"}}]}]}}` + "\n")
	assert.Equal(t, int64(42), phoneSeq(body))
	assert.Zero(t, phoneSeq([]byte(`data: {"phone":"+79990000040"}`)), "a place's phone is no event")
	assert.Zero(t, phoneSeq([]byte(`data: {"phone":"+79960`)), "cut short")
}

func TestTrackerSettlesAnEventWithItsOwnOrALaterOnesAnswer(t *testing.T) {
	tr := newTracker(3)
	t0 := time.Now()
	tr.sent(1, 1, t0)
	tr.sent(1, 2, t0.Add(10*time.Millisecond))
	tr.sent(1, 3, t0.Add(20*time.Millisecond))
	tr.sent(2, 1, t0)
	tr.sent(3, 1, t0)
	tr.forget(3, 1) // its insert failed

	tr.seen(1, 2, t0.Add(100*time.Millisecond)) // shows event 2: settles 1 and 2, not 3
	tr.seen(2, 0, t0.Add(100*time.Millisecond)) // shows no event
	lat, missing := tr.drain(0)
	assert.ElementsMatch(t, []time.Duration{100 * time.Millisecond, 90 * time.Millisecond}, lat)
	assert.Equal(t, 2, missing, "eater 1's event 3 and eater 2's event 1")

	lat, missing = tr.drain(0)
	assert.Empty(t, lat, "drain resets")
	assert.Zero(t, missing)
}

func TestStatTicksAddsUtimeAndStime(t *testing.T) {
	// A name with a space and a ')' in it; utime 1234, stime 56.
	line := "4242 (eats (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 9 0 100 0 0\n"
	n, err := statTicks(line)
	require.NoError(t, err)
	assert.Equal(t, int64(1290), n)
	_, err = statTicks("4242 (short) S 1 2")
	assert.ErrorContains(t, err, "fields after the name")
}
