//go:build system

package systest

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// poller polls the tracking endpoint at a fixed rate for random eaters,
// spread over urls. It is an open loop: requests are scheduled by the
// clock, not by the previous answer, and latency counts from the scheduled
// time, so a stalled service shows as latency, not as a lower rate.
type poller struct {
	urls    []string
	eaters  []string
	rate    float64
	workers int
	// check, when set, inspects each 200 answer; its errors are kept.
	check func(url, eater string, body []byte) error

	client *http.Client

	mu        sync.Mutex
	results   []pollResult
	dropped   int // scheduled requests no worker was free to send
	checkErrs []string
}

type pollResult struct {
	at   time.Time // scheduled
	lat  time.Duration
	code int // 0: transport error
}

func newPoller(urls, eaters []string, rate float64, workers int) *poller {
	return &poller{
		urls: urls, eaters: eaters, rate: rate, workers: workers,
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			MaxIdleConns: workers * 2, MaxIdleConnsPerHost: workers * 2, DisableCompression: true,
		}},
	}
}

// run polls until ctx ends.
func (p *poller) run(ctx context.Context) {
	slots := make(chan time.Time, p.workers*4)
	var wg sync.WaitGroup
	for w := range p.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano()))) //nolint:gosec // w is a range index, never negative
			for at := range slots {
				p.one(at, p.urls[rnd.IntN(len(p.urls))], p.eaters[rnd.IntN(len(p.eaters))])
			}
		}()
	}
	start := time.Now()
	sent := 0
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			due := int(p.rate*now.Sub(start).Seconds()) - sent
			for range due {
				at := start.Add(time.Duration(float64(sent) / p.rate * float64(time.Second)))
				sent++
				select {
				case slots <- at:
				default:
					p.mu.Lock()
					p.dropped++
					p.mu.Unlock()
				}
			}
		}
	}
	close(slots)
	wg.Wait()
	p.client.CloseIdleConnections()
}

func (p *poller) one(at time.Time, url, eater string) {
	req, _ := http.NewRequest(http.MethodGet, url+trackingPath, nil)
	req.Header.Set("X-Eats-User", "user_id="+eater)
	resp, err := p.client.Do(req)
	code := 0
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err == nil {
			code = resp.StatusCode
		}
	}
	lat := time.Since(at)
	var checkErr error
	if code == http.StatusOK && p.check != nil {
		checkErr = p.check(url, eater, body)
	}
	p.mu.Lock()
	p.results = append(p.results, pollResult{at: at, lat: lat, code: code})
	if checkErr != nil && len(p.checkErrs) < 20 {
		p.checkErrs = append(p.checkErrs, checkErr.Error())
	}
	p.mu.Unlock()
}

// pollStats summarizes the requests scheduled in a window.
type pollStats struct {
	N, Bad        int // Bad: not 200, transport errors included
	P50, P99, Max time.Duration
	Rate          float64 // answered per second
}

func (p *poller) stats(from, to time.Time) pollStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lat []time.Duration
	var s pollStats
	for _, r := range p.results {
		if r.at.Before(from) || !r.at.Before(to) {
			continue
		}
		s.N++
		if r.code != http.StatusOK {
			s.Bad++
		}
		lat = append(lat, r.lat)
		s.Max = max(s.Max, r.lat)
	}
	s.P50, s.P99 = percentile(lat, 0.5), percentile(lat, 0.99)
	if d := to.Sub(from).Seconds(); d > 0 {
		s.Rate = float64(s.N) / d
	}
	return s
}

func (p *poller) all() pollStats {
	return p.stats(time.Time{}, time.Now().Add(time.Hour))
}

func (p *poller) problems() (dropped int, checkErrs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped, append([]string(nil), p.checkErrs...)
}
