package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// runExperiments runs `eats-orders-tracking experiments ARGS...` through the
// binary's entry point.
func runExperiments(t *testing.T, environ config.Environment, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"experiments"}, args...), environ, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestExperimentsValidateAcceptsAGoodFile(t *testing.T) {
	t.Parallel()

	for _, path := range []string{
		"experiments.yaml", // shipped, the default EXPERIMENTS_FILE
		filepath.Join("platform", "experiments", "testdata", "design.yaml"), // DESIGN §7's example
	} {
		code, stdout, stderr := runExperiments(t, config.Environment{}, "validate", path)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, path+": ok (3 experiments known)\n", stdout)
		require.Empty(t, stderr)
	}
}

// The config repository's CI validates with whatever environment it has:
// settings that would stop the service must not fail the check.
func TestExperimentsValidateIgnoresTheServiceConfig(t *testing.T) {
	t.Parallel()

	bad := config.Environment{"SHUTDOWN_TIMEOUT": "banana", "PICKER_UPDATER_INTERVAL": "banana"}
	var out, errOut bytes.Buffer
	require.Equal(t, 1, run([]string{"openapi"}, bad, &out, &errOut), "the environment is bad for the service")
	require.Contains(t, errOut.String(), "SHUTDOWN_TIMEOUT")

	code, stdout, stderr := runExperiments(t, bad, "validate", "experiments.yaml")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "experiments.yaml: ok (3 experiments known)\n", stdout)
}

func TestExperimentsValidateRefusesABadFile(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		file string
		want []string // stderr contains each, after the file's path
	}{
		{
			name: "unknown condition in a clause",
			file: `experiments:
  eats_orders_tracking_retail_call_picker:
    default: {enabled: true}
    clauses:
      - name: pilot
        if: {place_id: {regex: "^4"}}
        value: {enabled: false}
`,
			want: []string{`experiment eats_orders_tracking_retail_call_picker: clause "pilot": if.place_id: unknown condition "regex"`},
		},
		{
			name: "two bad experiments, one line each",
			file: `experiments:
  eats_orders_tracking_picker_statuses_timeout:
    default: [{status: new, timeout: 9223372036854775807}]
  eats_orders_tracking_retail_contact_us:
    default: {enabled: yes}
`,
			want: []string{
				"experiment eats_orders_tracking_picker_statuses_timeout: default: [0].timeout: must be at most 604800 seconds",
				`experiment eats_orders_tracking_retail_contact_us: default: enabled: must be true or false (got "yes")`,
			},
		},
		{
			// The service ignores it (a newer version's experiment during
			// a roll-out); the validator catches the typo.
			name: "unknown experiment",
			file: "experiments:\n  eats_orders_tracking_retail_call_pickr: {default: {enabled: true}}\n",
			want: []string{"experiment eats_orders_tracking_retail_call_pickr: unknown experiment (known: eats_orders_tracking_picker_statuses_timeout, eats_orders_tracking_retail_call_picker, eats_orders_tracking_retail_contact_us)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "experiments.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.file), 0o644))
			code, stdout, stderr := runExperiments(t, config.Environment{}, "validate", path)
			require.Equal(t, 1, code)
			require.Empty(t, stdout)
			require.Contains(t, stderr, "eats-orders-tracking experiments: ")
			for _, want := range tt.want {
				require.Contains(t, stderr, path+": "+want)
			}
		})
	}

	missing := filepath.Join(t.TempDir(), "nope.yaml")
	code, _, stderr := runExperiments(t, config.Environment{}, "validate", missing)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, missing)
}

func TestExperimentsUsage(t *testing.T) {
	t.Parallel()

	for _, args := range [][]string{{}, {"validate"}, {"check", "experiments.yaml"}, {"validate", "a.yaml", "b.yaml"}} {
		code, stdout, stderr := runExperiments(t, config.Environment{}, args...)
		require.Equal(t, 1, code, args)
		require.Empty(t, stdout, args)
		require.Contains(t, stderr, "usage: experiments validate FILE", args)
	}
}

// The validator checks against the same experiments the service loads: the
// list modules.ExperimentDefinitions hands it is the one the modules register in
// the graph.
func TestExperimentsValidateKnowsWhatTheServiceLoads(t *testing.T) {
	t.Parallel()

	names := func(defs []experiments.Definition) []string {
		out := make([]string, 0, len(defs))
		for _, d := range defs {
			out = append(out, d.Name())
		}
		slices.Sort(out)
		return out
	}
	want := []string{
		"eats_orders_tracking_picker_statuses_timeout",
		"eats_orders_tracking_retail_call_picker",
		"eats_orders_tracking_retail_contact_us",
	}
	require.Equal(t, want, names(modules.ExperimentDefinitions()))

	var p struct {
		fx.In
		Defs []experiments.Definition `group:"experiments"`
	}
	a := fx.New(graph(config.Environment{}), fx.NopLogger, fx.Populate(&p))
	require.NoError(t, a.Err())
	require.Equal(t, want, names(p.Defs), "modules.ExperimentDefinitions must list what the modules register")
}
