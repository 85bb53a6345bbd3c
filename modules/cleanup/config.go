package cleanup

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// Config is the cleanup's configuration (DESIGN §8).
type Config struct {
	// Interval is how often the cleanup runs.
	Interval time.Duration `env:"CLEANUP_INTERVAL" envDefault:"10m"`
	// BatchSize is how many rows one DELETE statement removes at most.
	BatchSize int `env:"CLEANUP_BATCH_SIZE" envDefault:"5000"`
	// Retention is how long picker_orders and orders rows live after they
	// were created.
	Retention time.Duration `env:"RETENTION" envDefault:"72h"`
	// FullSweepInterval is how often a run starts each table from its
	// lowest key instead of where the previous run in this process
	// stopped, so a row that appears below that point later (a late phone
	// event with an expiry long past) is deleted within this interval
	// too. 0: every run is a full sweep.
	FullSweepInterval time.Duration `env:"CLEANUP_FULL_SWEEP_INTERVAL" envDefault:"1h"`
}

// Limits of the values; outside them the service does not start.
const (
	minInterval  = 100 * time.Millisecond
	maxBatchSize = 100_000
	// minRetention keeps a typo such as RETENTION=72s from emptying the
	// tables of live orders.
	minRetention = time.Hour
)

func parseConfig(environ config.Environment) (Config, error) {
	return config.Parse[Config](environ)
}

// Validate checks every value and names the variable that is wrong.
func (c *Config) Validate() error {
	var errs []error
	if c.Interval < minInterval {
		errs = append(errs, fmt.Errorf("CLEANUP_INTERVAL: must be at least %s (got %s)", minInterval, c.Interval))
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf("CLEANUP_BATCH_SIZE: must be between 1 and %d (got %d)", maxBatchSize, c.BatchSize))
	}
	if c.Retention < minRetention {
		errs = append(errs, fmt.Errorf("RETENTION: must be at least %s (got %s)", minRetention, c.Retention))
	}
	if c.FullSweepInterval < 0 {
		errs = append(errs, fmt.Errorf("CLEANUP_FULL_SWEEP_INTERVAL: must be 0 or more (got %s)", c.FullSweepInterval))
	}
	return errors.Join(errs...)
}

// LogValue prints the config.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Duration("interval", c.Interval),
		slog.Int("batch_size", c.BatchSize),
		slog.Duration("retention", c.Retention),
		slog.Duration("full_sweep_interval", c.FullSweepInterval),
	)
}
