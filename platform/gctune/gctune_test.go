package gctune_test

import (
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/gctune"
)

// Not parallel: the collector's settings are the process'.
func TestApply(t *testing.T) {
	gc, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(gc); debug.SetMemoryLimit(limit) })
	logger := slog.New(slog.DiscardHandler)

	debug.SetGCPercent(100)
	gctune.Apply(config.Environment{}, logger)
	require.Equal(t, gctune.DefaultGCPercent, debug.SetGCPercent(100), "GOGC unset: the default")

	// GOGC set: the runtime already applied it, Apply must not override.
	debug.SetGCPercent(150)
	gctune.Apply(config.Environment{"GOGC": "150"}, logger)
	require.Equal(t, 150, debug.SetGCPercent(100))

	// GOMEMLIMIT set: left as the runtime read it.
	debug.SetMemoryLimit(1 << 30)
	gctune.Apply(config.Environment{"GOMEMLIMIT": "1GiB"}, logger)
	require.EqualValues(t, 1<<30, debug.SetMemoryLimit(-1))
}
