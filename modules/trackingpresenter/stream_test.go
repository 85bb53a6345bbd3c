package trackingpresenter_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/modules/trackingpresenter"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// frame is one server-sent event as a client parses it.
type frame struct {
	event, id, data, retry string
}

// sse is an open stream read by a goroutine: frames arrive on frames,
// which is closed when the stream ends.
type sse struct {
	resp   *http.Response
	frames chan frame
	cancel context.CancelFunc
}

// openStream opens the stream and requires a 200.
func openStream(t *testing.T, a *apptest.App, headers map[string]string) *sse {
	t.Helper()
	s, code := tryStream(t, a, headers)
	require.Equal(t, http.StatusOK, code)
	return s
}

// tryStream opens the stream; on a status other than 200 it returns nil
// and the status.
func tryStream(t *testing.T, a *apptest.App, headers map[string]string) (*sse, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+trackingpresenter.StreamPath, nil)
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req) //nolint:bodyclose // closed here or by s.close
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		cancel()
		return nil, resp.StatusCode
	}
	s := &sse{resp: resp, frames: make(chan frame, 100), cancel: cancel}
	t.Cleanup(s.close)
	go func() {
		defer close(s.frames)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var f frame
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if f != (frame{}) {
					s.frames <- f
				}
				f = frame{}
			case strings.HasPrefix(line, ":"):
				f.event = "comment" // a heartbeat
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "event":
					f.event = v
				case "id":
					f.id = v
				case "data":
					f.data = v
				case "retry":
					f.retry = v
				}
			}
		}
	}()
	return s, http.StatusOK
}

func (s *sse) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// next returns the next tracking frame (skipping retry: and comments), or
// fails after within.
func (s *sse) next(t *testing.T, within time.Duration) frame {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case f, ok := <-s.frames:
			require.True(t, ok, "the stream ended")
			if f.event == "tracking" {
				return f
			}
		case <-deadline:
			t.Fatalf("no tracking frame within %s", within)
		}
	}
}

// quiet requires no tracking frame for d.
func (s *sse) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return
			}
			require.NotEqual(t, "tracking", f.event, "unexpected frame %+v", f)
		case <-deadline:
			return
		}
	}
}

// ended waits for the stream to end and returns the last retry: it saw.
func (s *sse) ended(t *testing.T, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	var retry string
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return retry
			}
			if f.retry != "" {
				retry = f.retry
			}
		case <-deadline:
			t.Fatalf("the stream did not end within %s", within)
		}
	}
}

// pollBody is the polling endpoint's body, as a stream frame carries it.
func pollBody(t *testing.T, a *apptest.App, headers map[string]string) string {
	t.Helper()
	code, _, body := a.Do(t, http.MethodGet, trackingpresenter.Path, nil, headers)
	require.Equal(t, http.StatusOK, code)
	return strings.TrimSuffix(string(body), "\n")
}

func TestStreamFramesFollowChanges(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	insertOrder(t, a.DB, order{nr: "s-1", eater: "s1", flow: "retail", status: "place_confirmed", placePhone: "+79990000040"})
	settle(t, a)
	en := map[string]string{"X-Eats-User": "user_id=s1", "X-Request-Language": "en"}

	s := openStream(t, a, en)
	require.Equal(t, "text/event-stream", s.resp.Header.Get("Content-Type"))
	require.Equal(t, "no-store", s.resp.Header.Get("Cache-Control"))
	require.Equal(t, "no", s.resp.Header.Get("X-Accel-Buffering"))
	first := s.next(t, 5*time.Second)
	require.Equal(t, pollBody(t, a, en), first.data, "the frame is the polling body")
	require.Equal(t, trackingpresenter.Version([]byte(first.data)), first.id)

	// A picker change (notified by order_nr) and an orders change (by eater).
	insertPicker(t, a.DB, "s-1", "p1", "assigned", "assigned_at")
	f := s.next(t, 5*time.Second)
	require.Contains(t, f.data, `"picker_contact_us"`)
	settle(t, a)
	require.Equal(t, pollBody(t, a, en), f.data)
	insertOrder(t, a.DB, order{nr: "s-1", eater: "s1", flow: "retail", status: "taken", placePhone: "+79990000040"})
	f = s.next(t, 5*time.Second)
	require.Contains(t, f.data, `"status":"taken"`)
	settle(t, a)
	require.Equal(t, pollBody(t, a, en), f.data)

	// A change of another eater sends nothing here.
	insertOrder(t, a.DB, order{nr: "s-2", eater: "s2", flow: "native", status: "created"})
	s.quiet(t, 1500*time.Millisecond)

	// Reconnecting with the last id gives no duplicate, then the next change.
	s.close()
	again := openStream(t, a, map[string]string{"X-Eats-User": "user_id=s1", "X-Request-Language": "en", "Last-Event-ID": f.id})
	again.quiet(t, 1500*time.Millisecond)
	insertOrder(t, a.DB, order{nr: "s-3", eater: "s1", flow: "native", status: "created"})
	f2 := again.next(t, 5*time.Second)
	require.NotEqual(t, f.id, f2.id)
	require.Contains(t, f2.data, `"s-3"`)

	// A stale Last-Event-ID gets the current answer at once.
	stale := openStream(t, a, map[string]string{"X-Eats-User": "user_id=s1", "X-Request-Language": "en", "Last-Event-ID": first.id})
	require.Equal(t, f2.data, stale.next(t, 5*time.Second).data)

	require.Contains(t, metricsText(t, a), "eot_tracking_stream_frames_total")
}

func TestStreamEventThroughTheQueue(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	// A second instance on the same database holds the stream.
	b := apptest.StartEnv(t, a.Env)
	insertOrder(t, a.DB, order{nr: "q-1", eater: "q1", flow: "retail", status: "place_confirmed", placePhone: "+79990000040"})
	settle(t, b)
	s := openStream(t, b, user("q1"))
	require.Equal(t, "place_confirmed", statusOf(t, s.next(t, 5*time.Second)))

	_, err := a.Client.Insert(context.Background(), pickeringest.PickerOrderArgs{
		EventType: tracking.EventStatusChange, OrderNr: "q-1", OrderStatus: tracking.PickerAssigned, PlaceID: "40",
		PickerID: "p1", CreatedAt: time.Now(),
	}, nil)
	require.NoError(t, err)
	require.Equal(t, "picker_contact_us", statusOf(t, s.next(t, 10*time.Second)))
}

func statusOf(t *testing.T, f frame) string {
	t.Helper()
	i := strings.Index(f.data, `"trackedOrders":[{"order":`)
	require.GreaterOrEqual(t, i, 0, f.data)
	j := strings.Index(f.data[i:], `"status":"`)
	// The card's status follows the order object.
	rest := f.data[i+j+len(`"status":"`):]
	rest = rest[strings.Index(rest, `"status":"`)+len(`"status":"`):]
	return rest[:strings.Index(rest, `"`)]
}

func TestStreamRefusals(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, map[string]string{"TRACKING_STREAMS_MAX": "2", "TRACKING_STREAMS_PER_EATER": "1"})

	code, _, body := a.Do(t, http.MethodGet, trackingpresenter.StreamPath, nil, map[string]string{"X-Eats-User": "user_id="})
	require.Equal(t, http.StatusBadRequest, code, string(body))
	require.Contains(t, string(body), "header.X-Eats-User")

	// No identity: the empty answer once.
	anon := openStream(t, a, nil)
	require.Equal(t, pollBody(t, a, nil), anon.next(t, 5*time.Second).data)

	// Per eater: a new stream ends the eater's oldest.
	old := openStream(t, a, user("r1"))
	old.next(t, 5*time.Second)
	newer := openStream(t, a, user("r1"))
	newer.next(t, 5*time.Second)
	require.NotEmpty(t, old.ended(t, 5*time.Second), "ended with retry:")

	// Over TRACKING_STREAMS_MAX (anon + newer): 503 with Retry-After.
	code, hdr, body := a.Do(t, http.MethodGet, trackingpresenter.StreamPath, nil, user("r2"))
	require.Equal(t, http.StatusServiceUnavailable, code, string(body))
	require.NotEmpty(t, hdr.Get("Retry-After"))
	require.Equal(t, "application/problem+json", hdr.Get("Content-Type"))
	anon.close()
	pgtest.Eventually(t, 5*time.Second, func() bool {
		s, code := tryStream(t, a, user("r2"))
		if s != nil {
			s.close()
		}
		return code == http.StatusOK
	}, "a stream slot frees when one closes")

	off := apptest.Start(t, map[string]string{"TRACKING_CACHE_ENTRIES": "0"})
	code, hdr, _ = off.Do(t, http.MethodGet, trackingpresenter.StreamPath, nil, user("r1"))
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.NotEmpty(t, hdr.Get("Retry-After"))
}

// A reader that never reads does not hold up another eater's frames.
func TestStreamSlowReaderDoesNotBlock(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	slow := openStream(t, a, user("slow"))
	_ = slow // never read from again
	fast := openStream(t, a, user("fast"))
	fast.next(t, 5*time.Second)
	for i := range 50 {
		insertOrder(t, a.DB, order{nr: "slow-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), eater: "slow", flow: "native", status: "created"})
	}
	insertOrder(t, a.DB, order{nr: "fast-1", eater: "fast", flow: "native", status: "created"})
	require.Contains(t, fast.next(t, 5*time.Second).data, `"fast-1"`)
}

// SIGTERM (the app stopping) ends open streams at the start of the drain,
// so the stop does not wait for them.
func TestStreamEndsOnShutdown(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, map[string]string{"SHUTDOWN_TIMEOUT": "20s"})
	s := openStream(t, a, user("bye"))
	s.next(t, 5*time.Second)
	started := time.Now()
	a.Stop(t)
	require.Less(t, time.Since(started), 10*time.Second)
	require.NotEmpty(t, s.ended(t, 5*time.Second), "ended with retry:")
}

// Frames that come from time, with no change committed: a shown phone
// expiring, a finished order leaving the list after 15 minutes, and an
// experiments reload.
func TestStreamTimeDrivenFrames(t *testing.T) {
	t.Parallel()
	exps := experimentsFile(t)
	a := apptest.Start(t, map[string]string{"EXPERIMENTS_FILE": exps})

	// The phone expires: P2 turns into P1.
	insertOrder(t, a.DB, order{nr: "t-1", eater: "t1", flow: "retail", status: "place_confirmed", placePhone: "+79990000040"})
	insertPicker(t, a.DB, "t-1", "p1", "picking", "assigned_at", "picking_at")
	expires := time.Now().Add(3 * time.Second)
	insertPhone(t, a.DB, "t-1", "p1", "+79991234567,,123", expires)
	settle(t, a)
	phone := openStream(t, a, user("t1"))
	require.Equal(t, "picker_call", statusOf(t, phone.next(t, 5*time.Second)))
	f := phone.next(t, 10*time.Second)
	require.False(t, time.Now().Before(expires), "a frame before the phone expired: %s", f.data)
	require.Equal(t, "picker_contact_us", statusOf(t, f))

	// A delivered order leaves the list 15 minutes after its event.
	delivered := time.Now().Add(-15*time.Minute + 3*time.Second)
	insertOrder(t, a.DB, order{nr: "t-2", eater: "t2", flow: "native", status: "delivered", at: delivered, first: delivered.Add(-time.Hour)})
	settle(t, a)
	gone := openStream(t, a, user("t2"))
	require.Contains(t, gone.next(t, 5*time.Second).data, `"t-2"`)
	f = gone.next(t, 10*time.Second)
	require.Contains(t, f.data, `"trackedOrders":[]`)

	// An experiments reload: call_picker off for every eater turns P2 into P1.
	insertOrder(t, a.DB, order{nr: "t-3", eater: "t3", flow: "retail", status: "place_confirmed", placePhone: "+79990000040"})
	insertPicker(t, a.DB, "t-3", "p1", "picking", "assigned_at", "picking_at")
	insertPhone(t, a.DB, "t-3", "p1", "+79991234567,,123", time.Now().Add(time.Hour))
	settle(t, a)
	reload := openStream(t, a, user("t3"))
	require.Equal(t, "picker_call", statusOf(t, reload.next(t, 5*time.Second)))
	require.NoError(t, os.WriteFile(exps, []byte(`
experiments:
  eats_orders_tracking_retail_call_picker:
    default: {enabled: false}
  eats_orders_tracking_retail_contact_us:
    default: {enabled: true}
`), 0o600))
	require.Equal(t, "picker_contact_us", statusOf(t, reload.next(t, 10*time.Second)))
}

// A stream ends with retry: after TRACKING_STREAM_MAX_AGE.
func TestStreamMaxAge(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, map[string]string{"TRACKING_STREAM_MAX_AGE": "1s"})
	s := openStream(t, a, user("old"))
	s.next(t, 5*time.Second)
	require.NotEmpty(t, s.ended(t, 5*time.Second), "ended with retry:")
	require.Contains(t, metricsText(t, a), `eot_tracking_streams_ended_total{reason="max_age"} 1`)
}

// A burst of changes: frames never go back (each change adds an order, so
// the count only grows), a burst may give fewer frames than changes, and
// the last frame is the latest answer.
func TestStreamBurstNeverGoesBack(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	s := openStream(t, a, user("burst"))
	require.Contains(t, s.next(t, 5*time.Second).data, `"count":0`)
	const n = 30
	for i := range n {
		insertOrder(t, a.DB, order{nr: fmt.Sprintf("b-%02d", i), eater: "burst", flow: "native", status: "created"})
	}
	last := 0
	for last < n {
		f := s.next(t, 10*time.Second)
		var r trackingpresenter.TrackingResponse
		require.NoError(t, json.Unmarshal([]byte(f.data), &r))
		require.Greater(t, r.Meta.Count, last, "an older answer after a newer one")
		last = r.Meta.Count
	}
	settle(t, a)
	s.quiet(t, time.Second)
	require.Contains(t, pollBody(t, a, user("burst")), `"count":30`)
}

// A stream outlives the server's ReadTimeout (15 s) and WriteTimeout
// (30 s): each write extends its own deadline. Quiet, it gets a heartbeat
// comment every 15 s. (Slow by nature: it runs in parallel with the rest.)
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, nil)
	s := openStream(t, a, user("long"))
	s.next(t, 5*time.Second)
	beats := 0
	for quiet := time.After(35 * time.Second); beats >= 0; {
		select {
		case f, ok := <-s.frames:
			require.True(t, ok, "the stream ended")
			require.Equal(t, "comment", f.event, "only heartbeats while nothing changes: %+v", f)
			beats++
		case <-quiet:
			require.Equal(t, 2, beats, "a heartbeat every 15 s")
			beats = -1
		}
	}
	insertOrder(t, a.DB, order{nr: "long-1", eater: "long", flow: "native", status: "created"})
	require.Contains(t, s.next(t, 5*time.Second).data, `"long-1"`)
}
