//go:build system

package systest

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// The shared services the fault tests restart. Each helper leaves the
// service running when the test ends, whatever happened (t.Cleanup).

// pgCluster is the pg_ctlcluster version and name of the server the tests
// use: SYSTEST_PG_CLUSTER ("15/main"), else the only version installed and
// "main".
func pgCluster(t testing.TB) (version, name string) {
	t.Helper()
	if c := os.Getenv("SYSTEST_PG_CLUSTER"); c != "" {
		v, n, ok := strings.Cut(c, "/")
		require.True(t, ok, "SYSTEST_PG_CLUSTER must be <version>/<name>, got %q", c)
		return v, n
	}
	entries, err := os.ReadDir("/etc/postgresql")
	require.NoError(t, err, "pg_ctlcluster's clusters live under /etc/postgresql")
	require.Len(t, entries, 1, "several PostgreSQL versions installed: set SYSTEST_PG_CLUSTER=<version>/<name>")
	return entries[0].Name(), "main"
}

func pgCtl(t testing.TB, action string) error {
	t.Helper()
	v, n := pgCluster(t)
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", v, n, action).CombinedOutput()
	if err != nil {
		t.Logf("pg_ctlcluster %s %s %s: %v\n%s", v, n, action, err, out)
	}
	return err
}

// postgresUp reports whether the server accepts connections.
func postgresUp() bool {
	u, err := url.Parse(pgtest.ServerURL())
	if err != nil {
		return false
	}
	c, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return exec.Command("pg_isready", "-q", "-h", u.Hostname(), "-p", u.Port()).Run() == nil
}

// restartPostgres restarts the server (every connection of every process
// is cut) and returns how long the restart took.
func restartPostgres(t *testing.T) time.Duration {
	t.Helper()
	t.Cleanup(func() { ensurePostgres(t) })
	start := time.Now()
	require.NoError(t, pgCtl(t, "restart"))
	waitFor(t, time.Minute, postgresUp, "PostgreSQL accepting connections after the restart")
	return time.Since(start)
}

func ensurePostgres(t *testing.T) {
	if postgresUp() {
		return
	}
	t.Log("PostgreSQL is down at the end of the test: starting it")
	_ = pgCtl(t, "start")
	deadline := time.Now().Add(time.Minute)
	for !postgresUp() && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if !postgresUp() {
		t.Error("PostgreSQL did not come back")
	}
}

func redisPort(t testing.TB) string {
	u, err := url.Parse(pgtest.RedisURL())
	require.NoError(t, err)
	return u.Port()
}

func redisUp() bool {
	opts, err := redis.ParseURL(pgtest.RedisURL())
	if err != nil {
		return false
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Ping(ctx).Err() == nil
}

// stopRedis shuts Redis down (its data is gone: the tests' Redis keeps
// nothing on disk); the test's end starts it again if the test did not.
func stopRedis(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { ensureRedis(t) })
	out, err := exec.Command("redis-cli", "-p", redisPort(t), "shutdown", "nosave").CombinedOutput()
	// redis-cli reports the dropped connection of a successful shutdown.
	if err != nil && redisUp() {
		t.Fatalf("redis-cli shutdown: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, func() bool { return !redisUp() }, "Redis down")
}

// startRedis starts Redis as the environment runs it: no persistence.
func startRedis(t *testing.T) {
	t.Helper()
	out, err := exec.Command("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1",
		"--port", redisPort(t), "--save", "", "--appendonly", "no").CombinedOutput()
	require.NoError(t, err, "redis-server: %s", out)
	waitFor(t, 30*time.Second, redisUp, "Redis answering")
}

func ensureRedis(t *testing.T) {
	if redisUp() {
		return
	}
	t.Log("Redis is down at the end of the test: starting it")
	out, err := exec.Command("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1",
		"--port", redisPort(t), "--save", "", "--appendonly", "no").CombinedOutput()
	if err != nil {
		t.Errorf("redis-server: %v\n%s", err, out)
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for !redisUp() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !redisUp() {
		t.Error("Redis did not come back")
	}
}

// waitFor is the kit's Eventually (polls every 10 ms until cond holds,
// failing the test after within).
func waitFor(t testing.TB, within time.Duration, cond func() bool, what string) {
	t.Helper()
	pgtest.Eventually(t, within, cond, "%s", what)
}
