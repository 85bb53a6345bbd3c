package experiments_test

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// platform supplies what Module needs from other platform packages.
func platform(path string, reg prometheus.Registerer) fx.Option {
	return fx.Options(
		fx.Supply(experiments.Path(path), slog.New(slog.DiscardHandler)),
		fx.Provide(func() prometheus.Registerer { return reg }),
		fx.NopLogger,
	)
}

func TestModule(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "experiments.yaml")
	writeFile(t, path, flagFile(true)+"  label: {default: x}\n")
	reg := prometheus.NewRegistry()
	var store *experiments.Store
	app := fxtest.New(t,
		platform(path, reg),
		experiments.Module,
		// Two modules, each handing over its own keys.
		fx.Module("presenter", experiments.AsDefinition(callPicker.Definition())),
		fx.Module("other", experiments.AsDefinition(label.Definition())),
		fx.Populate(&store),
	)
	app.RequireStart()
	on, ok := callPickerOn(store)
	require.True(t, ok)
	require.True(t, on)
	require.Equal(t, 2.0, metric(t, reg, "eot_experiments_loaded"))
	app.RequireStop() // goleak (TestMain) checks the watcher is gone
}

// The store is built and started even if nothing asks for it, so a bad
// file stops the service at start-up rather than at the first request.
func TestModuleRefusesInvalidFileAtStart(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "experiments.yaml")
	writeFile(t, path, "experiments:\n  eats_orders_tracking_retail_call_picker: {default: {enabled: maybe}}\n")
	app := fx.New(
		platform(path, prometheus.NewRegistry()),
		experiments.Module,
		experiments.AsDefinition(callPicker.Definition()),
	)
	require.NoError(t, app.Err())
	err := app.Start(t.Context())
	require.ErrorContains(t, err, "experiment eats_orders_tracking_retail_call_picker: default: enabled:")
	require.NoError(t, app.Stop(t.Context()))
}

func TestModuleRefusesDuplicateDefinitions(t *testing.T) {
	t.Parallel()

	app := fx.New(
		platform(filepath.Join(t.TempDir(), "experiments.yaml"), prometheus.NewRegistry()),
		experiments.Module,
		experiments.AsDefinition(callPicker.Definition()),
		experiments.AsDefinition(callPicker.Definition()),
	)
	require.ErrorContains(t, app.Err(), "experiment eats_orders_tracking_retail_call_picker is defined twice")
}
