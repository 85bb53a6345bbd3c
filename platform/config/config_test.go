package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParsePlatformDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := ParsePlatform(Environment{})
	require.NoError(t, err)
	require.Equal(t, "postgres://root@127.0.0.1:5432/eats_orders_tracking?sslmode=disable", cfg.DatabaseURL)
	require.Equal(t, DefaultRedisURL, cfg.RedisURL)
	require.Equal(t, ":8080", cfg.HTTPAddr)
	require.Equal(t, 168*time.Hour, cfg.JobRetention)
	require.Equal(t, 30*time.Second, cfg.ShutdownTimeout)
	require.Equal(t, "experiments.yaml", cfg.ExperimentsFile)
}

func TestEmptyRedisURLDisablesTheCache(t *testing.T) {
	t.Parallel()
	cfg, err := ParsePlatform(Environment{"REDIS_URL": ""})
	require.NoError(t, err)
	require.Empty(t, cfg.RedisURL)
}

func TestEachBadValueNamesItsVariable(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{
		"DATABASE_URL":       "mysql://x/y",
		"DATABASE_MAX_CONNS": "lots",
		"REDIS_URL":          "http://127.0.0.1:6379",
		"HTTP_ADDR":          "8080",
		"JOB_RETENTION":      "a week",
		"SHUTDOWN_TIMEOUT":   "-1s",
		"LOG_LEVEL":          "loud",
		"LOG_FORMAT":         "xml",
	} {
		_, err := ParsePlatform(Environment{name: value})
		require.Error(t, err, name)
		require.Contains(t, err.Error(), name, "error for %s=%q must name it", name, value)
	}
}

func TestSecretsAreMaskedWhenLogged(t *testing.T) {
	t.Parallel()
	cfg, err := ParsePlatform(Environment{
		"INTERNAL_API_TOKEN": "s3cr3t-token",
		"DATABASE_URL":       "postgres://app:hunter2@db:5432/eot",
	})
	require.NoError(t, err)
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("config", "config", cfg)
	require.NotContains(t, sb.String(), "s3cr3t-token")
	require.NotContains(t, sb.String(), "hunter2")
	require.Contains(t, sb.String(), "internal_api_token=(set)")
}

func TestMaskURLHidesEveryPassword(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"postgres://app:hunter2@db:5432/eot":                                  "postgres://app:xxxxx@db:5432/eot",
		"postgres://app@db/eot?sslmode=disable&password=hunter2":              "postgres://app@db/eot?password=xxxxx&sslmode=disable",
		"postgres://app@db/eot?sslpassword=hunter2":                           "postgres://app@db/eot?sslpassword=xxxxx",
		"postgres://root@127.0.0.1:5432/eats_orders_tracking?sslmode=disable": "postgres://root@127.0.0.1:5432/eats_orders_tracking?sslmode=disable",
		"redis://:hunter2@127.0.0.1:6379/0":                                   "redis://:xxxxx@127.0.0.1:6379/0",
		"host=db user=app password=hunter2 dbname=eot":                        "(hidden: not a URL)",
		"postgres:hunter2": "(hidden: not a URL)",
	} {
		require.Equal(t, want, MaskURL(raw), raw)
	}
}

func TestBadDatabaseURLErrorDoesNotEchoThePassword(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"host=db user=app password=hunter2 dbname=eot",
		"mysql://app:hunter2@db/eot",
		"postgres://app@db/?password=hunter2",
	} {
		_, err := ParsePlatform(Environment{"DATABASE_URL": dsn})
		require.ErrorContains(t, err, "DATABASE_URL", dsn)
		require.NotContains(t, err.Error(), "hunter2", dsn)
	}
}

func TestModuleConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	type moduleConfig struct {
		Interval time.Duration `env:"SOME_INTERVAL" envDefault:"30s"`
	}
	_, err := Parse[moduleConfig](Environment{"SOME_INTERVAL": "soon"})
	require.ErrorContains(t, err, "SOME_INTERVAL: invalid value")
}
