// Package logging builds the service's *slog.Logger from config and routes
// fx's own events through it, so one stream carries everything.
package logging

import (
	"io"
	"log/slog"
	"os"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// Output is where logs go; tests replace it to capture lines.
type Output io.Writer

// New builds the root logger. Config was validated already, so a parse
// failure here cannot happen; info is the safe fallback anyway.
func New(cfg config.Platform, out Output) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	var w io.Writer = os.Stderr
	if out != nil {
		w = out
	}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("service", "eats-orders-tracking")
}

// ForModule scopes a logger to an fx module name, as logs and metrics use it.
func ForModule(l *slog.Logger, module string) *slog.Logger {
	return l.With("module", module)
}

// FxLogger sends fx's wiring events to slog at debug level, errors too: fx
// returns every error it logs to the caller, which reports its cause once
// (main prints it; a start failure is logged by whoever started the app),
// where fx would log the same error with its whole wiring chain 2-4 times.
func FxLogger(l *slog.Logger) fxevent.Logger {
	fl := &fxevent.SlogLogger{Logger: l.With("component", "fx")}
	fl.UseLogLevel(slog.LevelDebug)
	fl.UseErrorLevel(slog.LevelDebug)
	return fl
}

// Module provides the root logger and makes fx log through it. fx.WithLogger
// inside a module covers only that module, so it sits beside, not inside.
var Module = fx.Options(fx.Module("logging",
	fx.Provide(func(cfg config.Platform, p struct {
		fx.In
		Out Output `optional:"true"`
	}) *slog.Logger {
		return New(cfg, p.Out)
	})),
	fx.WithLogger(FxLogger),
)
