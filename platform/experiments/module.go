package experiments

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/httpapi"
)

// Path is the experiments file (EXPERIMENTS_FILE), provided by the platform.
type Path string

// group is the fx value group that collects the modules' Definitions.
const group = `group:"experiments"`

type moduleParams struct {
	fx.In

	Lifecycle   fx.Lifecycle
	Path        Path
	Definitions []Definition `group:"experiments"`
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// Module provides the *Store, loaded on start and watched until stop. It is
// always built, so an invalid file fails start-up even before a module
// reads an experiment.
var Module = fx.Module("experiments",
	fx.Provide(newModuleStore),
	fx.Invoke(func(*Store) {}),
	httpapi.AsOperations(Operations),
)

func newModuleStore(p moduleParams) (*Store, error) {
	s, err := NewStore(StoreParams{
		Path:        string(p.Path),
		Definitions: p.Definitions,
		Logger:      p.Logger.With("module", "experiments"),
		Registerer:  p.Registerer,
	})
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	return s, nil
}

// AsDefinition hands a module's experiment to the Store:
//
//	experiments.AsDefinition(CallPicker.Definition())
func AsDefinition(d Definition) fx.Option {
	return fx.Provide(fx.Annotate(func() Definition { return d }, fx.ResultTags(group)))
}
