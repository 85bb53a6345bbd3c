package trackingpresenter

import (
	"errors"
	"fmt"
	"time"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// Config tunes the tracking endpoint: its in-process cache and the size
// of an answer.
type Config struct {
	// CacheEntries bounds how many eaters' states a replica keeps in
	// memory (a few hundred bytes per listed order). When every eater
	// with a listed order fits, the replica holds them all and answers
	// every poll from memory; otherwise it caches the eaters it is asked
	// about. 0 turns the cache off: every poll reads PostgreSQL.
	CacheEntries int `env:"TRACKING_CACHE_ENTRIES" envDefault:"500000"`
	// CacheMaxAge is how often the whole set is re-read, and the longest a
	// lazily cached eater lives. A safety net only: the change feed keeps
	// answers within 1 s of every commit.
	CacheMaxAge time.Duration `env:"TRACKING_CACHE_MAX_AGE" envDefault:"5m"`
	// MaxOrdersPerEater bounds the orders of one answer (DESIGN §4.1), so
	// an eater with very many orders costs a bounded answer: active
	// orders are kept before finished ones, newest first. At least 1.
	MaxOrdersPerEater int `env:"TRACKING_MAX_ORDERS_PER_EATER" envDefault:"50"`
	// StreamsMax bounds the open tracking streams of a replica (DESIGN
	// §4.4); over it a new one is answered 503 with Retry-After. At least 1.
	StreamsMax int `env:"TRACKING_STREAMS_MAX" envDefault:"10000"`
	// StreamsPerEater bounds one eater's open streams on a replica: a new
	// one ends the eater's oldest (a tab left open, a phone that
	// reconnected without closing). At least 1.
	StreamsPerEater int `env:"TRACKING_STREAMS_PER_EATER" envDefault:"5"`
	// StreamMaxAge ends a stream this long after it opened, with retry:
	// so connections move between replicas as they come and go. Between
	// 1s and 24h.
	StreamMaxAge time.Duration `env:"TRACKING_STREAM_MAX_AGE" envDefault:"10m"`
}

// Validate names the variable that is wrong.
func (c *Config) Validate() error {
	var errs []error
	if c.CacheEntries < 0 {
		errs = append(errs, fmt.Errorf("TRACKING_CACHE_ENTRIES: must be 0 (off) or more (got %d)", c.CacheEntries))
	}
	if c.CacheMaxAge < time.Second || c.CacheMaxAge > time.Hour {
		errs = append(errs, fmt.Errorf("TRACKING_CACHE_MAX_AGE: must be between 1s and 1h (got %s)", c.CacheMaxAge))
	}
	if c.MaxOrdersPerEater < 1 {
		errs = append(errs, fmt.Errorf("TRACKING_MAX_ORDERS_PER_EATER: must be 1 or more (got %d)", c.MaxOrdersPerEater))
	}
	if c.StreamsMax < 1 {
		errs = append(errs, fmt.Errorf("TRACKING_STREAMS_MAX: must be 1 or more (got %d)", c.StreamsMax))
	}
	if c.StreamsPerEater < 1 {
		errs = append(errs, fmt.Errorf("TRACKING_STREAMS_PER_EATER: must be 1 or more (got %d)", c.StreamsPerEater))
	}
	if c.StreamMaxAge < time.Second || c.StreamMaxAge > 24*time.Hour {
		errs = append(errs, fmt.Errorf("TRACKING_STREAM_MAX_AGE: must be between 1s and 24h (got %s)", c.StreamMaxAge))
	}
	return errors.Join(errs...)
}

func parseConfig(environ config.Environment) (Config, error) {
	return config.Parse[Config](environ)
}
