package experiments_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// The store's watcher is a goroutine: every test must leave none behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The value types of this package's tests. platform/ must not import
// modules/, so they mirror the modules' types instead of importing them.
type flag struct {
	Enabled bool `yaml:"enabled"`
}

type statusTimeout struct {
	Status  string `yaml:"status"`
	Timeout int    `yaml:"timeout"`
}

var knownStatuses = map[string]bool{"new": true, "assigned": true, "picking": true, "picked_up": true}

func validateTimeouts(list []statusTimeout) error {
	seen := map[string]bool{}
	for i, st := range list {
		if !knownStatuses[st.Status] {
			return fmt.Errorf("[%d].status: unknown picker status (got %q)", i, st.Status)
		}
		if seen[st.Status] {
			return fmt.Errorf("[%d].status: duplicate %q", i, st.Status)
		}
		seen[st.Status] = true
		if st.Timeout < 1 {
			return fmt.Errorf("[%d].timeout: must be an integer ≥ 1 (got %d)", i, st.Timeout)
		}
	}
	return nil
}

var (
	timeoutsKey = experiments.NewKey[[]statusTimeout]("eats_orders_tracking_picker_statuses_timeout", validateTimeouts)
	callPicker  = experiments.NewKey[flag]("eats_orders_tracking_retail_call_picker", nil)
	contactUs   = experiments.NewKey[flag]("eats_orders_tracking_retail_contact_us", nil)
	// label's value is a plain string, which keeps matching tests short.
	label = experiments.NewKey[string]("label", nil)
)

func allDefinitions() []experiments.Definition {
	return []experiments.Definition{
		timeoutsKey.Definition(), callPicker.Definition(), contactUs.Definition(), label.Definition(),
	}
}

// testBundle is what most tests need: a file, a store over it and what the
// store reports through.
type testBundle struct {
	path     string
	store    *experiments.Store
	registry *prometheus.Registry
	logs     *pgtest.SafeBuffer
}

// setup writes content (if not empty) to a fresh experiments file and builds
// a store over it. The store is neither loaded nor started.
func setup(t *testing.T, content string) *testBundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "experiments.yaml")
	if content != "" {
		writeFile(t, path, content)
	}
	return setupAt(t, path)
}

func setupAt(t testing.TB, path string) *testBundle {
	t.Helper()
	tb := &testBundle{path: path, registry: prometheus.NewRegistry(), logs: &pgtest.SafeBuffer{}}
	store, err := experiments.NewStore(experiments.StoreParams{
		Path:        path,
		Definitions: allDefinitions(),
		Logger:      slog.New(slog.NewTextHandler(tb.logs, nil)),
		Registerer:  tb.registry,
	})
	require.NoError(t, err)
	tb.store = store
	return tb
}

// loaded is setup plus a successful Load.
func loaded(t *testing.T, content string) *testBundle {
	t.Helper()
	tb := setup(t, content)
	require.NoError(t, tb.store.Load())
	return tb
}

// started is setup plus Start, with Stop at cleanup.
func started(t *testing.T, path string) *testBundle {
	t.Helper()
	tb := setupAt(t, path)
	require.NoError(t, tb.store.Start(t.Context()))
	// t.Context is already cancelled when cleanups run.
	t.Cleanup(func() { require.NoError(t, tb.store.Stop(context.Background())) })
	return tb
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// labelFile is a file with only the label experiment, whose body is
// indented under it.
func labelFile(body string) string {
	return "experiments:\n  label:\n" + indent(body, "    ")
}

func indent(s, prefix string) string {
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter([]byte(s), []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			b.WriteString(prefix)
		}
		b.Write(line)
	}
	return b.String()
}

// metric returns the value of a gauge or counter without labels.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	require.FailNow(t, "metric not registered", name)
	return 0
}

// eventually polls cond every 10 ms until it holds or the deadline passes:
// DESIGN §7 promises a change is in force within 2 s.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 2*time.Second, 10*time.Millisecond, msg)
}
