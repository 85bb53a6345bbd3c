package trackingpresenter_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/pickerupdater"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/modules/trackingpresenter"
	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// shipped is the default EXPERIMENTS_FILE at the repository root.
const shipped = "../../experiments.yaml"

func definitions() []experiments.Definition {
	return []experiments.Definition{
		pickerupdater.StatusesTimeout.Definition(),
		trackingpresenter.CallPicker.Definition(),
		trackingpresenter.ContactUs.Definition(),
	}
}

// The shipped file is valid and says what DESIGN §7 promises: both flags
// on for everyone, timeouts for new, assigned, picking and picked_up.
func TestShippedExperimentsFile(t *testing.T) {
	t.Parallel()

	require.NoError(t, experiments.ValidateFile(shipped, definitions()))

	store, err := experiments.NewStore(experiments.StoreParams{Path: shipped, Definitions: definitions()})
	require.NoError(t, err)
	require.NoError(t, store.Load())

	order := experiments.Kwargs{}.
		With(experiments.EaterID, "1").
		With(experiments.PlaceID, "40").
		With(experiments.FlowType, "retail")
	for _, key := range []experiments.Key[trackingpresenter.Flag]{trackingpresenter.CallPicker, trackingpresenter.ContactUs} {
		flag, ok := key.Get(store, order)
		require.True(t, ok, key.Name())
		require.True(t, flag.Enabled, key.Name())
	}

	timeouts, ok := pickerupdater.StatusesTimeout.Get(store, experiments.Kwargs{})
	require.True(t, ok)
	require.ElementsMatch(t, []pickerupdater.StatusTimeout{
		{Status: tracking.PickerNew, Timeout: 600},
		{Status: tracking.PickerAssigned, Timeout: 600},
		{Status: tracking.PickerPicking, Timeout: 300},
		{Status: tracking.PickerPickedUp, Timeout: 900},
	}, timeouts)
}

func TestFlagValidation(t *testing.T) {
	t.Parallel()

	const prefix = "experiment eats_orders_tracking_retail_call_picker: "
	tests := []struct {
		name string
		body string
		want string // "" for valid
	}{
		{"on", "default: {enabled: true}", ""},
		{"off", "default: {enabled: false}", ""},
		{"quoted yes", `default: {enabled: "yes"}`, `default: enabled: must be true or false (got "yes")`},
		{"bare yes", "default: {enabled: yes}", `default: enabled: must be true or false (got "yes")`},
		{"quoted true", `default: {enabled: "true"}`, `default: enabled: must be true or false (got "true")`},
		{"number", "default: {enabled: 1}", "default: enabled: must be true or false (got 1)"},
		{"missing enabled", "default: {}", "default: enabled: required field is missing"},
		{"unknown field", "default: {enabled: true, enable: false}", `default: unknown field "enable"`},
		{"bare bool", "default: true", "default: must be a mapping (got true)"},
		{
			"in a clause",
			"clauses: [{name: pilot, if: {place_id: {eq: 40}}, value: {enabled: on}}]",
			`clause "pilot": value: enabled: must be true or false (got "on")`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "experiments.yaml")
			content := "experiments:\n  eats_orders_tracking_retail_call_picker: {" + tt.body + "}\n"
			require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
			err := experiments.ValidateFile(path, definitions())
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, prefix+tt.want)
		})
	}
}
