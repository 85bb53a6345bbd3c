package pgtest

import (
	"bytes"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/logging"
)

// Token is the internal API token of test environments.
const Token = "test-internal-token"

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Env is the environment of a test service on a fresh database and a
// private Redis prefix, HTTP on a free loopback port, the internal token
// set and the shipped experiments file; overrides win.
func Env(tb testing.TB, overrides map[string]string) config.Environment {
	tb.Helper()
	base := config.Environment{
		"DATABASE_URL":       Clone(tb),
		"REDIS_URL":          RedisURL(),
		"REDIS_KEY_PREFIX":   RedisPrefix(tb),
		"HTTP_ADDR":          "127.0.0.1:0",
		"INTERNAL_API_TOKEN": Token,
		"EXPERIMENTS_FILE":   filepath.Join(RepoRoot(), "experiments.yaml"),
		"SHUTDOWN_TIMEOUT":   "10s",
		"LOG_LEVEL":          "debug",
	}
	return base.With(overrides)
}

// Inputs is what platform.Module needs from a test: the environment, the
// service's schema, and where logs go (nil: discarded). A module test runs
// fxtest.New(t, pgtest.Inputs(env, logs), platform.Module, Module, …).
func Inputs(env config.Environment, logs io.Writer) fx.Option {
	if logs == nil {
		logs = io.Discard
	}
	return fx.Options(
		fx.Supply(env, Source()),
		fx.Provide(func() logging.Output { return logs }),
	)
}

// Eventually polls cond every 10 ms until it holds or the deadline passes.
func Eventually(tb testing.TB, within time.Duration, cond func() bool, msg string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %s: "+msg, append([]any{within}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SafeBuffer collects log output from many goroutines.
type SafeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SafeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SafeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the log lines containing substr.
func (b *SafeBuffer) Lines(substr string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}
