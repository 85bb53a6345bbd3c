package pickeringest

import (
	"fmt"
	"time"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// Config tunes picker-ingest. Every field has a working default.
type Config struct {
	// Workers is how many picker events one replica works at once (and
	// the most one group-commit transaction takes); workers wait for a
	// commit lane rather than holding connections. docs/benchmarks.md
	// (bench:ingest) shows how the defaults were chosen.
	Workers int `env:"PICKER_INGEST_MAX_WORKERS" envDefault:"50"`
	// CommitLanes is how many transactions apply events at once; each
	// commits the events waiting for it together (queue.GroupCommit) and
	// holds one database connection while it runs.
	CommitLanes int `env:"PICKER_INGEST_COMMIT_LANES" envDefault:"4"`
	// PhoneCacheTTL is the longest a forwarding phone lives in Redis, and
	// so the end-to-end bound of DESIGN §6: within it of the job that makes
	// a phone the winner completing, every replica shows that phone, even
	// when a cache write failed or landed late. An in-process copy lives no
	// longer than the Redis entry it came from. At most 60s (the
	// contract's bound); tests set seconds.
	PhoneCacheTTL time.Duration `env:"PHONE_CACHE_TTL" envDefault:"60s"`
}

// Bounds of PhoneCacheTTL: below a second the cache saves little; above a
// minute the contract's bound breaks.
const (
	minPhoneCacheTTL = time.Second
	maxPhoneCacheTTL = 60 * time.Second
)

// Validate names the variable that is wrong.
func (c *Config) Validate() error {
	if c.Workers < 1 || c.Workers > 10_000 {
		return fmt.Errorf("PICKER_INGEST_MAX_WORKERS: must be between 1 and 10000 (got %d)", c.Workers)
	}
	if c.CommitLanes < 1 || c.CommitLanes > 1_000 {
		return fmt.Errorf("PICKER_INGEST_COMMIT_LANES: must be between 1 and 1000 (got %d)", c.CommitLanes)
	}
	if c.PhoneCacheTTL < minPhoneCacheTTL || c.PhoneCacheTTL > maxPhoneCacheTTL {
		return fmt.Errorf("PHONE_CACHE_TTL: must be between %s and %s (got %s)", minPhoneCacheTTL, maxPhoneCacheTTL, c.PhoneCacheTTL)
	}
	return nil
}

// parseConfig reads Config from the environment.
func parseConfig(environ config.Environment) (Config, error) {
	return config.Parse[Config](environ)
}
