package trackingpresenter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/tracking"
)

// TestPhoneExpiryIsBoundedByItsCopy: the tracking cache keeps a state
// holding a phone no longer than the phone lives, nor than the Redis entry
// (or PostgreSQL read) it came from may be trusted (DESIGN §6).
func TestPhoneExpiryIsBoundedByItsCopy(t *testing.T) {
	t.Parallel()
	now := time.Now()
	expires := now.Add(time.Hour)
	state := func(p *tracking.Phone) orderState {
		return orderState{OrderNr: "o-1", Picker: &pickerState{PickerID: "p-1", Phone: p}}
	}
	_, ok := state(nil).PhoneExpiry()
	require.False(t, ok, "no phone: only a change makes the state wrong")

	at, ok := state(&tracking.Phone{Number: "+79990000001", ExpiresAt: expires}).PhoneExpiry()
	require.True(t, ok)
	require.Equal(t, expires, at, "no copy bound: the phone's expiry")

	at, _ = state(&tracking.Phone{Number: "+79990000001", ExpiresAt: expires, FreshUntil: now.Add(3 * time.Second)}).PhoneExpiry()
	require.Equal(t, now.Add(3*time.Second), at, "the copy ends first")

	soon := now.Add(time.Second)
	at, _ = state(&tracking.Phone{Number: "+79990000001", ExpiresAt: soon, FreshUntil: now.Add(time.Minute)}).PhoneExpiry()
	require.Equal(t, soon, at, "the phone expires first")
}
