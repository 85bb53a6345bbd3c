package orderingest

import (
	"fmt"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// Config tunes the module.
type Config struct {
	// Workers is how many order events one replica applies at once. Each
	// holds a database connection for one short transaction.
	Workers int `env:"ORDER_INGEST_WORKERS" envDefault:"10"`
}

// Validate names the variable that is wrong.
func (c *Config) Validate() error {
	if c.Workers < 1 || c.Workers > 1000 {
		return fmt.Errorf("ORDER_INGEST_WORKERS: must be between 1 and 1000 (got %d)", c.Workers)
	}
	return nil
}

func parseConfig(environ config.Environment) (Config, error) {
	return config.Parse[Config](environ)
}
