//go:build system

package systest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// binPath is the service binary built once for the whole suite.
var binPath string

// logRoot holds one directory per test with each process' log.
var logRoot string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "eot-systest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "systest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "eats-orders-tracking")
	start := time.Now()
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "systest: go build: %v\n%s", err, out)
		return 1
	}
	logRoot = os.Getenv("SYSTEST_LOG_DIR")
	if logRoot == "" {
		logRoot = filepath.Join(os.TempDir(), "eot-systest-"+time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(logRoot, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "systest:", err)
		return 1
	}
	fmt.Printf("systest: built the binary in %s; process logs under %s\n", time.Since(start).Round(time.Millisecond), logRoot)
	return m.Run()
}

// repoRoot is the repository's root directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..") // modules/systest
}
