// Package webtest lets Go tests drive the widget's Node toolchain: it
// installs web/node_modules with `npm ci` when they are missing or older
// than package-lock.json (once, under a file lock shared by every test
// binary), finds Debian's Chromium (installing it with apt-get when the
// user is root), and runs node scripts with a deadline.
package webtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// Chromium is where Debian's chromium package puts the browser.
const Chromium = "/usr/bin/chromium"

// Dir is the web/ directory of the repository.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

// NodeModules makes sure web/node_modules matches package-lock.json and
// returns web/. It fails the test when node or npm is missing.
func NodeModules(tb testing.TB) string {
	tb.Helper()
	dir := Dir()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Fatalf("%s is not installed: the widget's checks need Node.js 20.19+ and npm (apt-get install -y nodejs npm)", tool)
		}
	}
	unlock := lock(tb, filepath.Join(os.TempDir(), "eot-web-npm.lock"))
	defer unlock()
	if fresh(dir) {
		return dir
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return dir
}

// fresh reports whether node_modules was installed from the current lock.
func fresh(dir string) bool {
	lockInfo, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false
	}
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	return err == nil && !installed.ModTime().Before(lockInfo.ModTime())
}

// ChromiumPath returns the browser's path. When it is missing, root
// installs Debian's package; anyone else gets the command to run.
func ChromiumPath(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	unlock := lock(tb, filepath.Join(os.TempDir(), "eot-web-apt.lock"))
	defer unlock()
	if _, err := os.Stat(Chromium); err == nil {
		return Chromium
	}
	if os.Geteuid() != 0 {
		tb.Fatalf("%s is missing; install Debian's browser with: sudo apt-get update && sudo apt-get install -y chromium", Chromium)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-q", "chromium")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err != nil {
		// A fresh machine may not have the package lists yet.
		if out, err := exec.CommandContext(ctx, "apt-get", "update", "-q").CombinedOutput(); err != nil {
			tb.Fatalf("apt-get update: %v\n%s", err, out)
		}
		if out, err := install(); err != nil {
			tb.Fatalf("apt-get install -y chromium: %v\n%s", err, out)
		}
	}
	if _, err := os.Stat(Chromium); err != nil {
		tb.Fatalf("apt-get installed chromium but %s is missing: %v", Chromium, err)
	}
	return Chromium
}

// Result is what a command did.
type Result struct {
	Output string
	Err    error
}

// Run runs name with args in dir within timeout and returns its combined
// output and error (an *exec.ExitError for a non-zero exit).
func Run(dir string, timeout time.Duration, name string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish within %s: %w", name, timeout, errors.Join(err, ctx.Err()))
	}
	return Result{Output: out.String(), Err: err}
}

// Node runs a script with the machine's node in dir.
func Node(dir string, timeout time.Duration, script string, args ...string) Result {
	return Run(dir, timeout, "node", append([]string{script}, args...)...)
}

// Tsc runs the pinned TypeScript compiler of web/node_modules on the
// project in dir (its tsconfig.json) with --noEmit.
func Tsc(dir string) Result {
	return Node(dir, 2*time.Minute, filepath.Join(Dir(), "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", dir)
}

// lock takes an exclusive flock on path until the returned func is called,
// so test binaries running in parallel do not install at the same time.
func lock(tb testing.TB, path string) func() {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		tb.Fatalf("open lock %s: %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		tb.Fatalf("lock %s: %v", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// CopyWeb copies the widget's sources, scripts, build and the spec into a
// temporary tree (tmp/web, tmp/openapi) with node_modules linked, so a
// test can break a copy and watch a check fail. It returns tmp/web.
func CopyWeb(tb testing.TB) string {
	tb.Helper()
	src := NodeModules(tb)
	root := tb.TempDir()
	dst := filepath.Join(root, "web")
	for _, name := range []string{"package.json", "tsconfig.json", "vite.config.js", "index.html", "src", "scripts", "dist"} {
		copyTree(tb, filepath.Join(src, name), filepath.Join(dst, name))
	}
	copyTree(tb, filepath.Join(src, "..", "openapi", "openapi.yaml"), filepath.Join(root, "openapi", "openapi.yaml"))
	if err := os.Symlink(filepath.Join(src, "node_modules"), filepath.Join(dst, "node_modules")); err != nil {
		tb.Fatalf("link node_modules: %v", err)
	}
	return dst
}

func copyTree(tb testing.TB, from, to string) {
	tb.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		tb.Fatalf("copy %s: %v", from, err)
	}
}
