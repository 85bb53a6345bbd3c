package statecache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// loader makes the cache complete: it reads every listed order of every
// eater in one scan and installs them, so that every poll, including those
// of eaters with no order, is answered from memory. It loads after the
// change feed (re)connects and then every period (a safety net: the feed
// keeps the set exact), retrying a load that failed or that changes made
// untrustworthy.
type loader struct {
	// load reads and installs the complete set (Cache.loadAll); it returns
	// the number of eaters with listed orders.
	load   func(ctx context.Context) (int, error)
	log    *slog.Logger
	period time.Duration
	kick   chan struct{}

	stop context.CancelFunc
	done chan struct{}
}

func newLoader(load func(ctx context.Context) (int, error), logger *slog.Logger, period time.Duration) *loader {
	return &loader{load: load, log: logger, period: period, kick: make(chan struct{}, 1)}
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
		eaters, err := l.load(ctx)
		next := l.period
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errTooBig):
			l.log.Warn("tracking cache stays lazy: more eaters have listed orders than TRACKING_CACHE_ENTRIES allows", "eaters_more_than", eaters)
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
	errTooBig   = ErrTooManyEaters
	errOutdated = errors.New("the change feed was lost, or a change concerned everything, during the load")
)
