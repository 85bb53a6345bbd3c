package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// trackedOrder is what the demo test reads of the tracking endpoint.
type trackedOrder struct {
	Order struct {
		OrderNr  string `json:"orderNr"`
		FlowType string `json:"flowType"`
	} `json:"order"`
	Status  string `json:"status"`
	Title   string `json:"title"`
	Actions []struct {
		Type    string `json:"type"`
		Payload struct {
			ContactType string `json:"contact_type"`
			Phone       string `json:"phone"`
		} `json:"payload"`
	} `json:"actions"`
}

func demoTracking(t *testing.T, a *apptest.App) map[string]trackedOrder {
	t.Helper()
	out, err := fetchDemoTracking(a.URL)
	require.NoError(t, err)
	return out
}

// fetchDemoTracking does not touch t, so the walk's goroutine may call it.
func fetchDemoTracking(baseURL string) (map[string]trackedOrder, error) {
	req, err := http.NewRequest(http.MethodGet, baseURL+"/eats/v1/eats-orders-tracking/v1/tracking", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Eats-User", "user_id="+demoEater)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("tracking: %d %s", resp.StatusCode, body)
	}
	var res struct {
		Payload struct {
			TrackedOrders []trackedOrder `json:"trackedOrders"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, err
	}
	out := map[string]trackedOrder{}
	for _, o := range res.Payload.TrackedOrders {
		out[o.Order.OrderNr] = o
	}
	return out, nil
}

// startDemo runs the service with the demo on a fresh database.
func startDemo(t *testing.T, speed float64, afterStep func(context.Context, demoStep)) (*Run, *apptest.App, *pgtest.SafeBuffer) {
	t.Helper()
	env := pgtest.Env(t, map[string]string{"PICKER_UPDATER_INTERVAL": "200ms"})
	delete(env, "EXPERIMENTS_FILE") // the demo writes its own
	out := &pgtest.SafeBuffer{}
	d, err := newRun(env, out, speed)
	require.NoError(t, err)
	t.Cleanup(d.Close)
	d.AfterStep = afterStep
	require.Equal(t, env["DATABASE_URL"], d.Env["DATABASE_URL"], "an explicit DATABASE_URL is kept")
	require.NotEqual(t, env["EXPERIMENTS_FILE"], d.Env["EXPERIMENTS_FILE"])
	a := apptest.StartEnv(t, d.Env, d.Option())
	return d, a, out
}

func TestDemoWalksEveryState(t *testing.T) {
	t.Parallel()
	// The hook runs on the walk's goroutine: it records, the test asserts.
	var (
		mu             sync.Mutex
		problems       []string
		seen           = map[string]map[string]bool{} // flow type → tracked statuses seen
		sawPickerPhone bool
		baseURL        = make(chan string, 1)
	)
	d, a, out := startDemo(t, 100, func(ctx context.Context, s demoStep) {
		url := <-baseURL
		baseURL <- url
		mu.Lock()
		failed := len(problems) > 0
		mu.Unlock()
		if failed {
			return // one problem is enough; let the walk run out quickly
		}
		var last trackedOrder
		var lastErr error
		deadline := time.Now().Add(30 * time.Second)
		for {
			var got map[string]trackedOrder
			got, lastErr = fetchDemoTracking(url)
			last = got[s.Order]
			if lastErr == nil && last.Status == s.Want {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("order %s after %q: want %s, got %+v (%v)", s.Order, s.Say, s.Want, last, lastErr))
				mu.Unlock()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[last.Order.FlowType] == nil {
			seen[last.Order.FlowType] = map[string]bool{}
		}
		seen[last.Order.FlowType][last.Status] = true
		if last.Status == "picker_call" {
			if len(last.Actions) != 1 || last.Actions[0].Payload.ContactType != "picker" || last.Actions[0].Payload.Phone != "+79991234567,123" {
				problems = append(problems, fmt.Sprintf("order %s in picker_call: actions %+v", s.Order, last.Actions))
			}
			sawPickerPhone = true
		}
	})
	baseURL <- a.URL
	select {
	case <-d.Done():
	case <-time.After(4 * time.Minute):
		t.Fatalf("the walk did not finish; output:\n%s", out)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, problems, "output:\n%s", out)
	require.Contains(t, out.String(), "the walk is over", out.String())
	require.True(t, sawPickerPhone)
	for _, st := range []string{"created", "picker_contact_us", "picker_call", "picker_paying", "place_confirmed", "taken", "arrived_to_customer", "delivered"} {
		require.True(t, seen["retail"][st], "retail orders never showed %s; output:\n%s", st, out)
	}
	for _, st := range []string{"created", "place_confirmed", "taken", "arrived_to_customer", "delivered"} {
		require.True(t, seen["native"][st], "the native order never showed %s", st)
	}
	// Every order ends delivered, all four still listed (finished < 15 min ago).
	final := demoTracking(t, a)
	require.Len(t, final, 4)
	for nr, o := range final {
		require.Equal(t, "delivered", o.Status, nr)
	}
	// The lost event came back through the updater from the fake upstream.
	require.Positive(t, d.fake.TotalHits(), "the picker updater called the fake eats-picker-orders")
}

func TestDemoStopsCleanlyMidWalk(t *testing.T) {
	t.Parallel()
	d, a, out := startDemo(t, 1, nil)
	pgtest.Eventually(t, 30*time.Second, func() bool { return len(demoTracking(t, a)) > 0 }, "the first order appears")
	require.Contains(t, out.String(), "/app/?eater=demo")
	start := time.Now()
	a.Stop(t)
	require.Less(t, time.Since(start), 15*time.Second)
	select {
	case <-d.Done():
	default:
		t.Fatal("the walk still runs after stop")
	}
	require.NotContains(t, out.String(), "the walk is over")
}

func TestDemoForgetsEarlierRuns(t *testing.T) {
	t.Parallel()
	_, a, _ := startDemo(t, 1, nil)
	pgtest.Eventually(t, 30*time.Second, func() bool { return len(demoTracking(t, a)) > 0 }, "the first order appears")
	first := demoTracking(t, a)
	a.Stop(t)

	// A second demo on the same database starts from an empty list.
	d2, err := newRun(a.Env.With(nil), &bytes.Buffer{}, 1)
	require.NoError(t, err)
	t.Cleanup(d2.Close)
	b := apptest.StartEnv(t, d2.Env, d2.Option())
	now := demoTracking(t, b)
	for nr := range first {
		_, still := now[nr]
		require.False(t, still, "order %s of the earlier run is still listed", nr)
	}
}

// longestStates is, per tracked status, the longest any order shows it at
// speed 1 (until that order's next step; the last steps count a minute).
func longestStates(t *testing.T, steps []demoStep) map[string]time.Duration {
	t.Helper()
	longest := map[string]time.Duration{}
	for i, s := range steps {
		if i > 0 {
			require.GreaterOrEqual(t, s.At, steps[i-1].At, "steps in time order")
		}
		until := steps[len(steps)-1].At + time.Minute
		for _, next := range steps[i+1:] {
			if next.Order == s.Order {
				until = next.At
				break
			}
		}
		longest[s.Want] = max(longest[s.Want], until-s.At)
	}
	return longest
}

// At speed 1 the widget polls every 15 s: each state must last at least
// that long for some order, or a newcomer may never see it.
func TestDemoStatesLastAPoll(t *testing.T) {
	t.Parallel()
	steps := demoSteps(newDemoOrders(time.Now()))
	longest := longestStates(t, steps)
	for _, st := range []string{"created", "picker_contact_us", "picker_call", "picker_paying", "place_confirmed", "taken", "arrived_to_customer", "delivered"} {
		require.GreaterOrEqual(t, longest[st], demoPoll, "the longest %s lasts %s", st, longest[st])
	}
	require.InDelta(t, 2*time.Minute, steps[len(steps)-1].At, float64(30*time.Second), "about two minutes")
}

// With DEMO_SPEED the states pass faster than the service's 15 s
// checkAfter, so the page the demo tells you to open polls faster
// (?poll=): at least once while each state lasts, down to 1 s.
func TestDemoURLPollsEachStateAtSpeed(t *testing.T) {
	t.Parallel()
	shortest := time.Duration(1<<63 - 1)
	for _, d := range longestStates(t, demoSteps(newDemoOrders(time.Now()))) {
		shortest = min(shortest, d)
	}
	for _, tc := range []struct {
		speed float64
		url   string
		note  bool
	}{
		{speed: 0.5, url: "http://localhost:8080/app/?eater=demo"},
		{speed: 1, url: "http://localhost:8080/app/?eater=demo"},
		{speed: 2, url: "http://localhost:8080/app/?eater=demo&poll=7"},
		{speed: 4, url: "http://localhost:8080/app/?eater=demo&poll=3"},
		{speed: 15, url: "http://localhost:8080/app/?eater=demo&poll=1"},
		{speed: 100, url: "http://localhost:8080/app/?eater=demo&poll=1", note: true},
	} {
		got := demoURL("8080", tc.speed)
		require.Equal(t, tc.url, got, "speed %v", tc.speed)
		require.Equal(t, tc.note, demoSpeedNote(tc.speed) != "", "speed %v: the note", tc.speed)
		if tc.note {
			continue // states shorter than a second: the page cannot keep up
		}
		poll := demoPoll
		if _, p, ok := strings.Cut(got, "&poll="); ok {
			n, err := strconv.Atoi(p)
			require.NoError(t, err)
			poll = time.Duration(n) * time.Second
		}
		scaled := time.Duration(float64(shortest) / tc.speed)
		require.LessOrEqual(t, poll, scaled, "speed %v: a state may last only %s", tc.speed, scaled)
	}
}
