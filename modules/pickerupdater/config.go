package pickerupdater

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// Config is the picker updater's configuration (DESIGN §8).
type Config struct {
	// PickerOrdersURL is the base URL of eats-picker-orders, e.g.
	// http://picker-orders.local. Empty turns the updater off: it logs so
	// once at start and the periodic never fires.
	PickerOrdersURL string `env:"PICKER_ORDERS_URL"`
	// Interval is how often the updater looks for stale picker orders.
	Interval time.Duration `env:"PICKER_UPDATER_INTERVAL" envDefault:"30s"`
	// RefreshWorkers bounds how many refresh jobs run at once per
	// replica, so a backlog cannot flood eats-picker-orders.
	RefreshWorkers int `env:"PICKER_REFRESH_CONCURRENCY" envDefault:"10"`
	// MaxEnqueue caps the refresh jobs one tick enqueues, over all listed
	// statuses, shared fairly among them; a larger backlog is worked
	// through over the next ticks. It bounds a tick's time (an insert
	// costs ≈ 0.5 ms) well under the interval.
	MaxEnqueue int `env:"PICKER_UPDATER_MAX_ENQUEUE" envDefault:"10000"`
}

// Limits of the values; outside them the service does not start.
const (
	minInterval       = 100 * time.Millisecond
	maxRefreshWorkers = 1000
	maxEnqueueLimit   = 1_000_000
)

// parseConfig reads Config from the environment in the graph.
func parseConfig(environ config.Environment) (Config, error) {
	return config.Parse[Config](environ)
}

// Enabled reports whether the updater calls eats-picker-orders at all.
func (c Config) Enabled() bool { return c.PickerOrdersURL != "" }

// Validate checks every value and names the variable that is wrong.
func (c *Config) Validate() error {
	var errs []error
	if c.PickerOrdersURL != "" {
		u, err := url.Parse(c.PickerOrdersURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("PICKER_ORDERS_URL: must be http(s)://host[:port][/path] or empty to turn the updater off (got %q)", config.MaskURL(c.PickerOrdersURL)))
		}
	}
	if c.Interval < minInterval {
		errs = append(errs, fmt.Errorf("PICKER_UPDATER_INTERVAL: must be at least %s (got %s)", minInterval, c.Interval))
	}
	if c.RefreshWorkers < 1 || c.RefreshWorkers > maxRefreshWorkers {
		errs = append(errs, fmt.Errorf("PICKER_REFRESH_CONCURRENCY: must be between 1 and %d (got %d)", maxRefreshWorkers, c.RefreshWorkers))
	}
	if c.MaxEnqueue < 1 || c.MaxEnqueue > maxEnqueueLimit {
		errs = append(errs, fmt.Errorf("PICKER_UPDATER_MAX_ENQUEUE: must be between 1 and %d (got %d)", maxEnqueueLimit, c.MaxEnqueue))
	}
	return errors.Join(errs...)
}

// LogValue prints the config with any credentials in the URL masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("picker_orders_url", config.MaskURL(c.PickerOrdersURL)),
		slog.Duration("interval", c.Interval),
		slog.Int("refresh_concurrency", c.RefreshWorkers),
		slog.Int("max_enqueue", c.MaxEnqueue),
	)
}

// tuning overrides the upstream client's timings and the breaker's snooze.
// Production never provides it (the defaults of upstreamConfig apply);
// tests in this package supply one to keep retries and breaker delays short.
type tuning struct {
	Upstream upstreamConfig
}
