// Package otlpsink is an OTLP/HTTP (protobuf) trace receiver on loopback,
// for benchmarks and tests only: it decodes each export enough to count its
// spans, counts requests, spans and bytes, and drops everything. It stands
// in for a collector so that measuring tracing's cost includes the export
// (encoding, the HTTP round trip) without a collector's own CPU competing
// for the machine. Not for production: no auth, no limits beyond one
// request's size, nothing kept.
package otlpsink

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Path is where OTLP/HTTP exporters send traces.
const Path = "/v1/traces"

// maxBody bounds one decoded export; the SDK's batches (512 spans by
// default) are far below it.
const maxBody = 64 << 20

// Stats are the sink's counters since it started.
type Stats struct {
	Requests int64 // exports answered 200
	Spans    int64 // spans in them
	Bytes    int64 // request bodies as received (compressed when gzip)
}

// Sub is s minus an earlier snapshot: what arrived in between.
func (s Stats) Sub(earlier Stats) Stats {
	return Stats{Requests: s.Requests - earlier.Requests, Spans: s.Spans - earlier.Spans, Bytes: s.Bytes - earlier.Bytes}
}

// Sink is a running receiver.
type Sink struct {
	srv      *http.Server
	addr     string
	requests atomic.Int64
	spans    atomic.Int64
	bytes    atomic.Int64
	served   chan struct{}
}

// Start listens on 127.0.0.1 at a free port and serves until Close.
func Start() (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("otlpsink: listen on loopback: %w", err)
	}
	s := &Sink{addr: ln.Addr().String(), served: make(chan struct{})}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln) // ErrServerClosed after Close
	}()
	return s, nil
}

// URL is the traces endpoint, as OTEL_EXPORTER_OTLP_TRACES_ENDPOINT takes it.
func (s *Sink) URL() string { return "http://" + s.addr + Path }

// BaseURL is the collector's base, as OTEL_EXPORTER_OTLP_ENDPOINT takes it.
func (s *Sink) BaseURL() string { return "http://" + s.addr }

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Spans: s.spans.Load(), Bytes: s.bytes.Load()}
}

// Close stops the server, letting an export in flight finish for up to 5 s.
func (s *Sink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.served
	return err
}

// ServeHTTP answers an export as a collector does: 200 with an empty
// ExportTraceServiceResponse, or 4xx naming what was wrong.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		http.Error(w, "otlpsink: only "+Path, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "otlpsink: POST only", http.StatusMethodNotAllowed)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-protobuf" {
		http.Error(w, fmt.Sprintf("otlpsink: Content-Type %q: only application/x-protobuf", ct), http.StatusUnsupportedMediaType)
		return
	}
	counted := &countingReader{r: r.Body}
	var body io.Reader = counted
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(counted)
		if err != nil {
			http.Error(w, "otlpsink: gzip body: "+err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	default:
		http.Error(w, fmt.Sprintf("otlpsink: Content-Encoding %q: only gzip", enc), http.StatusUnsupportedMediaType)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		http.Error(w, "otlpsink: read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(raw) > maxBody {
		http.Error(w, "otlpsink: body over 64 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	n, err := countSpans(raw)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	if err != nil {
		http.Error(w, "otlpsink: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.requests.Add(1)
	s.spans.Add(int64(n))
	s.bytes.Add(counted.n)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

// countSpans decodes an ExportTraceServiceRequest and counts its spans.
func countSpans(raw []byte) (int, error) {
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		return 0, fmt.Errorf("otlpsink: body is not an ExportTraceServiceRequest: %w", err)
	}
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	if n == 0 && len(req.GetResourceSpans()) == 0 && len(raw) > 0 {
		// Unknown fields only: protobuf decodes them without error.
		return 0, errors.New("otlpsink: body holds no resource spans")
	}
	return n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
