package experiments

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The fuzz target's value types: the shapes the modules use (platform/ must
// not import modules/), plus a plain string.
type fuzzFlag struct {
	Enabled bool `yaml:"enabled"`
}

type fuzzTimeout struct {
	Status  string `yaml:"status"`
	Timeout int    `yaml:"timeout"`
}

func fuzzDefinitions() map[string]Definition {
	validate := func(list []fuzzTimeout) error {
		for i, st := range list {
			if st.Timeout < 1 {
				return fmt.Errorf("[%d].timeout: must be ≥ 1", i)
			}
		}
		return nil
	}
	defs, err := checkDefinitions([]Definition{
		NewKey[[]fuzzTimeout]("eats_orders_tracking_picker_statuses_timeout", validate),
		NewKey[fuzzFlag]("eats_orders_tracking_retail_call_picker", nil),
		NewKey[fuzzFlag]("eats_orders_tracking_retail_contact_us", nil),
		NewKey[string]("label", nil),
	})
	if err != nil {
		panic(err)
	}
	return defs
}

// fuzzKwargs are evaluated against every accepted file: none, all, some, and
// values that sit on the edges of conditions.
var fuzzKwargs = []Kwargs{
	{},
	Kwargs{}.With(EaterID, "42").With(OrderNr, "230101-1").With(PlaceID, "40").With(FlowType, "shop").With(Language, "en"),
	Kwargs{}.With(PlaceID, "41").With(EaterID, ""),
	Kwargs{}.With(FlowType, "0042").With(Language, "no"),
}

// FuzzCompile feeds the experiments file, outside input edited by hand, to
// the loader: it must never panic, a refusal is an error with a message,
// and an accepted file evaluates for any kwargs, gives values of the
// experiment's type and shows as JSON on the status endpoint.
func FuzzCompile(f *testing.F) {
	for _, path := range []string{
		filepath.Join("..", "..", "experiments.yaml"), // shipped
		filepath.Join("testdata", "design.yaml"),      // DESIGN §7's example
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"experiments: {}\n",
		"experiments:\n  label:\n    default: x\n    clauses:\n      - {name: a, if: {any: [{eater_id: {exists: false}}, {not: {place_id: {in: [1, 2, 3, 4, 5, 6, 7, 8, 9]}}}]}, value: y}\n      - {if: {language: {eq: en}, flow_type: {percent: {salt: s, from: 0, to: 100}}}, value: z}\n",
		"experiments:\n  eats_orders_tracking_retail_call_picker: {clauses: [{if: {order_nr: {exists: true}}, value: {enabled: false}}]}\n",
		"experiments:\n  label: {default: &a x, clauses: [{if: {}, value: *a}]}\n",
		"experiments:\n  eats_orders_tracking_picker_statuses_timeout: {default: [{status: new, timeout: 0x10}]}\n",
		// Scalars JSON cannot carry, shown on the status endpoint.
		"experiments:\n  label: {default: .inf, clauses: [{if: {eater_id: {eq: .nan}}, value: -.Inf}]}\n",
	} {
		f.Add([]byte(s))
	}
	defs := fuzzDefinitions()
	f.Fuzz(func(t *testing.T, data []byte) {
		exps, unknown, err := compile(data, defs)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("a refusal without a message")
			}
			if exps != nil || unknown != nil {
				t.Fatal("a refused file returned experiments")
			}
			return
		}
		for _, name := range unknown {
			if _, ok := defs[name]; ok {
				t.Fatalf("%s is defined but reported unknown", name)
			}
		}
		for name, e := range exps {
			for i := range fuzzKwargs {
				v, ok := e.evaluate(&fuzzKwargs[i])
				if !ok {
					continue
				}
				if !fitsKey(defs[name], v) {
					t.Fatalf("experiment %s evaluated to %T", name, v)
				}
			}
			if _, err := json.Marshal(toTree(e.raw)); err != nil {
				t.Fatalf("experiment %s cannot be shown as JSON: %v", name, err)
			}
		}
	})
}

// fitsKey reports whether v is a value of d's type, as Key.Get unboxes it.
func fitsKey(d Definition, v any) bool {
	switch d.(type) {
	case Key[[]fuzzTimeout]:
		_, ok := v.([]fuzzTimeout)
		return ok
	case Key[fuzzFlag]:
		_, ok := v.(fuzzFlag)
		return ok
	case Key[string]:
		_, ok := v.(string)
		return ok
	}
	return false
}
