package pickerupdater

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/config"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig(config.Environment{})
	require.NoError(t, err)
	require.Equal(t, Config{Interval: 30 * time.Second, RefreshWorkers: 10, MaxEnqueue: 10000}, cfg)
	require.False(t, cfg.Enabled(), "an empty PICKER_ORDERS_URL turns the updater off")

	cfg, err = parseConfig(config.Environment{
		"PICKER_ORDERS_URL":          "http://127.0.0.1:9999/base",
		"PICKER_UPDATER_INTERVAL":    "200ms",
		"PICKER_REFRESH_CONCURRENCY": "3",
		"PICKER_UPDATER_MAX_ENQUEUE": "50",
	})
	require.NoError(t, err)
	require.Equal(t, Config{PickerOrdersURL: "http://127.0.0.1:9999/base", Interval: 200 * time.Millisecond, RefreshWorkers: 3, MaxEnqueue: 50}, cfg)
	require.True(t, cfg.Enabled())
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for name, values := range map[string][]string{
		"PICKER_ORDERS_URL":          {"picker-orders:8080", "ftp://host", "http://", "://x"},
		"PICKER_UPDATER_INTERVAL":    {"often", "0s", "-30s", "10ms"},
		"PICKER_REFRESH_CONCURRENCY": {"ten", "0", "-1", "100000"},
		"PICKER_UPDATER_MAX_ENQUEUE": {"all", "0", "-1", "2000000"},
	} {
		for _, v := range values {
			_, err := parseConfig(config.Environment{name: v})
			require.Error(t, err, "%s=%q", name, v)
			require.ErrorContains(t, err, name, "%s=%q", name, v)
		}
	}
}

func TestConfigLogMasksCredentials(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig(config.Environment{"PICKER_ORDERS_URL": "https://svc:hunter2@picker-orders.local"})
	require.NoError(t, err)
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("config", "config", cfg)
	require.NotContains(t, sb.String(), "hunter2")
	require.Contains(t, sb.String(), "picker-orders.local")
}
