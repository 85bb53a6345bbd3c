package trackingpresenter

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/trackingpresenter/internal/statecache"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// The complete load holds, for every eater, exactly what a per-eater read
// gives: listed orders only, in order, with valid phones. (That the cache
// installs it, an entry with a phone living no longer than the phone, is
// statecache's TestLoadAllInstallsTheCompleteSet.)
func TestLoadAllMatchesPerEaterReads(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	s := newStore(db, fakePhones{{OrderNr: "a2", PickerID: "p1"}: {Number: "+79991234567,,12", ExpiresAt: expires}})
	_, err := db.Exec(`
INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at) VALUES
 ('a2', 'A', '{"flow_type":"retail","status":"place_confirmed","place":{"id":"1","name":"P","phone":"+79990000001"}}', now(), now() - interval '1 minute'),
 ('a1', 'A', '{"flow_type":"native","status":"taken","place":{"id":"1","name":"P"},"courier":{"name":"C","phone":"+79990000002"},"eta":"2030-01-01T00:00:00Z"}', now(), now() - interval '2 minutes'),
 ('a0', 'A', '{"flow_type":"native","status":"delivered","place":{"id":"1","name":"P"}}', now() - interval '5 minutes', now() - interval '1 hour'),
 ('a-old', 'A', '{"flow_type":"native","status":"cancelled","place":{"id":"1","name":"P"}}', now() - interval '1 hour', now() - interval '2 hours'),
 ('b1', 'B', '{"flow_type":"native","status":"delivered","place":{"id":"1","name":"P"}}', now() - interval '1 hour', now() - interval '2 hours');
INSERT INTO picker_orders (order_nr, payload, status_event_at) VALUES
 ('a2', '{"picker_id":"p1","status":"picking","status_history":{"picking_at":"2026-01-01T00:00:00Z"}}', now());`)
	require.NoError(t, err)

	all, _, err := s.loadAll(context.Background(), 100)
	require.NoError(t, err)
	require.Len(t, all, 1, "B has no listed order")
	want, err := s.load(context.Background(), "A", time.Now())
	require.NoError(t, err)
	require.Len(t, want, 3)
	require.Equal(t, []string{"a0", "a1", "a2"}, []string{want[0].OrderNr, want[1].OrderNr, want[2].OrderNr})
	require.Equal(t, "+79991234567,,12", want[2].Picker.Phone.Number)
	require.Equal(t, want, all["A"])
	at, ok := want[2].PhoneExpiry()
	require.True(t, ok)
	require.Equal(t, expires, at, "the cache learns the phone's expiry")
	_, ok = want[0].PhoneExpiry()
	require.False(t, ok)
}

// The complete load stops reading at the cache's bound: with more eaters
// than TRACKING_CACHE_ENTRIES it reads no more than the bound's eaters'
// rows (plus the one row that shows one more eater), then says so.
func TestLoadAllStopsReadingAtTheBound(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	s := newStore(db, fakePhones{})
	const eaters, perEater, bound = 20, 3, 4
	_, err := db.Exec(`
INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at)
SELECT 'o-' || e || '-' || n, 'e-' || e,
       '{"flow_type":"native","status":"created","place":{"id":"1","name":"P"}}', now(), now()
FROM generate_series(1, $1::int) e, generate_series(1, $2::int) n`, eaters, perEater)
	require.NoError(t, err)
	var read atomic.Int64
	s.onLoadRow = func() { read.Add(1) }

	all, _, err := s.loadAll(context.Background(), bound)
	require.LessOrEqual(t, read.Load(), int64(bound*perEater+1), "rows read past the bound")
	require.ErrorIs(t, err, statecache.ErrTooManyEaters)
	require.Nil(t, all)

	read.Store(0)
	all, _, err = s.loadAll(context.Background(), eaters)
	require.NoError(t, err, "exactly the bound fits")
	require.Len(t, all, eaters)
	require.Equal(t, int64(eaters*perEater), read.Load())
}
