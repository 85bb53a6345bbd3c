package experiments_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/experiments"
)

const timeoutsHead = "experiments:\n  eats_orders_tracking_picker_statuses_timeout:\n"
const callHead = "experiments:\n  eats_orders_tracking_retail_call_picker:\n"

func TestValidationErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		file string
		want string // the error contains it
	}{
		// Values, checked by the key's type and validator.
		{
			name: "unknown status",
			file: timeoutsHead + "    default: [{status: picking, timeout: 300}, {status: foo, timeout: 1}]\n",
			want: `experiment eats_orders_tracking_picker_statuses_timeout: default: [1].status: unknown picker status (got "foo")`,
		},
		{
			name: "zero timeout",
			file: timeoutsHead + "    default: [{status: picking, timeout: 300}, {status: new, timeout: 0}]\n",
			want: `experiment eats_orders_tracking_picker_statuses_timeout: default: [1].timeout: must be an integer ≥ 1 (got 0)`,
		},
		{
			name: "negative timeout",
			file: timeoutsHead + "    default: [{status: new, timeout: -5}]\n",
			want: `default: [0].timeout: must be an integer ≥ 1 (got -5)`,
		},
		{
			name: "fractional timeout",
			file: timeoutsHead + "    default: [{status: new, timeout: 1.5}]\n",
			want: `default: [0].timeout: must be an integer (got 1.5)`,
		},
		{
			name: "string timeout",
			file: timeoutsHead + "    default: [{status: new, timeout: x}]\n",
			want: `default: [0].timeout: must be an integer (got "x")`,
		},
		{
			name: "quoted number timeout",
			file: timeoutsHead + "    default: [{status: new, timeout: \"300\"}]\n",
			want: `default: [0].timeout: must be an integer (got "300")`,
		},
		{
			name: "missing timeout",
			file: timeoutsHead + "    default: [{status: new}]\n",
			want: `default: [0].timeout: required field is missing`,
		},
		{
			name: "duplicate status",
			file: timeoutsHead + "    default: [{status: new, timeout: 1}, {status: picking, timeout: 1}, {status: assigned, timeout: 1}, {status: picking, timeout: 2}]\n",
			want: `default: [3].status: duplicate "picking"`,
		},
		{
			name: "unknown field in a list entry",
			file: timeoutsHead + "    default: [{status: new, timeout: 1, timout: 2}]\n",
			want: `default: [0]: unknown field "timout"`,
		},
		{
			name: "a mapping where a list is wanted",
			file: timeoutsHead + "    default: {status: new, timeout: 1}\n",
			want: `default: must be a list (got a mapping)`,
		},
		{
			name: "invalid clause value",
			file: timeoutsHead + "    clauses:\n      - {name: shops, if: {flow_type: {eq: shop}}, value: [{status: new, timeout: 0}]}\n",
			want: `experiment eats_orders_tracking_picker_statuses_timeout: clause "shops": value: [0].timeout: must be an integer ≥ 1 (got 0)`,
		},
		{
			name: "flag as a quoted yes",
			file: callHead + "    default: {enabled: \"yes\"}\n",
			want: `experiment eats_orders_tracking_retail_call_picker: default: enabled: must be true or false (got "yes")`,
		},
		{
			name: "flag as a bare yes (YAML 1.1)",
			file: callHead + "    default: {enabled: yes}\n",
			want: `default: enabled: must be true or false (got "yes")`,
		},
		{
			name: "flag as a number",
			file: callHead + "    default: {enabled: 1}\n",
			want: `default: enabled: must be true or false (got 1)`,
		},
		{
			name: "flag without enabled",
			file: callHead + "    default: {}\n",
			want: `default: enabled: required field is missing`,
		},
		{
			name: "flag as a bare bool",
			file: callHead + "    default: true\n",
			want: `default: must be a mapping (got true)`,
		},
		{
			name: "null default",
			file: callHead + "    default:\n",
			want: `default: must be a mapping (got null)`,
		},
		// Conditions.
		{
			name: "percent out of range (DESIGN's example message)",
			file: callHead + "    clauses:\n      - name: half-of-eaters\n        if: {eater_id: {percent: {salt: s, from: 0, to: 150}}}\n        value: {enabled: true}\n",
			want: `experiment eats_orders_tracking_retail_call_picker: clause "half-of-eaters": if.eater_id.percent.to: must be within 0..100 (got 150)`,
		},
		{
			name: "percent from negative",
			file: callHead + "    clauses:\n      - {name: c, if: {eater_id: {percent: {salt: s, from: -1, to: 10}}}, value: {enabled: true}}\n",
			want: `clause "c": if.eater_id.percent.from: must be within 0..100 (got -1)`,
		},
		{
			name: "percent from above to",
			file: callHead + "    clauses:\n      - {name: c, if: {eater_id: {percent: {salt: s, from: 60, to: 50}}}, value: {enabled: true}}\n",
			want: `clause "c": if.eater_id.percent: from must not exceed to (got from 60, to 50)`,
		},
		{
			name: "percent bound not an integer",
			file: callHead + "    clauses:\n      - {name: c, if: {eater_id: {percent: {salt: s, from: 0, to: 12.5}}}, value: {enabled: true}}\n",
			want: `clause "c": if.eater_id.percent.to: must be an integer within 0..100 (got 12.5)`,
		},
		{
			name: "percent without salt",
			file: callHead + "    clauses:\n      - {name: c, if: {eater_id: {percent: {from: 0, to: 10}}}, value: {enabled: true}}\n",
			want: `clause "c": if.eater_id.percent.salt: required field is missing`,
		},
		{
			name: "percent with an unknown field",
			file: callHead + "    clauses:\n      - {name: c, if: {eater_id: {percent: {salt: s, from: 0, to: 10, of: 100}}}, value: {enabled: true}}\n",
			want: `clause "c": if.eater_id.percent: unknown field "of" (want salt, from and to)`,
		},
		{
			name: "unknown condition",
			file: callHead + "    clauses:\n      - {name: c, if: {eater_id: {regex: '^4'}}, value: {enabled: true}}\n",
			want: `experiment eats_orders_tracking_retail_call_picker: clause "c": if.eater_id: unknown condition "regex" (want eq, in, exists or percent)`,
		},
		{
			name: "unknown kwarg",
			file: callHead + "    clauses:\n      - {name: c, if: {user_id: {eq: '4'}}, value: {enabled: true}}\n",
			want: `clause "c": if: unknown kwarg "user_id" (want eater_id, order_nr, place_id, flow_type, language, any or not)`,
		},
		{
			name: "unknown kwarg inside any, in an unnamed clause",
			file: callHead + "    clauses:\n      - {if: {place_id: {eq: '1'}}, value: {enabled: true}}\n      - {if: {any: [{place_id: {eq: '1'}}, {city: {eq: x}}]}, value: {enabled: true}}\n",
			want: `clauses[1]: if.any[1]: unknown kwarg "city"`,
		},
		{
			name: "error inside not",
			file: callHead + "    clauses:\n      - {name: c, if: {not: {eater_id: {in: '4'}}}, value: {enabled: true}}\n",
			want: `clause "c": if.not.eater_id.in: must be a list of values (got "4")`,
		},
		{
			name: "any not a list",
			file: callHead + "    clauses:\n      - {name: c, if: {any: {eater_id: {eq: '4'}}}, value: {enabled: true}}\n",
			want: `clause "c": if.any: must be a list of ifs (got a mapping)`,
		},
		{
			name: "empty any never holds",
			file: callHead + "    clauses:\n      - {name: c, if: {any: []}, value: {enabled: true}}\n",
			want: `experiment eats_orders_tracking_retail_call_picker: clause "c": if.any: must list at least one if (an empty any never holds)`,
		},
		{
			name: "empty any nested in not",
			file: callHead + "    clauses:\n      - {name: c, if: {not: {any: []}}, value: {enabled: true}}\n",
			want: `clause "c": if.not.any: must list at least one if (an empty any never holds)`,
		},
		{
			name: "empty in never holds",
			file: callHead + "    clauses:\n      - {name: c, if: {place_id: {in: []}}, value: {enabled: true}}\n",
			want: `experiment eats_orders_tracking_retail_call_picker: clause "c": if.place_id.in: must list at least one value (an empty in never holds)`,
		},
		{
			name: "empty in inside any",
			file: callHead + "    clauses:\n      - {name: c, if: {any: [{place_id: {eq: '1'}}, {eater_id: {in: []}}]}, value: {enabled: true}}\n",
			want: `clause "c": if.any[1].eater_id.in: must list at least one value (an empty in never holds)`,
		},
		{
			name: "not of an empty if never holds",
			file: callHead + "    clauses:\n      - {name: c, if: {not: {}}, value: {enabled: true}}\n",
			want: `clause "c": if.not: must not be empty (not: {} never holds)`,
		},
		{
			name: "eq of a list",
			file: callHead + "    clauses:\n      - {name: c, if: {eater_id: {eq: [1]}}, value: {enabled: true}}\n",
			want: `clause "c": if.eater_id.eq: must be a scalar (got a list)`,
		},
		{
			name: "exists not a bool",
			file: callHead + "    clauses:\n      - {name: c, if: {eater_id: {exists: yes}}, value: {enabled: true}}\n",
			want: `clause "c": if.eater_id.exists: must be true or false (got "yes")`,
		},
		{
			name: "kwarg without a condition mapping",
			file: callHead + "    clauses:\n      - {name: c, if: {place_id: 40}, value: {enabled: true}}\n",
			want: `clause "c": if.place_id: must be a mapping of conditions, eq, in, exists or percent (got 40)`,
		},
		{
			name: "kwarg with no condition",
			file: callHead + "    clauses:\n      - {name: c, if: {place_id: {}}, value: {enabled: true}}\n",
			want: `clause "c": if.place_id: no condition`,
		},
		{
			name: "duplicate kwarg in an if",
			file: callHead + "    clauses:\n      - name: c\n        if:\n          place_id: {eq: '1'}\n          place_id: {eq: '2'}\n        value: {enabled: true}\n",
			want: `clause "c": if: duplicate key "place_id" (lines 6 and 7)`,
		},
		// Clauses and experiments.
		{
			name: "clause without value",
			file: callHead + "    clauses:\n      - {name: c, if: {place_id: {eq: '1'}}}\n",
			want: `clause "c": value: required field is missing`,
		},
		{
			name: "clause without if",
			file: callHead + "    clauses:\n      - {name: c, value: {enabled: true}}\n",
			want: `clause "c": if: required field is missing`,
		},
		{
			name: "clause with an unknown field",
			file: callHead + "    clauses:\n      - {name: c, when: {place_id: {eq: '1'}}, value: {enabled: true}}\n",
			want: `clause "c": unknown field "when" (want name, if and value)`,
		},
		{
			name: "duplicate clause name",
			file: callHead + "    clauses:\n      - {name: c, if: {}, value: {enabled: true}}\n      - {name: c, if: {}, value: {enabled: true}}\n",
			want: `clauses[1]: name: duplicate "c" (also clauses[0])`,
		},
		{
			name: "unknown field of an experiment",
			file: callHead + "    defualt: {enabled: true}\n",
			want: `experiment eats_orders_tracking_retail_call_picker: unknown field "defualt" (want default or clauses)`,
		},
		{
			name: "unknown experiment",
			file: "experiments:\n  eats_orders_tracking_retail_call_pickr: {default: {enabled: true}}\n",
			want: "experiment eats_orders_tracking_retail_call_pickr: unknown experiment (known: eats_orders_tracking_picker_statuses_timeout, eats_orders_tracking_retail_call_picker, eats_orders_tracking_retail_contact_us, label)",
		},
		{
			name: "duplicate experiment",
			file: "experiments:\n  label: {default: a}\n  label: {default: b}\n",
			want: `experiments: duplicate key "label" (lines 2 and 3)`,
		},
		// The file.
		{
			// yaml.v3 reports parser errors on the line before the construct
			// that failed (go-yaml/yaml#205), here the unclosed { on line 3.
			name: "malformed YAML names the line",
			file: callHead + "    default: {enabled: true\n    clauses: []\n",
			want: "yaml: line 2: did not find expected ',' or '}'",
		},
		{
			name: "a tab in indentation names the line",
			file: callHead + "    default: {enabled: true}\n\tclauses: []\n",
			want: "yaml: line 4: found character that cannot start any token",
		},
		{
			name: "empty file",
			file: "",
			want: "the file is empty",
		},
		{
			name: "unknown top-level key",
			file: "experiment:\n  label: {default: a}\n",
			want: `line 1: unknown top-level key "experiment" (want experiments)`,
		},
		{
			name: "experiments not a mapping",
			file: "experiments: [label]\n",
			want: "experiments: must be a mapping of experiment names to experiments (got a list)",
		},
		{
			name: "two documents",
			file: "experiments: {}\n---\nexperiments: {}\n",
			want: "line 2: more than one YAML document",
		},
		{
			name: "aliases",
			file: "experiments:\n  label: {default: &v a, clauses: [{if: {}, value: *v}]}\n",
			want: "line 2: YAML aliases (*v) are not supported",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "experiments.yaml")
			writeFile(t, path, tt.file)
			err := experiments.ValidateFile(path, allDefinitions())
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			if tt.file != "" {
				require.True(t, strings.HasPrefix(err.Error(), path+": "), "the error names the file: %v", err)
			}
		})
	}
}

// An integer that does not fit its Go field is refused naming the field and
// the range, not with yaml.v3's "cannot unmarshal !!int `9223372...`".
func TestValidationIntegerRange(t *testing.T) {
	t.Parallel()

	type limits struct {
		Small int8   `yaml:"small,omitempty"`
		Count uint16 `yaml:"count,omitempty"`
		Big   int64  `yaml:"big,omitempty"`
	}
	key := experiments.NewKey[limits]("limits", nil)
	tests := []struct {
		value string
		want  string // "" for valid
	}{
		{"{small: 127, count: 65535, big: 9223372036854775807}", ""},
		{"{small: -128, big: -9223372036854775808}", ""},
		{"{small: 128}", "default: small: must be an integer within -128..127 (got 128)"},
		{"{small: -129}", "default: small: must be an integer within -128..127 (got -129)"},
		{"{count: 65536}", "default: count: must be an integer within 0..65535 (got 65536)"},
		{"{count: -1}", "default: count: must be an integer within 0..65535 (got -1)"},
		{"{big: 9223372036854775808}", "default: big: must be an integer within -9223372036854775808..9223372036854775807 (got 9223372036854775808)"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "experiments.yaml")
			writeFile(t, path, "experiments:\n  limits: {default: "+tt.value+"}\n")
			err := experiments.ValidateFile(path, []experiments.Definition{key.Definition()})
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "experiment limits: "+tt.want)
		})
	}
}

func TestValidationReportsEveryExperiment(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "experiments.yaml")
	writeFile(t, path, `experiments:
  eats_orders_tracking_retail_call_picker: {default: {enabled: 1}}
  eats_orders_tracking_retail_contact_us: {default: {enabled: true}}
  eats_orders_tracking_picker_statuses_timeout: {default: [{status: new, timeout: 0}]}
`)
	err := experiments.ValidateFile(path, allDefinitions())
	require.ErrorContains(t, err, "experiment eats_orders_tracking_retail_call_picker: default: enabled:")
	require.ErrorContains(t, err, "experiment eats_orders_tracking_picker_statuses_timeout: default: [0].timeout:")
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 2, "one line per invalid experiment")
	for _, l := range lines {
		require.True(t, strings.HasPrefix(l, path+": experiment "), "each line names the file: %q", l)
	}
}

func TestValidateFile(t *testing.T) {
	t.Parallel()

	require.NoError(t, experiments.ValidateFile("testdata/design.yaml", allDefinitions()))

	err := experiments.ValidateFile("testdata/malformed.yaml", allDefinitions())
	require.ErrorContains(t, err, "testdata/malformed.yaml: yaml: line 2:")

	err = experiments.ValidateFile(filepath.Join(t.TempDir(), "nope.yaml"), allDefinitions())
	require.ErrorIs(t, err, os.ErrNotExist)

	err = experiments.ValidateFile("testdata/design.yaml", []experiments.Definition{callPicker.Definition()})
	require.ErrorContains(t, err, "experiment eats_orders_tracking_picker_statuses_timeout: unknown experiment (known: eats_orders_tracking_retail_call_picker)")
}

// A refused file changes nothing in force; the refusal is visible in
// Status and the metrics.
func TestRefusedLoadKeepsLastGoodSet(t *testing.T) {
	t.Parallel()

	tb := loaded(t, callHead+"    default: {enabled: true}\n")
	require.Equal(t, 1.0, metric(t, tb.registry, "eot_experiments_loaded"))
	goodAt := metric(t, tb.registry, "eot_experiments_last_good_load_timestamp_seconds")
	require.Positive(t, goodAt)

	refusals := []string{
		callHead + "    default: {enabled: maybe}\n", // wrong type
		callHead + "    default: {enabled: false\n",  // malformed
		"experiments: []\n",                          // not a mapping
		"",                                           // empty
	}
	for i, file := range refusals {
		writeFile(t, tb.path, file)
		require.Error(t, tb.store.Load())

		got, ok := callPicker.Get(tb.store, kw(experiments.EaterID, "1"))
		require.True(t, ok, "the last good set still answers")
		require.True(t, got.Enabled)

		st := tb.store.Status()
		require.NotNil(t, st.LastError)
		require.Contains(t, st.LastError.Message, tb.path)
		require.EqualValues(t, i+1, st.RefusedTotal)
		require.Equal(t, float64(i+1), metric(t, tb.registry, "eot_experiments_refused_total"))
	}
	require.Equal(t, 1.0, metric(t, tb.registry, "eot_experiments_loaded"))
	require.Equal(t, goodAt, metric(t, tb.registry, "eot_experiments_last_good_load_timestamp_seconds"))
	require.Equal(t, len(refusals), strings.Count(tb.logs.String(), "experiments file refused"), "each refusal is logged once")

	writeFile(t, tb.path, callHead+"    default: {enabled: false}\n")
	require.NoError(t, tb.store.Load())
	got, ok := callPicker.Get(tb.store, experiments.Kwargs{})
	require.True(t, ok)
	require.False(t, got.Enabled)
}

func TestStatus(t *testing.T) {
	t.Parallel()

	tb := loaded(t, `experiments:
  eats_orders_tracking_retail_call_picker:
    default: {enabled: true}
    clauses:
      - name: pilot
        if: {place_id: {in: [40, "41"]}}
        value: {enabled: false}
  label: {default: x}
`)
	st := tb.store.Status()
	require.Equal(t, tb.path, st.Path)
	require.NotNil(t, st.LoadedAt)
	require.Nil(t, st.LastError)

	raw, err := json.Marshal(st)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got))
	require.Equal(t, map[string]any{
		"eats_orders_tracking_retail_call_picker": map[string]any{
			"default": map[string]any{"enabled": true},
			"clauses": []any{map[string]any{
				"name":  "pilot",
				"if":    map[string]any{"place_id": map[string]any{"in": []any{40.0, "41"}}},
				"value": map[string]any{"enabled": false},
			}},
		},
		"label": map[string]any{"default": "x"},
	}, got["experiments"])
	require.Nil(t, got["last_error"])
	require.Equal(t, 0.0, got["refused_total"])
	require.NotEmpty(t, got["loaded_at"])

	writeFile(t, tb.path, "experiments: [")
	require.Error(t, tb.store.Load())
	raw, err = json.Marshal(tb.store.Status())
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &got))
	lastErr, ok := got["last_error"].(map[string]any)
	require.True(t, ok, "last_error is an object: %s", raw)
	require.Contains(t, lastErr["message"], "yaml: line 1")
	require.NotEmpty(t, lastErr["at"])
	require.Equal(t, 1.0, got["refused_total"])
}

func TestNewStoreRefuses(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		params experiments.StoreParams
		want   string
	}{
		{"no path", experiments.StoreParams{}, "path is empty"},
		{
			"a name defined twice",
			experiments.StoreParams{Path: "x.yaml", Definitions: []experiments.Definition{
				label.Definition(), experiments.NewKey[int]("label", nil).Definition(),
			}},
			"experiment label is defined twice",
		},
		{
			"a zero key",
			experiments.StoreParams{Path: "x.yaml", Definitions: []experiments.Definition{experiments.Key[int]{}.Definition()}},
			"has no name",
		},
		{"negative poll interval", experiments.StoreParams{Path: "x.yaml", PollInterval: -1}, "poll interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := experiments.NewStore(tt.params)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// The service ignores experiments it does not define (the file may carry
// one for a newer version mid roll-out) and says so; the validator, which
// is where a typo must stop a change, refuses them.
func TestUnknownExperimentIgnoredInServiceRefusedByValidator(t *testing.T) {
	t.Parallel()

	file := callHead + "    default: {enabled: true}\n  eats_orders_tracking_newer_feature: {default: {enabled: true}}\n"
	tb := loaded(t, file)
	got, ok := callPicker.Get(tb.store, kw(experiments.EaterID, "1"))
	require.True(t, ok)
	require.True(t, got.Enabled)
	st := tb.store.Status()
	require.Equal(t, []string{"eats_orders_tracking_newer_feature"}, st.Ignored)
	require.Nil(t, st.LastError)
	require.Equal(t, 1.0, metric(t, tb.registry, "eot_experiments_ignored"))

	err := experiments.ValidateFile(tb.path, allDefinitions())
	require.ErrorContains(t, err, "experiment eats_orders_tracking_newer_feature: unknown experiment (known: ")
}
