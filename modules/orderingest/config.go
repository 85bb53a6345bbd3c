package orderingest

import (
	"fmt"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// Config tunes the module.
type Config struct {
	// Workers is how many order events one replica works at once (and the
	// most one group-commit transaction takes).
	Workers int `env:"ORDER_INGEST_WORKERS" envDefault:"10"`
	// CommitLanes is how many transactions apply order events at once; each
	// holds one database connection while it runs.
	CommitLanes int `env:"ORDER_INGEST_COMMIT_LANES" envDefault:"2"`
}

// Validate names the variable that is wrong.
func (c *Config) Validate() error {
	if c.Workers < 1 || c.Workers > 1000 {
		return fmt.Errorf("ORDER_INGEST_WORKERS: must be between 1 and 1000 (got %d)", c.Workers)
	}
	if c.CommitLanes < 1 || c.CommitLanes > 1000 {
		return fmt.Errorf("ORDER_INGEST_COMMIT_LANES: must be between 1 and 1000 (got %d)", c.CommitLanes)
	}
	return nil
}

func parseConfig(environ config.Environment) (Config, error) {
	return config.Parse[Config](environ)
}
