package pickerfake_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/eats/eats-orders-tracking/modules/pickerupdater/pickerfake"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func setup(t *testing.T) *pickerfake.Server {
	t.Helper()
	s := pickerfake.New()
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// get asks the fake for an order and returns the status and body.
func get(t *testing.T, base, orderNr string) (int, string) {
	t.Helper()
	u := base + pickerfake.Path + "?" + url.Values{"eats_id": {orderNr}}.Encode()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestOrderAnswer(t *testing.T) {
	t.Parallel()
	s := setup(t)
	at := time.Date(2025, 11, 20, 10, 15, 30, 0, time.UTC)
	s.Set("o1", pickerfake.Order{
		Status: "picking", PickerID: "p1", StatusUpdatedAt: at, PlaceID: 42,
		Phone: "+79001234567", PhoneExpiresAt: at.Add(time.Hour),
	})
	s.Set("o2", pickerfake.Order{Status: "new"})

	status, body := get(t, s.URL(), "o1")
	require.Equal(t, http.StatusOK, status)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	payload := got["payload"].(map[string]any)
	require.Equal(t, "o1", payload["eats_id"])
	require.Equal(t, "picking", payload["status"])
	require.Equal(t, "p1", payload["picker_id"])
	require.Equal(t, "2025-11-20T10:15:30Z", payload["status_updated_at"])
	require.Equal(t, 42.0, payload["place_id"])
	require.Contains(t, payload, "brand_id", "an unknown field proves the client's tolerance")
	require.Equal(t, map[string]any{
		"phone": "+79001234567", "expires_at": "2025-11-20T11:15:30Z", "extension": "1234",
	}, payload["customer_picker_phone_forwarding"])

	status, body = get(t, s.URL(), "o2")
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	payload = got["payload"].(map[string]any)
	require.NotContains(t, payload, "picker_id")
	require.NotContains(t, payload, "customer_picker_phone_forwarding")
	require.NotEmpty(t, payload["status_updated_at"], "defaults to the time of Set")
}

func TestBehaviours(t *testing.T) {
	t.Parallel()
	s := setup(t)
	s.Set("o1", pickerfake.Order{Status: "new"})

	status, body := get(t, s.URL(), "unknown")
	require.Equal(t, http.StatusNotFound, status)
	require.JSONEq(t, `{"code":"order_not_found","message":"order not found"}`, body)

	s.SetBehaviour("o1", pickerfake.ServerError)
	status, _ = get(t, s.URL(), "o1")
	require.Equal(t, http.StatusInternalServerError, status)

	s.SetBehaviour("o1", pickerfake.Garbage)
	status, body = get(t, s.URL(), "o1")
	require.Equal(t, http.StatusOK, status)
	require.False(t, json.Valid([]byte(body)))

	s.SetBehaviour("o1", pickerfake.NotFound)
	status, _ = get(t, s.URL(), "o1")
	require.Equal(t, http.StatusNotFound, status)

	s.SetBehaviour("o1", pickerfake.Respond(http.StatusTeapot, `{"code":"teapot"}`))
	status, body = get(t, s.URL(), "o1")
	require.Equal(t, http.StatusTeapot, status)
	require.JSONEq(t, `{"code":"teapot"}`, body)

	s.SetBehaviour("o1", pickerfake.Slow(50*time.Millisecond))
	start := time.Now()
	status, _ = get(t, s.URL(), "o1")
	require.Equal(t, http.StatusOK, status)
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)

	s.Script("o1") // back to OK
	status, _ = get(t, s.URL(), "o1")
	require.Equal(t, http.StatusOK, status)

	s.SetDown(true)
	status, _ = get(t, s.URL(), "o1")
	require.Equal(t, http.StatusServiceUnavailable, status)
	s.SetDown(false)

	require.Equal(t, 7, s.Hits("o1"))
	require.Equal(t, 1, s.Hits("unknown"))
	require.Equal(t, 8, s.TotalHits())
}

func TestScriptRepeatsLast(t *testing.T) {
	t.Parallel()
	s := setup(t)
	s.Set("o1", pickerfake.Order{Status: "new"})
	s.Script("o1", pickerfake.ServerError, pickerfake.NotFound, pickerfake.OK)

	var got []int
	for range 5 {
		status, _ := get(t, s.URL(), "o1")
		got = append(got, status)
	}
	require.Equal(t, []int{500, 404, 200, 200, 200}, got)
}

func TestConcurrentScript(t *testing.T) {
	t.Parallel()
	s := setup(t)
	s.Set("o1", pickerfake.Order{Status: "new"})
	s.Script("o1", pickerfake.ServerError, pickerfake.ServerError, pickerfake.ServerError, pickerfake.OK)

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
	)
	for range 20 {
		wg.Go(func() {
			status, _ := get(t, s.URL(), "o1")
			mu.Lock()
			counts[status]++
			mu.Unlock()
		})
		wg.Go(func() { s.Set("o2", pickerfake.Order{Status: "new"}) })
	}
	wg.Wait()
	require.Equal(t, map[int]int{500: 3, 200: 17}, counts, "each scripted answer is used exactly once")
	require.Equal(t, 20, s.Hits("o1"))
}

func TestCloseCutsSlowAnswers(t *testing.T) {
	t.Parallel()
	s := pickerfake.New()
	s.Start()
	s.SetBehaviour("o1", pickerfake.Slow(time.Hour))

	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(s.URL() + pickerfake.Path + "?eats_id=o1")
		if err == nil {
			resp.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return s.Hits("o1") == 1 }, 5*time.Second, 5*time.Millisecond)
	start := time.Now()
	s.Close()
	s.Close() // twice is fine
	require.Less(t, time.Since(start), 5*time.Second)
	<-done
}

func TestServeAndHandler(t *testing.T) {
	t.Parallel()

	t.Run("Serve", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		s := pickerfake.New()
		require.Empty(t, s.URL())
		s.Serve(l)
		t.Cleanup(s.Close)
		require.Equal(t, "http://"+l.Addr().String(), s.URL())
		s.Set("o1", pickerfake.Order{Status: "new"})
		status, _ := get(t, s.URL(), "o1")
		require.Equal(t, http.StatusOK, status)
	})

	t.Run("Mounted", func(t *testing.T) {
		t.Parallel()
		s := pickerfake.New()
		t.Cleanup(s.Close)
		mux := http.NewServeMux()
		mux.Handle("/picker-orders/", http.StripPrefix("/picker-orders", s.Handler()))
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		s.Set("o1", pickerfake.Order{Status: "new"})

		status, _ := get(t, srv.URL+"/picker-orders", "o1")
		require.Equal(t, http.StatusOK, status)
		status, _ = get(t, srv.URL+"/picker-orders", "")
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, 1, s.Hits("o1"))
		require.Equal(t, 2, s.TotalHits())
	})
}
