package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

func TestServeFailsFastOnUnreachableDatabase(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	start := time.Now()
	code := run([]string{"serve"}, config.Environment{
		"DATABASE_URL": "postgres://root@127.0.0.1:1/eats_orders_tracking?sslmode=disable",
		"HTTP_ADDR":    "127.0.0.1:0",
		"LOG_LEVEL":    "error",
	}, &out, &errOut)
	require.Equal(t, 1, code)
	require.Less(t, time.Since(start), 15*time.Second)
	msg := errOut.String()
	require.Contains(t, msg, `database "eats_orders_tracking" at 127.0.0.1:1`)
	require.NotContains(t, msg, "goroutine ", "a message, not a stack trace")
}

func TestServeRefusesBadConfigNamingTheVariable(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	code := run([]string{"serve"}, config.Environment{"SHUTDOWN_TIMEOUT": "soon"}, &out, &errOut)
	require.Equal(t, 1, code)
	require.Contains(t, errOut.String(), "SHUTDOWN_TIMEOUT")
}

func TestMigrateSubcommand(t *testing.T) {
	t.Parallel()
	environ := config.Environment{"DATABASE_URL": pgtest.NewDatabase(t)}
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"migrate", "up"}, environ, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "applied 1")
	out.Reset()
	require.Equal(t, 0, run([]string{"migrate", "status"}, environ, &out, &errOut), errOut.String())
	require.NotContains(t, out.String(), "pending")
	out.Reset()
	require.Equal(t, 0, run([]string{"migrate", "down"}, environ, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "rolled back")
	out.Reset()
	require.Equal(t, 0, run([]string{"migrate", "status"}, environ, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "pending")
	require.Equal(t, 1, run([]string{"migrate", "sideways"}, environ, &out, &errOut))
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.Equal(t, 1, run([]string{"frobnicate"}, config.Environment{}, &out, &errOut))
	require.True(t, strings.Contains(errOut.String(), "usage:"))
}
