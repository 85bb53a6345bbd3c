package pickerupdater_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/pickerupdater"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/modules/trackingpresenter"
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
		{"a week", "[{status: new, timeout: 604800}]", ""},
		{"over a week", "[{status: new, timeout: 604801}]", "[0].timeout: must be at most 604800 seconds, 7 days (got 604801)"},
		{
			// time.Duration(timeout) * time.Second overflows to a negative
			// duration: every order would be stale on every tick.
			"timeout that overflows a duration",
			"[{status: new, timeout: 9223372036854775807}]",
			"[0].timeout: must be at most 604800 seconds, 7 days (got 9223372036854775807)",
		},
		{"timeout beyond int64", "[{status: new, timeout: 9223372036854775808}]", "[0].timeout: must be an integer within -9223372036854775808..9223372036854775807 (got 9223372036854775808)"},
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

// shippedFile copies the repository's experiments.yaml, the service's
// default EXPERIMENTS_FILE, into a fresh directory.
func shippedFile(t *testing.T) (path, content string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "experiments.yaml"))
	require.NoError(t, err)
	path = filepath.Join(t.TempDir(), "experiments.yaml")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path, string(data)
}

// counter reads a counter without labels from reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	require.FailNow(t, "metric not registered", name)
	return 0
}

// Each validation error of issue 3, given to a Store that serves the
// shipped file with the service's definitions: the file is refused with a
// message that names the experiment, the default or clause and the field,
// the refusal is counted, and the shipped values still answer.
func TestRefusedFileKeepsTheShippedSet(t *testing.T) {
	t.Parallel()

	const (
		timeouts = "  eats_orders_tracking_picker_statuses_timeout:\n"
		call     = "  eats_orders_tracking_retail_call_picker:\n"
		contact  = "  eats_orders_tracking_retail_contact_us:\n    default: {enabled: true}\n"
		flagsOn  = call + "    default: {enabled: true}\n" + contact
		// goodTimeouts is the shipped list, for the files that break a flag.
		goodTimeouts = timeouts + "    default: [{status: new, timeout: 600}, {status: assigned, timeout: 600}, {status: picking, timeout: 300}, {status: picked_up, timeout: 900}]\n"
	)
	tests := []struct {
		name string
		file string
		want string // the message contains it, after the file's path
	}{
		{
			name: "unknown status",
			file: "experiments:\n" + timeouts + "    default: [{status: new, timeout: 600}]\n    clauses:\n      - {name: shops, if: {flow_type: {eq: shop}}, value: [{status: packed, timeout: 300}]}\n" + flagsOn,
			want: `experiment eats_orders_tracking_picker_statuses_timeout: clause "shops": value: [0].status: unknown picker status (got "packed")`,
		},
		{
			name: "negative timeout",
			file: "experiments:\n" + timeouts + "    default: [{status: new, timeout: 600}, {status: picking, timeout: -300}]\n" + flagsOn,
			want: `experiment eats_orders_tracking_picker_statuses_timeout: default: [1].timeout: must be an integer ≥ 1 (got -300)`,
		},
		{
			name: "timeout too large",
			file: "experiments:\n" + timeouts + "    default: [{status: new, timeout: 9223372036854775807}]\n" + flagsOn,
			want: `experiment eats_orders_tracking_picker_statuses_timeout: default: [0].timeout: must be at most 604800 seconds, 7 days (got 9223372036854775807)`,
		},
		{
			name: "duplicate status",
			file: "experiments:\n" + timeouts + "    default: [{status: new, timeout: 600}, {status: picking, timeout: 300}, {status: new, timeout: 60}]\n" + flagsOn,
			want: `experiment eats_orders_tracking_picker_statuses_timeout: default: [2].status: duplicate "new"`,
		},
		{
			name: "wrong type: a quoted timeout",
			file: "experiments:\n" + timeouts + "    default: [{status: new, timeout: \"600\"}]\n" + flagsOn,
			want: `experiment eats_orders_tracking_picker_statuses_timeout: default: [0].timeout: must be an integer (got "600")`,
		},
		{
			name: "wrong type: a flag as yes",
			file: "experiments:\n" + goodTimeouts + call + "    default: {enabled: true}\n    clauses:\n      - {name: pilot, if: {place_id: {eq: '40'}}, value: {enabled: yes}}\n" + contact,
			want: `experiment eats_orders_tracking_retail_call_picker: clause "pilot": value: enabled: must be true or false (got "yes")`,
		},
		{
			name: "unknown condition",
			file: "experiments:\n" + goodTimeouts + call + "    default: {enabled: true}\n    clauses:\n      - {name: pilot, if: {place_id: {regex: '^4'}}, value: {enabled: false}}\n" + contact,
			want: `experiment eats_orders_tracking_retail_call_picker: clause "pilot": if.place_id: unknown condition "regex" (want eq, in, exists or percent)`,
		},
		{
			name: "a condition that never holds",
			file: "experiments:\n" + goodTimeouts + flagsOn + "    clauses:\n      - {name: nobody, if: {eater_id: {in: []}}, value: {enabled: false}}\n",
			want: `experiment eats_orders_tracking_retail_contact_us: clause "nobody": if.eater_id.in: must list at least one value (an empty in never holds)`,
		},
		{
			// Nothing is parsed, so there is no experiment to name: the
			// message names the line (yaml.v3 names the line before the
			// unclosed [ of line 3, go-yaml/yaml#205).
			name: "malformed YAML",
			file: "experiments:\n" + timeouts + "    default: [{status: new, timeout: 600}\n" + flagsOn,
			want: "yaml: line 2: did not find expected ',' or ']'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, _ := shippedFile(t)
			reg := prometheus.NewRegistry()
			store, err := experiments.NewStore(experiments.StoreParams{
				Path: path,
				Definitions: []experiments.Definition{
					pickerupdater.StatusesTimeout.Definition(),
					trackingpresenter.CallPicker.Definition(),
					trackingpresenter.ContactUs.Definition(),
				},
				Registerer: reg,
			})
			require.NoError(t, err)
			require.NoError(t, store.Load(), "the shipped file loads")
			loadedAt := store.Status().LoadedAt

			require.NoError(t, os.WriteFile(path, []byte(tt.file), 0o644))
			err = store.Load()
			require.Error(t, err)
			require.Equal(t, path+": "+tt.want, strings.Split(err.Error(), "\n")[0])

			st := store.Status()
			require.NotNil(t, st.LastError)
			require.Equal(t, err.Error(), st.LastError.Message)
			require.EqualValues(t, 1, st.RefusedTotal)
			require.Equal(t, 1.0, counter(t, reg, "eot_experiments_refused_total"))
			require.Equal(t, loadedAt, st.LoadedAt, "the shipped set stays in force")

			list, ok := pickerupdater.StatusesTimeout.Get(store, experiments.Kwargs{})
			require.True(t, ok)
			require.Equal(t, []pickerupdater.StatusTimeout{
				{Status: tracking.PickerNew, Timeout: 600},
				{Status: tracking.PickerAssigned, Timeout: 600},
				{Status: tracking.PickerPicking, Timeout: 300},
				{Status: tracking.PickerPickedUp, Timeout: 900},
			}, list)
			kw := experiments.Kwargs{}.With(experiments.PlaceID, "40").With(experiments.EaterID, "42").With(experiments.FlowType, "shop")
			for _, key := range []experiments.Key[trackingpresenter.Flag]{trackingpresenter.CallPicker, trackingpresenter.ContactUs} {
				flag, ok := key.Get(store, kw)
				require.True(t, ok, key.Name())
				require.True(t, flag.Enabled, key.Name())
			}
		})
	}
}
