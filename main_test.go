package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
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

// badValues has, for every configuration variable, a value the service
// must refuse at start. Variables that take any string are listed as "".
var badValues = map[string]string{
	"DATABASE_URL":                  "mysql://app@db/eot",
	"DATABASE_MAX_CONNS":            "1",
	"REDIS_URL":                     "http://127.0.0.1:6379",
	"REDIS_KEY_PREFIX":              "",
	"HTTP_ADDR":                     "8080",
	"INTERNAL_API_TOKEN":            "",
	"EXPERIMENTS_FILE":              "", // any path; a missing file is waited for
	"JOB_RETENTION":                 "30m",
	"SHUTDOWN_TIMEOUT":              "soon",
	"LOG_LEVEL":                     "loud",
	"LOG_FORMAT":                    "xml",
	"PICKER_INGEST_MAX_WORKERS":     "0",
	"PICKER_INGEST_COMMIT_LANES":    "0",
	"PHONE_CACHE_TTL":               "2m",
	"ORDER_INGEST_WORKERS":          "many",
	"ORDER_INGEST_COMMIT_LANES":     "0",
	"TRACKING_CACHE_ENTRIES":        "-1",
	"TRACKING_CACHE_MAX_AGE":        "-5m",
	"TRACKING_MAX_ORDERS_PER_EATER": "0",
	"TRACKING_STREAMS_MAX":          "0",
	"TRACKING_STREAMS_PER_EATER":    "0",
	"TRACKING_STREAM_MAX_AGE":       "500ms",
	"PICKER_ORDERS_URL":             "ftp://picker-orders",
	"PICKER_UPDATER_INTERVAL":       "0s",
	"PICKER_REFRESH_CONCURRENCY":    "0",
	"CLEANUP_INTERVAL":              "often",
	"CLEANUP_BATCH_SIZE":            "0",
	"RETENTION":                     "-72h",
	"PICKER_UPDATER_MAX_ENQUEUE":    "0",
	"CLEANUP_FULL_SWEEP_INTERVAL":   "-1h",
}

// TestEveryVariableIsRefusedWhenBad starts the real binary (this test
// binary re-run as main) with each bad value: it must exit 1 with one short
// line naming the variable, not fx's wiring or a stack trace.
func TestEveryVariableIsRefusedWhenBad(t *testing.T) {
	t.Parallel()
	for name, value := range badValues {
		if value == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// A value wrongly accepted starts the service: the deadline
			// turns that into a failure instead of a hung test.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := mainCmd(ctx, "serve")
			cmd.Env = append(cmd.Env, "HTTP_ADDR=127.0.0.1:0", "LOG_LEVEL=info", name+"="+value)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "must fail; stderr:\n%s", stderr.String())
			require.Equal(t, 1, exit.ExitCode())
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			require.Len(t, lines, 1, "one line of error, got:\n%s", stderr.String())
			require.Contains(t, lines[0], name+":")
			require.Less(t, len(lines[0]), 300, "the cause, not the wiring chain: %s", lines[0])
			require.Empty(t, stdout.String())
		})
	}
}

// mainCmd runs this test binary as the service's main (TestHelperMain)
// with args; callers add to its environment.
func mainCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^TestHelperMain$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "EOT_TEST_RUN_MAIN=1")
	return cmd
}

// TestHelperMain is main for the tests that run the binary (mainCmd).
func TestHelperMain(t *testing.T) {
	if os.Getenv("EOT_TEST_RUN_MAIN") != "1" {
		t.Skip("runs only as a child of another test")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(args, config.FromOS(), os.Stdout, os.Stderr))
}

// TestBadValuesCoverEveryVariable keeps badValues and the README's table
// complete: a new variable in any config struct fails here until both have it.
func TestBadValuesCoverEveryVariable(t *testing.T) {
	t.Parallel()
	tag := regexp.MustCompile("`env:\"([A-Z0-9_]+)")
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	found := 0
	for _, root := range []string{"platform", "modules"} {
		require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range tag.FindAllSubmatch(src, -1) {
				name := string(m[1])
				found++
				_, ok := badValues[name]
				require.True(t, ok, "%s (%s) has no bad value in badValues", name, path)
				require.Contains(t, string(readme), "`"+name+"`", "%s (%s) is not in README's configuration table", name, path)
			}
			return nil
		}))
	}
	require.GreaterOrEqual(t, found, len(badValues), "every listed variable must still exist")
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
	require.Contains(t, errOut.String(), "usage:")
}

// serveChild starts `serve` as a child process (this test binary run as
// main) on a fresh database and returns it with its stderr so far.
func serveChild(t *testing.T, overrides map[string]string) (*exec.Cmd, *pgtest.SafeBuffer) {
	t.Helper()
	cmd := mainCmd(context.Background(), "serve")
	cmd.Env = append(cmd.Env, "LOG_LEVEL=info")
	for k, v := range pgtest.Env(t, overrides) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr := &pgtest.SafeBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd, stderr
}

func waitFor(t *testing.T, buf *pgtest.SafeBuffer, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(buf.String(), what) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within a minute; stderr:\n%s", what, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeExitsZeroOnSIGTERM(t *testing.T) {
	t.Parallel()
	cmd, stderr := serveChild(t, nil)
	waitFor(t, stderr, "level=INFO msg=started service=eats-orders-tracking took=")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "exit status after SIGTERM; stderr:\n%s", stderr.String())
	require.Contains(t, stderr.String(), "River client stopped")
}

// A SIGTERM while the service is still starting (here: before the database
// answers) ends the start instead of being ignored until it completes.
func TestServeStopsOnSIGTERMDuringStart(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never answers: the start hangs on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cmd, stderr := serveChild(t, map[string]string{
		"DATABASE_URL": "postgres://root@" + ln.Addr().String() + "/eot_hangs?sslmode=disable&connect_timeout=30",
	})
	// Logged while the graph is built, after the signal handler is in
	// place; the start then hangs on the database.
	waitFor(t, stderr, "msg=starting")
	began := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "stderr:\n%s", stderr.String())
	require.Equal(t, 1, exit.ExitCode())
	require.Less(t, time.Since(began), 5*time.Second, "the start must end on the signal, not run on")
	require.Contains(t, stderr.String(), "start interrupted by a signal")
}

func TestOpenAPIFileIsUpToDate(t *testing.T) {
	t.Parallel()
	spec, err := openAPI(config.Environment{})
	require.NoError(t, err)
	committed, err := os.ReadFile(filepath.Join(pgtest.RepoRoot(), "openapi", "openapi.yaml"))
	require.NoError(t, err)
	require.Equal(t, string(committed), string(spec), "openapi/openapi.yaml is stale: run `go tool task openapi`")
}

func TestDemoRefusesABadSpeed(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	code := run([]string{"demo"}, config.Environment{"DEMO_SPEED": "fast"}, &out, &errOut)
	require.Equal(t, 1, code)
	require.Contains(t, errOut.String(), "DEMO_SPEED")
}

// A real SIGTERM to the binary with open streams: each stream gets a
// final retry: and ends at once (the drain must not wait for them until
// SHUTDOWN_TIMEOUT), and the process exits 0 well within that timeout.
func TestSIGTERMEndsOpenStreams(t *testing.T) {
	t.Parallel()
	cmd, stderr := serveChild(t, map[string]string{"SHUTDOWN_TIMEOUT": "30s"})
	waitFor(t, stderr, "level=INFO msg=started service=eats-orders-tracking took=")
	addr := regexp.MustCompile(`msg="http listening" .*addr=(\S+)`).FindStringSubmatch(stderr.String())
	require.Len(t, addr, 2, "no listening address in stderr:\n%s", stderr.String())

	type streamEnd struct {
		sawFrame, retryLast bool
		err                 error
	}
	ends := make(chan streamEnd, 3)
	frames := make(chan struct{}, 3)
	for i := range 3 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
			"http://"+addr[1]+"/eats/v1/eats-orders-tracking/v1/tracking/stream", nil)
		require.NoError(t, err)
		req.Header.Set("X-Eats-User", fmt.Sprintf("user_id=sigterm-%d", i))
		resp, err := http.DefaultClient.Do(req) //nolint:bodyclose // closed by the reading goroutine
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		go func() {
			defer resp.Body.Close()
			var end streamEnd
			var last string
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, "event: tracking") && !end.sawFrame {
					end.sawFrame = true
					frames <- struct{}{}
				}
				if line != "" {
					last = line
				}
			}
			end.err = sc.Err()
			end.retryLast = strings.HasPrefix(last, "retry: ")
			ends <- end
		}()
	}
	for range 3 {
		select {
		case <-frames:
		case <-time.After(10 * time.Second):
			t.Fatalf("no first frame within 10 s; stderr:\n%s", stderr.String())
		}
	}

	began := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	for range 3 {
		select {
		case end := <-ends:
			require.NoError(t, end.err, "the stream ends cleanly, not by a reset")
			require.True(t, end.retryLast, "the last line of an ended stream is retry:")
		case <-time.After(5 * time.Second):
			t.Fatalf("a stream still open 5 s after SIGTERM; stderr:\n%s", stderr.String())
		}
	}
	require.NoError(t, cmd.Wait(), "exit status after SIGTERM; stderr:\n%s", stderr.String())
	require.Less(t, time.Since(began), 15*time.Second, "the drain waited for the streams (SHUTDOWN_TIMEOUT is 30 s)")
}
