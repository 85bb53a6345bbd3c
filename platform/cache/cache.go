// Package cache connects to Redis, which the service uses as an optional
// read-through cache: an empty REDIS_URL turns it off and every reader goes
// to PostgreSQL. A nil *Redis means "off"; readers must treat any Redis
// error as a miss, never as a failure of their request.
package cache

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// Redis is the cache client plus the key prefix of this deployment.
type Redis struct {
	Client *redis.Client
	Prefix string
}

// Enabled reports whether a cache is configured.
func (r *Redis) Enabled() bool { return r != nil && r.Client != nil }

// Key joins parts with ':' under the deployment's prefix, each part
// escaped ('%' as %25, ':' as %3A) so that a ':' inside a part cannot
// shift a boundary: different parts always give different keys
// (Key("N:1", "2") is "N%3A1:2", Key("N", "1:2") is "N:1%3A2").
func (r *Redis) Key(parts ...string) string {
	var b strings.Builder
	b.WriteString(r.Prefix)
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(':')
		}
		keyEscaper.WriteString(&b, p) //nolint:errcheck // a Builder never fails
	}
	return b.String()
}

// keyEscaper escapes a key part. '%' is escaped too, so the escape can be
// undone and two different lists of parts never give one key.
var keyEscaper = strings.NewReplacer("%", "%25", ":", "%3A")

// New builds the client, or returns nil when REDIS_URL is empty. Timeouts
// are short: a slow cache must cost a request milliseconds, not seconds.
func New(cfg config.Platform, logger *slog.Logger) (*Redis, error) {
	if cfg.RedisURL == "" {
		logger.Warn("redis disabled: REDIS_URL is empty; phone lookups read PostgreSQL")
		return nil, nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("cache: REDIS_URL: %w", err)
	}
	opts.DialTimeout = 200 * time.Millisecond
	opts.ReadTimeout = 100 * time.Millisecond
	opts.WriteTimeout = 100 * time.Millisecond
	opts.PoolTimeout = 200 * time.Millisecond
	opts.MaxRetries = 1
	// One dial per attempt: go-redis' default (5 dials, 100 ms apart) makes
	// every request pay half a second while Redis is down.
	opts.DialerRetries = 1
	// Don't fail start-up or requests on a client-identity handshake that
	// older servers reject.
	opts.DisableIdentity = true
	return &Redis{Client: redis.NewClient(opts), Prefix: cfg.RedisKeyPrefix}, nil
}

// Module provides *Redis (possibly nil) and checks it at start without
// failing: the service runs without its cache.
var Module = fx.Module("cache",
	fx.Provide(func(lc fx.Lifecycle, cfg config.Platform, logger *slog.Logger) (*Redis, error) {
		r, err := New(cfg, logger)
		if err != nil || r == nil {
			return r, err
		}
		lc.Append(fx.Hook{
			OnStart: func(ctx context.Context) error {
				if err := r.Client.Ping(ctx).Err(); err != nil {
					logger.Warn("redis not answering at start; serving from PostgreSQL until it does", "err", err)
				}
				return nil
			},
			OnStop: func(context.Context) error { return r.Client.Close() },
		})
		return r, nil
	}),
)
