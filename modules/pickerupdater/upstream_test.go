package pickerupdater

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/eats/eats-orders-tracking/modules/pickerupdater/pickerfake"
	"github.com/eats/eats-orders-tracking/modules/tracking"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type upstreamBundle struct {
	t    *testing.T
	fake *pickerfake.Server
	up   *upstream
	reg  *prometheus.Registry
}

// setupUpstream starts a fake and a client with test-sized timings; cfg
// overrides them field by field.
func setupUpstream(t *testing.T, cfg upstreamConfig) *upstreamBundle {
	t.Helper()
	fake := pickerfake.New()
	fake.Start()
	t.Cleanup(fake.Close)

	cfg.BaseURL = fake.URL()
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = time.Second
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
	}
	reg := prometheus.NewRegistry()
	up, err := newUpstream(cfg, reg, nil)
	require.NoError(t, err)
	t.Cleanup(up.close)
	return &upstreamBundle{t: t, fake: fake, up: up, reg: reg}
}

func (b *upstreamBundle) outcomes(outcome string) float64 {
	return metricValue(b.t, b.up.metrics.requests.WithLabelValues(outcome))
}

var (
	updatedAt = time.Date(2025, 11, 20, 10, 15, 30, 123456789, time.UTC)
	expiresAt = time.Date(2025, 11, 20, 11, 15, 30, 0, time.UTC)
)

func TestUpstreamOrderFull(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{})
	b.fake.Set("251120-100001", pickerfake.Order{
		Status:          "picking",
		PickerID:        "picker-7",
		StatusUpdatedAt: updatedAt.In(time.FixedZone("MSK", 3*3600)),
		PlaceID:         42,
		Phone:           "+79001234567",
		PhoneExpiresAt:  expiresAt,
	})

	got, err := b.up.Order(t.Context(), "251120-100001")
	require.NoError(t, err)
	require.Equal(t, upstreamOrder{
		OrderNr:         "251120-100001",
		Status:          tracking.PickerPicking,
		PickerID:        "picker-7",
		StatusUpdatedAt: tracking.Normalize(updatedAt), // microseconds, as tracking.ParseTime keeps them
		PlaceID:         "42",
		Forwarding:      &upstreamForwarding{Phone: "+79001234567", ExpiresAt: expiresAt},
	}, got)
	require.Equal(t, 1, b.fake.Hits("251120-100001"))
	require.Equal(t, 1.0, b.outcomes(outcomeOK))
	require.Equal(t, uint64(1), histogramCount(t, b.reg, "eot_picker_orders_request_duration_seconds"))
}

func TestUpstreamOrderMinimal(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{})
	b.fake.Set("251120-100002", pickerfake.Order{Status: "new", StatusUpdatedAt: updatedAt})

	got, err := b.up.Order(t.Context(), "251120-100002")
	require.NoError(t, err)
	require.Equal(t, upstreamOrder{
		OrderNr:         "251120-100002",
		Status:          tracking.PickerNew,
		StatusUpdatedAt: tracking.Normalize(updatedAt), // microseconds, as tracking.ParseTime keeps them
		PlaceID:         "0",
	}, got)
}

func TestUpstreamOrderToleratesUnknownFields(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{})
	// A place_id past float64's precision proves the integer is read as is.
	b.fake.SetBehaviour("251120-100003", pickerfake.Respond(http.StatusOK, `{
		"meta": {"trace": {"id": "x"}, "next": null},
		"payload": {
			"eats_id": "251120-100003", "status": "complete",
			"status_updated_at": "2025-11-20T13:15:30.123456789+03:00",
			"place_id": 9007199254740993,
			"picker_id": null,
			"customer_picker_phone_forwarding": null,
			"brand_id": 7, "items": [{"id": 1}], "new_field": {"nested": [1, 2, 3]}
		},
		"extra_top_level": true
	}`))

	got, err := b.up.Order(t.Context(), "251120-100003")
	require.NoError(t, err)
	require.Equal(t, upstreamOrder{
		OrderNr:         "251120-100003",
		Status:          tracking.PickerComplete,
		StatusUpdatedAt: tracking.Normalize(updatedAt), // microseconds, as tracking.ParseTime keeps them
		PlaceID:         "9007199254740993",
	}, got)
}

// An answer without place_id is applied (see decodeOrder): nothing stores
// it, and refusing it would leave the order stale for good.
func TestUpstreamOrderToleratesMissingPlaceID(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{})
	b.fake.SetBehaviour("251120-100005", pickerfake.Respond(http.StatusOK,
		`{"meta":{},"payload":{"eats_id":"251120-100005","status":"picking","status_updated_at":"2025-11-20T10:15:30Z"}}`))

	got, err := b.up.Order(t.Context(), "251120-100005")
	require.NoError(t, err)
	require.Equal(t, upstreamOrder{OrderNr: "251120-100005", Status: tracking.PickerPicking, StatusUpdatedAt: time.Date(2025, 11, 20, 10, 15, 30, 0, time.UTC)}, got)
}

func TestUpstreamOrderEscapesQuery(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{})
	const odd = "a&eats_id=b c/+?#%"
	b.fake.Set(odd, pickerfake.Order{Status: "paid"})

	got, err := b.up.Order(t.Context(), odd)
	require.NoError(t, err)
	require.Equal(t, odd, got.OrderNr)
	require.Equal(t, 1, b.fake.Hits(odd))
}

func TestUpstreamOrderNotFound(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{})
	b.fake.Set("251120-100004", pickerfake.Order{Status: "new"})
	b.fake.SetBehaviour("251120-100004", pickerfake.NotFound)

	for _, orderNr := range []string{"251120-100004", "never-set"} {
		_, err := b.up.Order(t.Context(), orderNr)
		require.ErrorIs(t, err, errUpstreamNotFound)
		require.NotErrorIs(t, err, errUpstreamUnavailable)
		require.Equal(t, 1, b.fake.Hits(orderNr), "a 404 is not retried")
	}
	require.Equal(t, 2.0, b.outcomes(outcomeNotFound))
	require.Equal(t, 0.0, b.up.breakerState())
}

func TestUpstreamOrderRejected(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{BreakerFailures: 1})
	for i, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusTooManyRequests} {
		orderNr := fmt.Sprintf("rejected-%d", i)
		b.fake.SetBehaviour(orderNr, pickerfake.Respond(status, `{"code":"nope","message":"no"}`))

		_, err := b.up.Order(t.Context(), orderNr)
		require.ErrorIs(t, err, errUpstreamRejected)
		require.ErrorContains(t, err, fmt.Sprint(status))
		require.Equal(t, 1, b.fake.Hits(orderNr), "a 4xx is not retried")
	}
	require.Equal(t, 3.0, b.outcomes(outcomeRejected))
	require.Equal(t, 0.0, b.up.breakerState(), "a rejection does not open the breaker")
}

func TestUpstreamOrderRetriesServerErrors(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{})
	b.fake.Set("251120-100005", pickerfake.Order{Status: "assigned", PickerID: "p1"})
	b.fake.Script("251120-100005", pickerfake.ServerError, pickerfake.ServerError, pickerfake.OK)

	got, err := b.up.Order(t.Context(), "251120-100005")
	require.NoError(t, err)
	require.Equal(t, tracking.PickerAssigned, got.Status)
	require.Equal(t, 3, b.fake.Hits("251120-100005"))
	require.Equal(t, 1.0, b.outcomes(outcomeOK), "one call, however many attempts")
	require.Equal(t, 2.0, metricValue(t, b.up.metrics.attempts.WithLabelValues("server_error")))
	require.Equal(t, 1.0, metricValue(t, b.up.metrics.attempts.WithLabelValues("ok")))
}

func TestUpstreamOrderGivesUpOnServerErrors(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{MaxAttempts: 3})
	b.fake.Set("251120-100006", pickerfake.Order{Status: "new"})
	b.fake.SetBehaviour("251120-100006", pickerfake.ServerError)

	_, err := b.up.Order(t.Context(), "251120-100006")
	require.ErrorIs(t, err, errUpstreamUnavailable)
	require.NotErrorIs(t, err, errBreakerOpen)
	require.ErrorContains(t, err, "status 500")
	require.Equal(t, 3, b.fake.Hits("251120-100006"))
	require.Equal(t, 1.0, b.outcomes(outcomeError))
}

func TestUpstreamOrderConnectionRefused(t *testing.T) {
	t.Parallel()
	fake := pickerfake.New()
	fake.Start()
	url := fake.URL()
	fake.Close() // nothing listens there any more

	up, err := newUpstream(upstreamConfig{BaseURL: url, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(up.close)

	_, err = up.Order(t.Context(), "251120-100007")
	require.ErrorIs(t, err, errUpstreamUnavailable)
	require.ErrorContains(t, err, "3 attempts")
}

func TestUpstreamOrderSlowPastAttemptDeadline(t *testing.T) {
	t.Parallel()
	// A roomy call deadline, so only the attempt deadline can end the call.
	b := setupUpstream(t, upstreamConfig{AttemptTimeout: 100 * time.Millisecond, MaxAttempts: 2, CallTimeout: time.Minute})
	b.fake.Set("251120-100008", pickerfake.Order{Status: "new"})
	b.fake.SetBehaviour("251120-100008", pickerfake.Slow(time.Minute))

	start := time.Now()
	_, err := b.up.Order(t.Context(), "251120-100008")
	elapsed := time.Since(start)
	require.ErrorIs(t, err, errUpstreamUnavailable)
	require.ErrorContains(t, err, "attempt deadline")
	require.Less(t, elapsed, 2*time.Second, "two 100ms attempts must not wait for the slow answer")
	require.GreaterOrEqual(t, elapsed, 200*time.Millisecond)
	require.Equal(t, 2, b.fake.Hits("251120-100008"), "a timeout is retried")
	require.Equal(t, 2.0, metricValue(t, b.up.metrics.attempts.WithLabelValues("timeout")))
}

func TestUpstreamOrderCallDeadline(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{
		AttemptTimeout: 100 * time.Millisecond,
		MaxAttempts:    50,
		CallTimeout:    250 * time.Millisecond,
	})
	b.fake.Set("251120-100009", pickerfake.Order{Status: "new"})
	b.fake.SetBehaviour("251120-100009", pickerfake.Slow(time.Minute))

	start := time.Now()
	_, err := b.up.Order(t.Context(), "251120-100009")
	require.ErrorIs(t, err, errUpstreamUnavailable)
	require.ErrorIs(t, err, errCallDeadline)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Less(t, b.fake.Hits("251120-100009"), 5, "the call deadline stops the retries")
}

func TestUpstreamOrderRespectsContext(t *testing.T) {
	t.Parallel()

	t.Run("CanceledWhileWaiting", func(t *testing.T) {
		t.Parallel()
		b := setupUpstream(t, upstreamConfig{AttemptTimeout: 30 * time.Second, BreakerFailures: 1})
		b.fake.Set("251120-100010", pickerfake.Order{Status: "new"})
		b.fake.SetBehaviour("251120-100010", pickerfake.Slow(time.Minute))

		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := b.up.Order(ctx, "251120-100010")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NotErrorIs(t, err, errUpstreamUnavailable, "the caller gave up, the upstream did not fail")
		require.Less(t, time.Since(start), 2*time.Second)
		require.Equal(t, 1, b.fake.Hits("251120-100010"))
		require.Equal(t, 0.0, b.up.breakerState(), "the caller's cancellation does not count against the upstream")
	})

	t.Run("CanceledBefore", func(t *testing.T) {
		t.Parallel()
		b := setupUpstream(t, upstreamConfig{})
		b.fake.Set("251120-100011", pickerfake.Order{Status: "new"})

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := b.up.Order(ctx, "251120-100011")
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, 0, b.fake.TotalHits())
	})

	t.Run("CanceledDuringBackoff", func(t *testing.T) {
		t.Parallel()
		b := setupUpstream(t, upstreamConfig{BackoffMin: time.Minute, BackoffMax: time.Minute, CallTimeout: 5 * time.Minute})
		b.fake.SetBehaviour("251120-100012", pickerfake.ServerError)

		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := b.up.Order(ctx, "251120-100012")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), 2*time.Second)
		require.Equal(t, 1, b.fake.Hits("251120-100012"))
	})
}

func TestUpstreamBreaker(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{MaxAttempts: 1, BreakerFailures: 3, BreakerDelay: 200 * time.Millisecond})
	const orderNr = "251120-100013"
	b.fake.Set(orderNr, pickerfake.Order{Status: "packing"})
	b.fake.SetDown(true)

	for range 3 {
		_, err := b.up.Order(t.Context(), orderNr)
		require.ErrorIs(t, err, errUpstreamUnavailable)
		require.NotErrorIs(t, err, errBreakerOpen)
	}
	require.Equal(t, 3, b.fake.TotalHits())
	require.Equal(t, 2.0, metricValue(t, b.up.metrics.breakerState), "open")

	// Open: fails fast without asking the upstream.
	_, err := b.up.Order(t.Context(), orderNr)
	require.ErrorIs(t, err, errUpstreamUnavailable)
	require.ErrorIs(t, err, errBreakerOpen)
	require.Equal(t, 3, b.fake.TotalHits())
	require.Equal(t, 1.0, b.outcomes(outcomeBreakerOpen))

	// After the delay one probe goes through; still down, so it opens again.
	require.Eventually(t, func() bool {
		_, err := b.up.Order(t.Context(), orderNr)
		require.ErrorIs(t, err, errUpstreamUnavailable)
		return b.fake.TotalHits() == 4
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 2.0, metricValue(t, b.up.metrics.breakerState), "a failed probe opens the breaker again")
	_, err = b.up.Order(t.Context(), orderNr)
	require.ErrorIs(t, err, errBreakerOpen)
	require.Equal(t, 4, b.fake.TotalHits())

	// Back up: the next probe succeeds and closes the breaker.
	b.fake.SetDown(false)
	require.Eventually(t, func() bool {
		got, err := b.up.Order(t.Context(), orderNr)
		if err != nil {
			require.ErrorIs(t, err, errBreakerOpen)
			return false
		}
		require.Equal(t, tracking.PickerPacking, got.Status)
		return true
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 5, b.fake.TotalHits(), "only probes reached the upstream while open")
	require.Equal(t, 0.0, metricValue(t, b.up.metrics.breakerState), "closed")

	_, err = b.up.Order(t.Context(), orderNr)
	require.NoError(t, err)
	require.Equal(t, 6, b.fake.TotalHits())
}

func TestUpstreamBreakerOpensBetweenRetries(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{MaxAttempts: 3, BreakerFailures: 2, BreakerDelay: time.Minute})
	b.fake.SetBehaviour("251120-100014", pickerfake.ServerError)

	_, err := b.up.Order(t.Context(), "251120-100014")
	require.ErrorIs(t, err, errUpstreamUnavailable)
	require.ErrorIs(t, err, errBreakerOpen)
	require.Equal(t, 2, b.fake.Hits("251120-100014"), "the third attempt is stopped by the breaker")
}

func TestUpstreamOrderMalformed(t *testing.T) {
	t.Parallel()
	const phone = "+79001234567"
	answer := func(payload string) pickerfake.Behaviour {
		return pickerfake.Respond(http.StatusOK, `{"meta":{},"payload":{`+payload+`}}`)
	}
	const base = `"eats_id":"o1","status":"new","status_updated_at":"2025-11-20T10:15:30Z","place_id":1`

	tests := []struct {
		name      string
		behaviour pickerfake.Behaviour
		set       *pickerfake.Order
		want      string
	}{
		{name: "Garbage", behaviour: pickerfake.Garbage, want: "bad JSON"},
		{name: "NotAnObject", behaviour: pickerfake.Respond(http.StatusOK, `[]`), want: "bad JSON"},
		{name: "TrailingGarbage", behaviour: pickerfake.Respond(http.StatusOK, `{"payload":{`+base+`}} x`), want: "bad JSON"},
		{name: "Empty", behaviour: pickerfake.Respond(http.StatusOK, ``), want: "bad JSON"},
		{name: "NoPayload", behaviour: pickerfake.Respond(http.StatusOK, `{"meta":{}}`), want: "payload is missing"},
		{name: "NoEatsID", behaviour: answer(`"status":"new","status_updated_at":"2025-11-20T10:15:30Z"`), want: "eats_id is missing"},
		{name: "OtherEatsID", behaviour: answer(strings.Replace(base, `"o1"`, `"o2"`, 1)), want: `eats_id "o2" is not the order`},
		{name: "NoStatus", behaviour: answer(`"eats_id":"o1","status_updated_at":"2025-11-20T10:15:30Z"`), want: "status is missing"},
		{name: "UnknownStatus", set: &pickerfake.Order{Status: "teleported"}, want: `status "teleported" is unknown`},
		{name: "StatusNotString", behaviour: answer(`"eats_id":"o1","status":3,"status_updated_at":"2025-11-20T10:15:30Z"`), want: "bad JSON"},
		{name: "NoStatusUpdatedAt", behaviour: answer(`"eats_id":"o1","status":"new"`), want: "status_updated_at is missing"},
		{name: "BadStatusUpdatedAt", behaviour: answer(`"eats_id":"o1","status":"new","status_updated_at":"20.11.2025 10:15"`), want: `invalid payload.status_updated_at: not an RFC 3339 date-time (got "20.11.2025 10:15")`},
		{name: "PlaceIDNotInteger", behaviour: answer(strings.Replace(base, `"place_id":1`, `"place_id":1.5`, 1)), want: "place_id \"1.5\" is not an integer"},
		{name: "ForwardingNoPhone", behaviour: answer(base + `,"customer_picker_phone_forwarding":{"expires_at":"2025-11-20T11:00:00Z"}`), want: "forwarding.phone is missing"},
		{name: "ForwardingNoExpiry", behaviour: answer(base + `,"customer_picker_phone_forwarding":{"phone":"` + phone + `"}`), want: "forwarding.expires_at is missing"},
		{name: "ForwardingBadExpiry", behaviour: answer(base + `,"customer_picker_phone_forwarding":{"phone":"` + phone + `","expires_at":"soon"}`), want: `forwarding.expires_at: not an RFC 3339 date-time (got "soon")`},
		{name: "ForwardingPhoneNotString", behaviour: answer(base + `,"customer_picker_phone_forwarding":{"phone":79001234567,"expires_at":"2025-11-20T11:00:00Z"}`), want: "bad JSON"},
		{name: "NoContent", behaviour: pickerfake.Respond(http.StatusNoContent, ``), want: "status 204"},
		{name: "Oversized", behaviour: answer(base + `,"pad":"` + strings.Repeat("x", maxAnswerBytes) + `"`), want: "answer over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Generous deadline: these cases are about decoding, and a 1 MiB
			// answer under -race on a loaded 2-core machine can take seconds.
			b := setupUpstream(t, upstreamConfig{AttemptTimeout: 15 * time.Second})
			if tt.set != nil {
				b.fake.Set("o1", *tt.set)
			} else {
				b.fake.SetBehaviour("o1", tt.behaviour)
			}

			_, err := b.up.Order(t.Context(), "o1")
			require.ErrorIs(t, err, errUpstreamMalformed)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "9001234567", "a phone never shows in errors")
			require.Equal(t, 1, b.fake.Hits("o1"), "a malformed answer is not retried")
			require.Equal(t, 1.0, b.outcomes(outcomeMalformed))
			require.Equal(t, 0.0, b.up.breakerState())
		})
	}
}

func TestNewUpstreamConfig(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := upstreamConfig{BaseURL: "http://picker-orders.local"}.withDefaults()
		require.NoError(t, err)
		require.Equal(t, upstreamConfig{
			BaseURL:         "http://picker-orders.local",
			AttemptTimeout:  2 * time.Second,
			MaxAttempts:     3,
			BackoffMin:      100 * time.Millisecond,
			BackoffMax:      time.Second,
			BreakerFailures: 5,
			BreakerDelay:    10 * time.Second,
			CallTimeout:     10 * time.Second,
		}, cfg)
	})

	t.Run("BaseURLWithPath", func(t *testing.T) {
		t.Parallel()
		up, err := newUpstream(upstreamConfig{BaseURL: "https://gw.local/picker/"}, nil, nil)
		require.NoError(t, err)
		require.Equal(t, "https://gw.local/picker/api/v1/order", up.orderURL.String())
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			cfg  upstreamConfig
			want string
		}{
			{upstreamConfig{}, "base URL is empty"},
			{upstreamConfig{BaseURL: "picker-orders.local:80"}, "want http(s)://"},
			{upstreamConfig{BaseURL: "ftp://picker-orders.local"}, "want http(s)://"},
			{upstreamConfig{BaseURL: "http://x", MaxAttempts: -1}, "max attempts -1"},
			{upstreamConfig{BaseURL: "http://x", AttemptTimeout: -time.Second}, "negative"},
			{upstreamConfig{BaseURL: "http://x", BackoffMin: 2 * time.Second}, "backoff min 2s is over max 1s"},
			{upstreamConfig{BaseURL: "http://x", CallTimeout: time.Second}, "call timeout 1s is under attempt timeout 2s"},
		} {
			_, err := newUpstream(tt.cfg, nil, nil)
			require.ErrorContains(t, err, tt.want, "%+v", tt.cfg)
		}
	})

	t.Run("Metrics", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		_, err := newUpstream(upstreamConfig{BaseURL: "http://x"}, reg, nil)
		require.NoError(t, err)
		families, err := reg.Gather()
		require.NoError(t, err)
		var names []string
		for _, f := range families {
			names = append(names, f.GetName())
		}
		// Vectors show once they have a child; the gauge always does.
		require.Contains(t, names, "eot_picker_orders_breaker_state")
		_, err = newUpstream(upstreamConfig{BaseURL: "http://x"}, reg, nil)
		require.ErrorContains(t, err, "register picker orders metrics", "a second client on one registry is a wiring bug")
	})
}

func TestUpstreamOrderConcurrentCalls(t *testing.T) {
	t.Parallel()
	b := setupUpstream(t, upstreamConfig{BreakerFailures: 100})
	const n = 20
	for i := range n {
		orderNr := fmt.Sprintf("c-%d", i)
		b.fake.Set(orderNr, pickerfake.Order{Status: "new"})
		if i%2 == 0 {
			b.fake.Script(orderNr, pickerfake.ServerError, pickerfake.OK)
		}
	}

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = b.up.Order(t.Context(), fmt.Sprintf("c-%d", i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "order %d", i)
	}
	require.Equal(t, n+n/2, b.fake.TotalHits())
	require.Equal(t, float64(n), b.outcomes(outcomeOK))
}

func TestUpstreamOrderNeverPrintsPhone(t *testing.T) {
	t.Parallel()
	o := upstreamOrder{OrderNr: "o1", Status: tracking.PickerPaid, Forwarding: &upstreamForwarding{Phone: "+79001234567", ExpiresAt: expiresAt}}
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("refreshed", "order", o, "forwarding", o.Forwarding)
	require.Contains(t, buf.String(), "*******4567")
	require.NotContains(t, buf.String(), "9001234567")
	require.NotContains(t, fmt.Sprintf("%v %+v %s", o.Forwarding, *o.Forwarding, o.Forwarding), "9001234567")
}

// FuzzDecodeOrder feeds outside input to the decoder: it must never panic,
// and whatever it accepts must be a usable order for the one asked.
func FuzzDecodeOrder(f *testing.F) {
	f.Add(`{"meta":{},"payload":{"eats_id":"o1","status":"new","status_updated_at":"2025-11-20T10:15:30Z","place_id":1}}`)
	f.Add(`{"payload":{"eats_id":"o1","status":"paid","picker_id":"p","status_updated_at":"2025-11-20T10:15:30.5+03:00","place_id":"7",` +
		`"customer_picker_phone_forwarding":{"phone":"+79001234567","expires_at":"2025-11-20T11:00:00Z"}}}`)
	f.Add(`{"payload":{"eats_id":"o1","status":"new","status_updated_at":"x"}}`)
	f.Add(`{"payload":null}`)
	f.Add(`garbage`)
	f.Fuzz(func(t *testing.T, body string) {
		o, err := decodeOrder([]byte(body), "o1")
		if err != nil {
			require.ErrorIs(t, err, errUpstreamMalformed)
			return
		}
		require.Equal(t, "o1", o.OrderNr)
		require.True(t, o.Status.Valid())
		if o.Forwarding != nil {
			require.NotEmpty(t, o.Forwarding.Phone)
		}
	})
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var n uint64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

// metricValue reads a counter or gauge without prometheus/testutil, whose
// diff dependency the module does not carry.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	require.NoError(t, m.Write(&out))
	if c := out.GetCounter(); c != nil {
		return c.GetValue()
	}
	return out.GetGauge().GetValue()
}
