//go:build system

package systest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics is a scrape of /metrics.
type metrics []sample

// scrape reads the process' /metrics.
func (p *proc) scrape(ctx context.Context) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	code, body, err := p.get(ctx, "/metrics", nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %d", code)
	}
	return parseMetrics(body)
}

// parseMetrics reads the text exposition format: `name{k="v",...} value`.
func parseMetrics(b []byte) (metrics, error) {
	var out metrics
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.name = line[:i]
			var err error
			if rest, err = parseLabels(line[i+1:], s.labels); err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
		} else if i >= 0 {
			s.name, rest = line[:i], line[i:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("%q: no value", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseLabels reads `k="v",k2="v2"}` and returns what follows the brace.
func parseLabels(s string, into map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, ", ")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.Index(s, "=\"")
		if eq < 0 {
			return "", fmt.Errorf("bad labels")
		}
		key := s[:eq]
		s = s[eq+2:]
		var val strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			val.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", fmt.Errorf("unterminated label value")
		}
		into[key] = val.String()
		s = s[i+1:]
	}
}

// sum adds the samples named name whose labels include match.
func (m metrics) sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range m {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// has reports whether a sample named name exists.
func (m metrics) has(name string) bool {
	for _, s := range m {
		if s.name == name {
			return true
		}
	}
	return false
}

// by5xx is how many requests each route answered with a 5xx, by route
// and code.
func (m metrics) by5xx() map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if s.name == "eot_http_request_duration_seconds_count" && strings.HasPrefix(s.labels["code"], "5") && s.value > 0 {
			out[s.labels["route"]+" "+s.labels["code"]] += s.value
		}
	}
	return out
}

// count5xx is how many requests any route answered with a 5xx.
func (m metrics) count5xx() float64 {
	total := 0.0
	for _, s := range m {
		if s.name == "eot_http_request_duration_seconds_count" && strings.HasPrefix(s.labels["code"], "5") {
			total += s.value
		}
	}
	return total
}
