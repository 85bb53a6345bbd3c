package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Platform is the configuration of everything under platform/: how to reach
// PostgreSQL and Redis, where to listen, how to log and shut down.
type Platform struct {
	// DatabaseURL is a PostgreSQL URL; the database is created if missing.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://root@127.0.0.1:5432/eats_orders_tracking?sslmode=disable"`
	// DatabaseMaxConns bounds the pool shared by HTTP handlers and River.
	DatabaseMaxConns int `env:"DATABASE_MAX_CONNS" envDefault:"20"`
	// RedisURL is the phone cache; set to an empty string to run without it.
	RedisURL string `env:"REDIS_URL"`
	// RedisKeyPrefix isolates several deployments (or tests) on one Redis.
	RedisKeyPrefix string `env:"REDIS_KEY_PREFIX"`
	// HTTPAddr is where the HTTP server listens (":0" picks a free port).
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8080"`
	// InternalAPIToken guards internal routes, riverui and pprof; empty turns
	// those routes off (404).
	InternalAPIToken Secret `env:"INTERNAL_API_TOKEN"`
	// ExperimentsFile is the YAML file of experiments, re-read on change.
	ExperimentsFile string `env:"EXPERIMENTS_FILE" envDefault:"experiments.yaml"`
	// JobRetention keeps cancelled and discarded jobs for inspection and retry.
	JobRetention time.Duration `env:"JOB_RETENTION" envDefault:"168h"`
	// ShutdownTimeout bounds how long in-flight requests and jobs may finish.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is text or json.
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"`
}

// DefaultRedisURL is used when REDIS_URL is not set at all.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// ParsePlatform reads Platform from environ. REDIS_URL is special: unset
// means the local default, set-but-empty means "no cache".
func ParsePlatform(environ Environment) (Platform, error) {
	cfg, err := Parse[Platform](environ)
	if err != nil {
		return cfg, err
	}
	if _, set := environ.Lookup("REDIS_URL"); !set {
		cfg.RedisURL = DefaultRedisURL
	}
	return cfg, nil
}

// Validate checks every value and names the variable that is wrong.
func (c *Platform) Validate() error {
	var errs []error
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || strings.Trim(u.Path, "/") == "" {
		errs = append(errs, fmt.Errorf("DATABASE_URL: must be postgres://user@host:port/dbname (got %q)", MaskURL(c.DatabaseURL)))
	}
	if c.DatabaseMaxConns < 2 {
		errs = append(errs, fmt.Errorf("DATABASE_MAX_CONNS: must be at least 2 (got %d)", c.DatabaseMaxConns))
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			errs = append(errs, fmt.Errorf("REDIS_URL: must be redis://host:port/db or empty to disable (got %q)", MaskURL(c.RedisURL)))
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR: must be host:port or :port (got %q)", c.HTTPAddr))
	}
	if c.ExperimentsFile == "" {
		errs = append(errs, errors.New("EXPERIMENTS_FILE: must not be empty"))
	}
	if c.JobRetention < time.Hour {
		errs = append(errs, fmt.Errorf("JOB_RETENTION: must be at least 1h (got %s)", c.JobRetention))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_TIMEOUT: must be positive (got %s)", c.ShutdownTimeout))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: must be debug, info, warn or error (got %q)", c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT: must be text or json (got %q)", c.LogFormat))
	}
	return errors.Join(errs...)
}

// LogValue prints the config with secrets masked.
func (c Platform) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("database_url", MaskURL(c.DatabaseURL)),
		slog.Int("database_max_conns", c.DatabaseMaxConns),
		slog.String("redis_url", MaskURL(c.RedisURL)),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("internal_api_token", c.InternalAPIToken.String()),
		slog.String("experiments_file", c.ExperimentsFile),
		slog.Duration("job_retention", c.JobRetention),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.String("log_level", c.LogLevel),
		slog.String("log_format", c.LogFormat),
	)
}
