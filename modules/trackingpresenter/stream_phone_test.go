package trackingpresenter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/cache"
)

// slowPhoneWrites delays every Redis command carrying a phone that starts
// with prefix: picker-ingest's cache write then lands after the change
// notification, as it may in production under load.
type slowPhoneWrites struct {
	prefix string
	delay  time.Duration
}

func (w slowPhoneWrites) wait(ctx context.Context, cmds ...redis.Cmder) {
	for _, c := range cmds {
		if strings.Contains(fmt.Sprint(c.Args()...), w.prefix) {
			select {
			case <-time.After(w.delay):
			case <-ctx.Done():
			}
			return
		}
	}
}

func (w slowPhoneWrites) DialHook(next redis.DialHook) redis.DialHook { return next }
func (w slowPhoneWrites) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		w.wait(ctx, cmd)
		return next(ctx, cmd)
	}
}
func (w slowPhoneWrites) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		w.wait(ctx, cmds...)
		return next(ctx, cmds)
	}
}

// TestStreamReplacedPhoneArrivesAtOnce: the frame a change notification
// triggers is computed from Redis, which picker-ingest writes only after
// its commit is notified; when that write is late the frame still holds
// the replaced phone. The stream must show the replacing phone within
// about a second, as polls do, not when the old phone's cache entry ends
// (PHONE_CACHE_TTL, a minute, later).
func TestStreamReplacedPhoneArrivesAtOnce(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil, fx.Invoke(func(r *cache.Redis) {
		require.True(t, r.Enabled())
		r.Client.AddHook(slowPhoneWrites{prefix: "+7999000020", delay: 300 * time.Millisecond})
	}))
	insertOrder(t, a.DB, order{nr: "rp-1", eater: "rp1", flow: "retail", status: "place_confirmed", placePhone: "+79990000040"})
	settle(t, a)
	s := openStream(t, a, user("rp1"))
	defer s.close()
	s.next(t, 5*time.Second)

	insert := func(args pickeringest.PickerOrderArgs) {
		t.Helper()
		args.OrderNr, args.PlaceID, args.PickerID, args.CreatedAt = "rp-1", "40", "p-1", time.Now()
		_, err := a.Client.Insert(context.Background(), args, nil)
		require.NoError(t, err)
	}
	within := func(d time.Duration, want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		waitFrameWith(ctx, t, s, want)
	}
	phone := func(number string) pickeringest.PickerOrderArgs {
		return pickeringest.PickerOrderArgs{
			EventType: tracking.EventPickerPhoneForwardingReady, OrderStatus: tracking.PickerPicking,
			CustomerPickerPhoneForwarding: &pickeringest.Forwarding{Phone: number, ExpiresAt: time.Now().Add(time.Hour)},
		}
	}
	insert(pickeringest.PickerOrderArgs{EventType: tracking.EventStatusChange, OrderStatus: tracking.PickerPicking})
	insert(phone("+79990000101")) // written to Redis at once
	within(5*time.Second, "+79990000101")

	// Each replacement is written to Redis 300 ms after it is notified.
	for _, number := range []string{"+79990000201", "+79990000202"} {
		insert(phone(number))
		within(3*time.Second, number)
	}
}
