// Package gctune sets the Go collector's targets for the serving binary.
//
// The tracking presenter keeps every listed order in memory, a live heap of
// ~110 MB of small pointer-rich objects at 1M orders, while each poll
// allocates a few KB. With Go's default GOGC=100 the collector re-marks that
// heap every ~110 MB allocated (more than once a second at 20k polls/s), and
// bench:tracking's p99 was 33–36 ms; with GOGC=400 it was 20–22 ms at higher
// throughput (docs/benchmarks.md). So, unless the operator set them:
//   - GOGC defaults to 400;
//   - GOMEMLIMIT defaults to 90% of the container's (cgroup) memory limit,
//     so the higher GOGC never costs an OOM kill: near the limit the
//     collector runs as often as it must. Without a cgroup limit, none.
//
// Only `serve` and `demo` use it: tests run many apps in one process.
package gctune

import (
	"errors"
	"log/slog"
	"math"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// DefaultGCPercent is GOGC when the environment does not set it.
const DefaultGCPercent = 400

// Module applies the defaults once the logger exists.
var Module = fx.Module("gctune", fx.Invoke(Apply))

// Apply sets GOGC and GOMEMLIMIT unless environ sets them (the runtime has
// already read those), and logs what is in force.
func Apply(environ config.Environment, logger *slog.Logger) {
	gcSource := "GOGC"
	if _, ok := environ.Lookup("GOGC"); !ok {
		debug.SetGCPercent(DefaultGCPercent)
		gcSource = "default"
	}
	limitSource := "GOMEMLIMIT"
	if _, ok := environ.Lookup("GOMEMLIMIT"); !ok {
		limitSource = "none"
		// Without a limit Set reports the runtime's "no limit" (MaxInt64).
		limit, err := memlimit.Set(memlimit.WithRatio(0.9), memlimit.WithProvider(memlimit.FromCgroup))
		switch {
		case err != nil && !errors.Is(err, memlimit.ErrNoLimit) && !errors.Is(err, memlimit.ErrNoCgroup):
			logger.Warn("gctune: cannot read the container's memory limit; GOMEMLIMIT left unset", "err", err)
		case err == nil && limit > 0 && limit < math.MaxInt64:
			limitSource = "cgroup"
		}
	}
	gcPercent := debug.SetGCPercent(-1)
	debug.SetGCPercent(gcPercent)
	logger.Info("gc targets", "gogc", gcPercent, "gogc_from", gcSource,
		"gomemlimit_bytes", debug.SetMemoryLimit(-1), "gomemlimit_from", limitSource)
}
