package trackingpresenter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// loader makes the cache complete: it reads every listed order of every
// eater in one scan and installs them, so that every poll, including those
// of eaters with no order, is answered from memory. It loads after the
// change feed (re)connects and then every period (a safety net: the feed
// keeps the set exact), retrying a load that failed or that changes made
// untrustworthy.
type loader struct {
	p      *presenter
	log    *slog.Logger
	period time.Duration
	kick   chan struct{}

	stop context.CancelFunc
	done chan struct{}
}

func newLoader(p *presenter, logger *slog.Logger, period time.Duration) *loader {
	return &loader{p: p, log: logger, period: period, kick: make(chan struct{}, 1)}
}

// request asks for a load soon; it never blocks.
func (l *loader) request() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Start runs the loader until Stop; it does not block.
func (l *loader) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.stop, l.done = cancel, make(chan struct{})
	go l.run(ctx)
	return nil
}

// Stop ends the loader and waits for it, at most until ctx ends.
func (l *loader) Stop(ctx context.Context) error {
	if l.stop == nil {
		return nil
	}
	l.stop()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop tracking cache loader: %w", ctx.Err())
	}
}

func (l *loader) run(ctx context.Context) {
	defer close(l.done)
	timer := time.NewTimer(l.period)
	defer timer.Stop()
	retry := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		case <-timer.C:
		}
		start := time.Now()
		eaters, err := l.p.loadAll(ctx)
		next := l.period
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errTooBig):
			l.log.Warn("tracking cache stays lazy: more eaters have listed orders than TRACKING_CACHE_ENTRIES allows", "eaters", eaters)
		case err != nil:
			l.log.Info("tracking cache load not installed; retrying", "err", err, "retry_in", retry)
			next, retry = retry, min(2*retry, l.period)
		default:
			retry = time.Second
			l.log.Info("tracking cache complete", "eaters", eaters, "took", time.Since(start).Round(time.Millisecond))
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

var (
	errTooBig   = errors.New("too many eaters")
	errOutdated = errors.New("the change feed was lost, or a change concerned everything, during the load")
)

// phoneBatch bounds the keys of one phone lookup during a load.
const phoneBatch = 1000

// loadAll reads every listed order and installs the complete set. It
// returns the number of eaters with listed orders.
func (p *presenter) loadAll(ctx context.Context) (int, error) {
	tok := p.cache.beginLoad()
	installed := false
	defer func() {
		if !installed {
			p.cache.endLoad()
		}
	}()
	now := p.now()
	rows, err := p.db.QueryContext(ctx, allListedQuery, now.Add(-finishedVisible))
	if err != nil {
		return 0, fmt.Errorf("select listed orders: %w", err)
	}
	var (
		all    []orderState
		owners []string
	)
	for rows.Next() {
		var eater string
		o, err := scanOrder(rows, &eater)
		if err != nil {
			rows.Close()
			return 0, err
		}
		all, owners = append(all, o), append(owners, eater)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read listed orders: %w", err)
	}
	phonesAt := p.now()
	for start := 0; start < len(all); {
		// Batches of about phoneBatch orders that may want a phone.
		end, want := start, 0
		for end < len(all) && want < phoneBatch {
			if all[end].wantsPhone() {
				want++
			}
			end++
		}
		if err := attachPhones(ctx, p.phones, p.db, all[start:end], now); err != nil {
			return 0, err
		}
		start = end
	}
	byEater := make(map[string][]orderState)
	for i := range all {
		byEater[owners[i]] = append(byEater[owners[i]], all[i])
	}
	loaded := make(map[string]*cacheEntry, len(byEater))
	for eater, states := range byEater {
		slices.SortFunc(states, func(a, b orderState) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.OrderNr, b.OrderNr))
		})
		until := p.expiry(states)
		if until.IsZero() {
			until = forever
		}
		loaded[eater] = &cacheEntry{states: states, expires: until}
	}
	n := len(loaded)
	if n > p.cache.maxEntries {
		return n, errTooBig
	}
	// install owns loaded from here on, and ends the load either way.
	installed = true
	if !p.cache.install(tok, loaded, phonesAt) {
		return n, errOutdated
	}
	return n, nil
}
