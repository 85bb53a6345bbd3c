//go:build system

package systest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// token is the internal API token of every process the suite starts.
const token = "systest-internal-token"

// proc is one service process: the real binary, its environment, its log
// file (kept across restarts) and whether it ever exited unasked.
type proc struct {
	t       testing.TB
	name    string
	env     map[string]string
	URL     string
	logPath string

	mu         sync.Mutex
	cmd        *exec.Cmd
	done       chan struct{}
	stopping   bool
	unexpected []string // how the process died when nobody asked it to
	starts     int
}

// freePort asks the kernel for a free loopback port. The process binds it a
// moment later; a restart binds the same port again.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newProc prepares a process; env is complete but for HTTP_ADDR, which it
// picks.
func newProc(t testing.TB, dir, name string, env map[string]string) *proc {
	t.Helper()
	port := freePort(t)
	e := make(map[string]string, len(env)+1)
	for k, v := range env {
		e[k] = v
	}
	e["HTTP_ADDR"] = fmt.Sprintf("127.0.0.1:%d", port)
	p := &proc{
		t:       t,
		name:    name,
		env:     e,
		URL:     fmt.Sprintf("http://127.0.0.1:%d", port),
		logPath: filepath.Join(dir, name+".log"),
	}
	_ = os.Remove(p.logPath) // a rerun with the same SYSTEST_LOG_DIR starts afresh
	t.Cleanup(p.stop)
	return p
}

// start runs the binary and waits until /readyz answers 200.
func (p *proc) start() {
	p.t.Helper()
	p.spawn()
	p.waitReady(90 * time.Second)
}

// spawn runs the binary without waiting for it to be ready.
func (p *proc) spawn() {
	p.t.Helper()
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(p.t, err)
	cmd := exec.Command(binPath, "serve")
	cmd.Env = os.Environ()
	for k, v := range p.env {
		cmd.Env = append(cmd.Env, k+"="+v) // later entries win
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, and killed with the test binary should that
	// die without running its cleanups (a timeout, a ^C).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(p.t, cmd.Start())
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.stopping = cmd, done, false
	p.starts++
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		_ = logFile.Close()
		p.mu.Lock()
		if !p.stopping {
			p.unexpected = append(p.unexpected, fmt.Sprintf("%s exited on its own: %v", p.name, err))
		}
		p.mu.Unlock()
		close(done)
	}()
}

// waitReady polls /readyz until 200, failing early if the process exits.
func (p *proc) waitReady(within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	for {
		if !p.alive() {
			p.t.Fatalf("%s exited before it was ready; log %s:\n%s", p.name, p.logPath, p.tail(40))
		}
		resp, err := client.Get(p.URL + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready within %s; log %s:\n%s", p.name, within, p.logPath, p.tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) alive() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL, as an OOM killer or a node failure would, and waits
// for the process to be gone.
func (p *proc) kill() {
	p.t.Helper()
	p.signal(syscall.SIGKILL, 10*time.Second)
}

// stop asks the process to shut down gracefully (SIGTERM), then kills it
// after 40 s. It is idempotent and registered as a cleanup.
func (p *proc) stop() {
	if !p.alive() {
		return
	}
	if !p.signal(syscall.SIGTERM, 40*time.Second) {
		p.t.Errorf("%s did not stop within 40 s of SIGTERM; killed", p.name)
		p.signal(syscall.SIGKILL, 10*time.Second)
	}
}

func (p *proc) signal(sig syscall.Signal, wait time.Duration) bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.stopping = true
	p.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// died lists the exits nobody asked for.
func (p *proc) died() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.unexpected...)
}

// requireAlive fails the test when the process died on its own at any time.
func (p *proc) requireAlive(t testing.TB) {
	t.Helper()
	require.Empty(t, p.died(), "log %s:\n%s", p.logPath, p.tail(40))
	require.True(t, p.alive(), "%s is not running; log %s:\n%s", p.name, p.logPath, p.tail(40))
}

// tail returns the last n lines of the log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// get is a GET with optional headers; it returns the status and body.
func (p *proc) get(ctx context.Context, path string, headers map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// internal is the header that carries the token.
func internal() map[string]string { return map[string]string{"Authorization": "Bearer " + token} }

// phoneNoise is what a log line loses before it is searched for a phone,
// so "+7 999 123-45-67" is found as well as "+79991234567".
var phoneNoise = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "", `\u0020`, "")

// asciiDigits writes fullwidth digits ("８９９９") as ASCII, so a phone
// typed on such a keyboard is found too.
func asciiDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '０' && r <= '９' {
			return '0' + (r - '０')
		}
		return r
	}, s)
}

// scanLogsForPhones fails the test for every log line of logPath that holds
// one of the phones in full; digits maps each phone's digits (no "+", no
// extension) to the phone as the test sent it. It returns the lines read.
func scanLogsForPhones(t testing.TB, logPath string, digits map[string]string) int {
	t.Helper()
	f, err := os.Open(logPath)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	defer f.Close()
	leaks, lines, err := findPhones(f, digits)
	require.NoError(t, err)
	for i, l := range leaks {
		if i == 5 {
			t.Errorf("%s: %d more lines with full phones", logPath, len(leaks)-5)
			break
		}
		t.Errorf("%s line %d holds the full phone %q: %.300s", logPath, l.line, l.phone, l.text)
	}
	return lines
}

type leak struct {
	line        int
	phone, text string
}

// findPhones reads log lines and returns those holding a phone in full,
// whatever the spaces, dashes, parentheses or fullwidth digits around it.
func findPhones(r io.Reader, digits map[string]string) ([]leak, int, error) {
	lengths := map[int]bool{}
	for d := range digits {
		lengths[len(d)] = true
	}
	runs := regexp.MustCompile(`[0-9]{5,}`)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var leaks []leak
	lines := 0
	for sc.Scan() {
		lines++
		line := asciiDigits(phoneNoise.Replace(sc.Text()))
	runs:
		for _, run := range runs.FindAllString(line, -1) {
			for n := range lengths {
				for i := 0; i+n <= len(run); i++ {
					if phone, ok := digits[run[i:i+n]]; ok {
						leaks = append(leaks, leak{line: lines, phone: phone, text: sc.Text()})
						break runs
					}
				}
			}
		}
	}
	return leaks, lines, sc.Err()
}
