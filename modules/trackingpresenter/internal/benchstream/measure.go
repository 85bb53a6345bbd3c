package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux build this runs on (Go cannot ask sysconf without cgo).
const clockTicks = 100

// cpuSample is CPU time per wall second (1.0 = one core busy) over a
// window, of the service and of this process (the load generator shares
// the machine's cores with it).
type cpuSample struct {
	service, generator float64
}

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	n, err := statTicks(string(b))
	if err != nil {
		return 0, fmt.Errorf("/proc/%s/stat: %w", pid, err)
	}
	return n, nil
}

// statTicks is utime+stime of a /proc/<pid>/stat line.
func statTicks(s string) (int64, error) {
	// The command name (field 2) may hold spaces and ')': count from
	// after its last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("no ')' in %q", s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the name, want at least 13", len(f))
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("utime/stime: %w", err)
	}
	return u + k, nil
}

// cpuOver measures CPU over d while work (if any) runs with a context
// that ends after d; work's error is returned.
func cpuOver(pid int, d time.Duration, work func(context.Context) error) (cpuSample, error) {
	p := strconv.Itoa(pid)
	s0, err := cpuTicks(p)
	if err != nil {
		return cpuSample{}, err
	}
	g0, err := cpuTicks("self")
	if err != nil {
		return cpuSample{}, err
	}
	start := time.Now()
	var workErr error
	if work != nil {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		workErr = work(ctx)
		cancel()
	}
	time.Sleep(time.Until(start.Add(d)))
	s1, err := cpuTicks(p)
	if err != nil {
		return cpuSample{}, err
	}
	g1, err := cpuTicks("self")
	if err != nil {
		return cpuSample{}, err
	}
	secs := time.Since(start).Seconds()
	return cpuSample{
		service:   float64(s1-s0) / clockTicks / secs,
		generator: float64(g1-g0) / clockTicks / secs,
	}, workErr
}

// memSample is the service's memory: its heap after a forced GC and its
// resident set.
type memSample struct {
	heapAlloc, heapInuse, rss float64 // bytes
}

func (m memSample) String() string {
	return fmt.Sprintf("heap after GC %.1f MiB (in use %.1f MiB), RSS %.1f MiB", m.heapAlloc/(1<<20), m.heapInuse/(1<<20), m.rss/(1<<20))
}

// memory forces two GCs in the service through pprof
// (/debug/pprof/heap?gc=1; debug=1 appends runtime.MemStats read after
// the GC) and keeps the second reading, then reads VmRSS.
func memory(base, token string, pid int) (memSample, error) {
	var m memSample
	for range 2 {
		req, _ := http.NewRequest(http.MethodGet, base+"/debug/pprof/heap?gc=1&debug=1", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return m, fmt.Errorf("pprof heap: %w", err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		m.heapAlloc, m.heapInuse = 0, 0
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
				m.heapAlloc, _ = strconv.ParseFloat(v, 64)
			}
			if v, ok := strings.CutPrefix(line, "# HeapInuse = "); ok {
				m.heapInuse, _ = strconv.ParseFloat(v, 64)
			}
		}
		resp.Body.Close()
		if err := sc.Err(); err != nil {
			return m, fmt.Errorf("pprof heap: reading: %w", err)
		}
		if resp.StatusCode != http.StatusOK || m.heapAlloc == 0 {
			return m, fmt.Errorf("pprof heap: %s, no HeapAlloc in the answer", resp.Status)
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return m, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			m.rss = kb * 1024
		}
	}
	if m.rss == 0 {
		return m, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return m, nil
}

// The helpers below are small copies of benchtracking's (that command is
// a main package; a shared package would move code another branch edits).

// loadAvg is the 1-, 5- and 15-minute load averages, as uptime prints
// them: the machine is shared, so the report says how busy it was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], ", ")
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUp(u string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not up within a minute", u)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// recreate drops and creates the benchmark database.
func recreate(ctx context.Context, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return err
	}
	name := strings.Trim(u.Path, "/")
	u.Path = "/postgres"
	admin, err := sql.Open("postgres", u.String())
	if err != nil {
		return err
	}
	defer admin.Close()
	step("re-create database " + name)
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	if _, err = admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// saveHeapProfile writes the service's heap profile, taken after a GC.
func saveHeapProfile(base, token, path string) error {
	req, _ := http.NewRequest(http.MethodGet, base+"/debug/pprof/heap?gc=1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof heap: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof heap: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	return f.Close()
}
