package pickerupdater_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/pickerupdater"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/experiments"
)

func timeoutsFile(t *testing.T, value string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "experiments.yaml")
	content := "experiments:\n  eats_orders_tracking_picker_statuses_timeout:\n    default: " + value + "\n"
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

func TestStatusesTimeoutValidation(t *testing.T) {
	t.Parallel()

	const prefix = "experiment eats_orders_tracking_picker_statuses_timeout: default: "
	tests := []struct {
		name  string
		value string
		want  string // "" for valid
	}{
		{"valid", "[{status: new, timeout: 600}, {status: picked_up, timeout: 1}]", ""},
		{"empty list", "[]", ""},
		{"zero timeout", "[{status: new, timeout: 600}, {status: assigned, timeout: 0}]", "[1].timeout: must be an integer ≥ 1 (got 0)"},
		{"negative timeout", "[{status: new, timeout: -1}]", "[0].timeout: must be an integer ≥ 1 (got -1)"},
		{"fractional timeout", "[{status: new, timeout: 1.5}]", "[0].timeout: must be an integer (got 1.5)"},
		{"text timeout", "[{status: new, timeout: x}]", `[0].timeout: must be an integer (got "x")`},
		{"missing timeout", "[{status: new}]", "[0].timeout: required field is missing"},
		{"missing status", "[{timeout: 10}]", "[0].status: required field is missing"},
		{"unknown status", "[{status: new, timeout: 1}, {status: picking, timeout: 1}, {status: foo, timeout: 1}]", `[2].status: unknown picker status (got "foo")`},
		{"status in capitals", "[{status: NEW, timeout: 1}]", `[0].status: unknown picker status (got "NEW")`},
		{
			"duplicate status",
			"[{status: new, timeout: 1}, {status: picking, timeout: 1}, {status: assigned, timeout: 1}, {status: picking, timeout: 5}]",
			`[3].status: duplicate "picking"`,
		},
		{"unknown field", "[{status: new, timeout: 1, seconds: 1}]", `[0]: unknown field "seconds"`},
		{"not a list", "{status: new, timeout: 1}", "must be a list (got a mapping)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := experiments.ValidateFile(timeoutsFile(t, tt.value), []experiments.Definition{pickerupdater.StatusesTimeout.Definition()})
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, prefix+tt.want)
		})
	}
}

func TestStatusesTimeoutValue(t *testing.T) {
	t.Parallel()

	store, err := experiments.NewStore(experiments.StoreParams{
		Path:        timeoutsFile(t, "[{status: picking, timeout: 300}, {status: assigned, timeout: 600}]"),
		Definitions: []experiments.Definition{pickerupdater.StatusesTimeout.Definition()},
	})
	require.NoError(t, err)
	require.NoError(t, store.Load())

	got, ok := pickerupdater.StatusesTimeout.Get(store, experiments.Kwargs{})
	require.True(t, ok)
	require.Equal(t, []pickerupdater.StatusTimeout{
		{Status: tracking.PickerPicking, Timeout: 300},
		{Status: tracking.PickerAssigned, Timeout: 600},
	}, got)
}
