package pickeringest

import (
	"fmt"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// Config tunes picker-ingest. Every field has a working default.
type Config struct {
	// MaxWorkers is how many picker events one replica applies at once.
	// Each holds a database connection for its transaction, so values far
	// above DATABASE_MAX_CONNS only queue on the pool; docs/benchmarks.md
	// (bench:ingest) shows how the default was chosen.
	MaxWorkers int `env:"PICKER_INGEST_MAX_WORKERS" envDefault:"50"`
}

// Validate names the variable that is wrong.
func (c *Config) Validate() error {
	if c.MaxWorkers < 1 || c.MaxWorkers > 10_000 {
		return fmt.Errorf("PICKER_INGEST_MAX_WORKERS: must be between 1 and 10000 (got %d)", c.MaxWorkers)
	}
	return nil
}

// ParseConfig reads Config from the environment.
func ParseConfig(environ config.Environment) (Config, error) {
	return config.Parse[Config](environ)
}
