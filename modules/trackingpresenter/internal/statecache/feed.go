package statecache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// changeChannel is the NOTIFY channel the triggers of migration 00003
// (00003_orders_and_change_feed.sql) send every change of orders,
// picker_orders and picker_phones to.
const changeChannel = "eot_tracking_changes"

// pingPrefix marks the feed's heartbeats on the channel: "p:<instance>:<seq>".
const pingPrefix = "p:"

// changeFeed LISTENs on changeChannel on its own connection and applies
// each notification to the cache. Every ping interval it also sends a
// heartbeat on the channel from that connection and notes when it sent
// it. PostgreSQL delivers notifications in commit order, so when a
// heartbeat comes back, every change committed before it was sent has been
// applied: the cache's horizon. When the connection fails the cache is
// reset (changes may have been missed) and the feed reconnects with
// backoff; meanwhile requests read the database.
type changeFeed struct {
	dsn      string
	cache    feedSink
	log      *slog.Logger
	every    time.Duration
	instance string
	// listening is called once each session listens (the cache was just
	// reset): the moment to load the complete set.
	listening func()

	stop context.CancelFunc
	done chan struct{}
}

// feedSink is what the feed does to the cache (stateCache).
type feedSink interface {
	invalidate(key string)
	advance(t time.Time)
	reset()
}

func newChangeFeed(dsn string, c feedSink, logger *slog.Logger, every time.Duration) *changeFeed {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &changeFeed{dsn: dsn, cache: c, log: logger, every: every, instance: hex.EncodeToString(b)}
}

// Start runs the feed until Stop; it does not block.
func (f *changeFeed) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.stop, f.done = cancel, make(chan struct{})
	go f.run(ctx)
	return nil
}

// Stop ends the feed and waits for it, at most until ctx ends.
func (f *changeFeed) Stop(ctx context.Context) error {
	if f.stop == nil {
		return nil
	}
	f.stop()
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop tracking change feed: %w", ctx.Err())
	}
}

func (f *changeFeed) run(ctx context.Context) {
	defer close(f.done)
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		started := time.Now()
		err := f.session(ctx)
		f.cache.reset()
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			backoff = minBackoff
		}
		f.log.Warn("tracking change feed lost; serving from PostgreSQL until it is back", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// session listens until the connection fails or ctx ends.
func (f *changeFeed) session(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.Connect(cctx, f.dsn)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+changeChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// What was cached before LISTEN took effect may have missed changes.
	f.cache.reset()
	f.log.Debug("tracking change feed listening")
	if f.listening != nil {
		f.listening()
	}

	var seq uint64
	sent := make(map[uint64]time.Time)
	next := time.Now()
	for {
		if now := time.Now(); !now.Before(next) {
			seq++
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := conn.Exec(pctx, "SELECT pg_notify($1, $2)", changeChannel, pingPrefix+f.instance+":"+strconv.FormatUint(seq, 10))
			cancel()
			if err != nil {
				return fmt.Errorf("heartbeat: %w", err)
			}
			sent[seq] = now
			delete(sent, seq-100) // a heartbeat that never came back
			next = now.Add(f.every)
		}
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
				continue // time for the next heartbeat
			}
			return fmt.Errorf("wait for notification: %w", err)
		}
		f.handle(n.Payload, sent)
	}
}

func (f *changeFeed) handle(payload string, sent map[uint64]time.Time) {
	rest, isPing := strings.CutPrefix(payload, pingPrefix)
	if !isPing {
		f.cache.invalidate(payload)
		return
	}
	instance, seqText, _ := strings.Cut(rest, ":")
	if instance != f.instance {
		return // another replica's heartbeat
	}
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil {
		return
	}
	if at, ok := sent[seq]; ok {
		f.cache.advance(at)
		for s := range sent {
			if s <= seq {
				delete(sent, s)
			}
		}
	}
}
