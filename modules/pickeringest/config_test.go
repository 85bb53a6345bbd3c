package pickeringest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/config"
)

func TestConfigIsValidated(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig(config.Environment{})
	require.NoError(t, err)
	require.Equal(t, 50, cfg.Workers)
	_, err = parseConfig(config.Environment{"PICKER_INGEST_MAX_WORKERS": "0"})
	require.ErrorContains(t, err, "PICKER_INGEST_MAX_WORKERS")
	_, err = parseConfig(config.Environment{"PICKER_INGEST_MAX_WORKERS": "many"})
	require.ErrorContains(t, err, "PICKER_INGEST_MAX_WORKERS")
}

func TestPhoneCacheTTLIsBounded(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig(config.Environment{})
	require.NoError(t, err)
	require.Equal(t, 60*time.Second, cfg.PhoneCacheTTL, "the contract's bound by default")
	cfg, err = parseConfig(config.Environment{"PHONE_CACHE_TTL": "3s"})
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, cfg.PhoneCacheTTL)
	for _, bad := range []string{"0s", "500ms", "61s", "5m", "-1s", "soon"} {
		_, err = parseConfig(config.Environment{"PHONE_CACHE_TTL": bad})
		require.ErrorContains(t, err, "PHONE_CACHE_TTL", bad)
	}
}
