package pickeringest

import (
	"testing"

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
