// Package httpapi is the HTTP edge: a net/http server, the huma API that
// produces the OpenAPI document, request metrics, and the internal-token
// guard. Modules add huma operations (AsOperations) and plain handlers
// (AsHandler) through fx value groups.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/metrics"
	"github.com/eats/eats-orders-tracking/platform/shutdown"
	"github.com/eats/eats-orders-tracking/platform/tracing"
)

// Title and Version name the API in the OpenAPI document.
const (
	Title   = "eats-orders-tracking"
	Version = "1.0.0"
)

// TagInternal marks operations for operators and producers, not the app;
// the app's client is generated from the untagged operations.
const TagInternal = "internal"

// Operations registers huma operations on the API.
type Operations func(api huma.API)

// Handler is a plain http.Handler mounted on the mux (dashboards, metrics).
type Handler struct {
	// Pattern is a net/http ServeMux pattern, e.g. "GET /metrics".
	Pattern string
	Handler http.Handler
	// Internal puts the handler behind the internal token.
	Internal bool
}

// AsOperations provides a constructor of Operations into the group.
func AsOperations(f any) fx.Option {
	return fx.Provide(fx.Annotate(f, fx.ResultTags(`group:"http_operations"`)))
}

// AsHandler provides a constructor of Handler into the group.
func AsHandler(f any) fx.Option {
	return fx.Provide(fx.Annotate(f, fx.ResultTags(`group:"http_handlers"`)))
}

// TagOps marks the orchestrator's probes, which the app's client leaves out.
const TagOps = "ops"

// guardErrors are what the internal guard answers (see check): 401 without
// the token, 403 for a cross-site browser request on Basic credentials, 404
// while INTERNAL_API_TOKEN is unset.
var guardErrors = []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound}

// Internal marks an operation as internal: tagged, documented as needing
// the token (with the guard's answers), and guarded by the API's middleware.
func Internal(op huma.Operation) huma.Operation {
	op.Tags = append(op.Tags, TagInternal)
	op.Security = []map[string][]string{{"bearer": {}}, {"basic": {}}}
	for _, code := range guardErrors {
		if !slices.Contains(op.Errors, code) {
			op.Errors = append(op.Errors, code)
		}
	}
	return op
}

// NewConfig is the huma config shared by the server and the spec printer.
func NewConfig() huma.Config {
	cfg := huma.DefaultConfig(Title, Version)
	// No "$schema" links in bodies: the response shape is a contract.
	cfg.CreateHooks = nil
	cfg.OpenAPIPath = "/openapi"
	cfg.Info.Description = "Tells a delivery-app customer where each order stands."
	// Internal to the company: no public license applies.
	cfg.Info.License = &huma.License{Name: "Proprietary"}
	// One server, relative: the app's routes are reached through the API
	// gateway (which sets the identity headers), the internal routes and
	// the probes on the replica's own HTTP_ADDR; the paths are the same.
	cfg.Servers = []*huma.Server{{
		URL:         "/",
		Description: "this service: the app's routes through the API gateway, the others on the replica's HTTP_ADDR",
	}}
	cfg.Tags = []*huma.Tag{
		{Name: TagInternal, Description: "For operators and producers, behind INTERNAL_API_TOKEN (bearer, or Basic with the token as the password); 404 while the token is unset. Not in the app's client."},
		{Name: TagOps, Description: "The orchestrator's liveness and readiness probes. Not in the app's client."},
	}
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "INTERNAL_API_TOKEN"},
		"basic":  {Type: "http", Scheme: "basic", Description: "any user, INTERNAL_API_TOKEN as the password"},
	}
	// An operation that Internal did not mark is public at this service
	// (the app's routes are authenticated by the API gateway, the probes by
	// the network): say so with an empty security list rather than leave
	// it undeclared.
	cfg.OnAddOperation = append(cfg.OnAddOperation, func(_ *huma.OpenAPI, op *huma.Operation) {
		if op.Security == nil {
			op.Security = []map[string][]string{}
		}
	})
	return cfg
}

// APIParams are the API's inputs.
type APIParams struct {
	fx.In

	Mux        *http.ServeMux
	Config     config.Platform
	Registry   prometheus.Registerer
	Operations []Operations `group:"http_operations"`
	Handlers   []Handler    `group:"http_handlers"`
}

// NewAPI builds the huma API on the mux and registers every operation and
// handler the modules provided.
func NewAPI(p APIParams) (huma.API, error) {
	m, err := newHTTPMetrics(p.Registry)
	if err != nil {
		return nil, err
	}
	api := humago.New(&instrumentedMux{mux: p.Mux, metrics: m}, NewConfig())
	token := string(p.Config.InternalAPIToken)
	api.UseMiddleware(internalGuard(api, token))
	for _, register := range p.Operations {
		register(api)
	}
	for _, h := range p.Handlers {
		handler := h.Handler
		if h.Internal {
			handler = RequireToken(token, handler)
		}
		p.Mux.Handle(h.Pattern, m.wrap(h.Pattern, handler))
	}
	return api, nil
}

// Server is the running HTTP server.
type Server struct {
	srv  *http.Server
	addr net.Addr
}

// Addr is the bound address (useful with HTTP_ADDR=:0).
func (s *Server) Addr() string { return s.addr.String() }

// ServerParams are the server's inputs.
type ServerParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    config.Platform
	Mux       *http.ServeMux
	// API is asked for so every huma route is registered before serving.
	API    huma.API
	Logger *slog.Logger
	// Budget is the drain deadline shared with River.
	Budget *shutdown.Budget
	// Shutdowner stops the app when the listener fails after start.
	Shutdowner fx.Shutdowner
	// TracerProvider, when it records (tracing on), wraps the mux in otelhttp.
	TracerProvider trace.TracerProvider `optional:"true"`
}

// NewServer builds the server; it listens on start and drains on stop.
func NewServer(p ServerParams) *Server {
	lc, cfg, mux, logger := p.Lifecycle, p.Config, p.Mux, p.Logger
	var handler http.Handler = mux
	if !tracing.Off(p.TracerProvider) {
		handler = Traced(mux, p.TracerProvider)
	}
	s := &Server{srv: &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", cfg.HTTPAddr)
			if err != nil {
				return fmt.Errorf("http: listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
			}
			s.addr = ln.Addr()
			logger.Info("http listening", "addr", s.Addr())
			go func() {
				if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					// A replica that cannot serve must not linger looking alive.
					logger.Error("http server stopped; shutting down", "err", err)
					_ = p.Shutdowner.Shutdown(fx.ExitCode(1))
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			// Stop taking requests and let in-flight ones finish, within the
			// drain budget River then shares.
			ctx, cancel := p.Budget.Context(ctx)
			defer cancel()
			return s.srv.Shutdown(ctx)
		},
	})
	return s
}

// Module provides the mux, the huma API and the server, and starts it.
var Module = fx.Module("httpapi",
	fx.Provide(http.NewServeMux, NewAPI, NewServer),
	fx.Invoke(func(*Server) {}),
	AsHandler(func(g prometheus.Gatherer) Handler {
		return Handler{Pattern: "GET /metrics", Handler: metrics.Handler(g)}
	}),
	AsHandler(PprofHandler),
)

// droppedAttributes are what otelhttp starts a server span with and the
// service does not keep. client.address and network.peer.address are the
// customer's IP (X-Forwarded-For behind the gateway, the peer without one):
// personal data, and no help to whoever reads a trace of this service;
// network.peer.port is an ephemeral port. url.path is the raw path, which
// routePath sets to the route once the mux matched (so the raw one never
// enters the span, even when the handler panics).
var droppedAttributes = []attribute.Key{"client.address", "network.peer.address", "network.peer.port", "url.path"}

// untraced are the probes and the scrape: a span per orchestrator or
// Prometheus poll is noise, and their latency is in the histogram.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Traced wraps the mux in otelhttp: a server span per request, continuing
// the caller's W3C trace context, named by the route pattern once the mux
// has matched it ("GET /eats/v1/eats-orders-tracking/v1/tracking"; an
// unmatched request keeps the bare method), never by the raw path.
//
// What the span keeps of what otelhttp records (v0.72): method, scheme,
// server address and port, user agent, protocol, status, body sizes, and
// url.path and http.route set to the route. Not the customer's address nor
// the raw path (droppedAttributes), no request header other than Host and
// User-Agent and no query string: the gateway's identity headers (eater
// ids, phone ids) never become attributes.
// TestTracedNamesSpansByRouteAndRecordsNoIdentity holds it to that.
//
// The sampler decides before otelhttp runs, and an unsampled request skips
// it (platform/tracing/adopt.go).
func Traced(h http.Handler, tp trace.TracerProvider) http.Handler {
	traced := otelhttp.NewHandler(routePath(h), "http.server",
		otelhttp.WithTracerProvider(tracing.Adopting(tp, droppedAttributes...)),
		// Extracted once, below, before the span it continues was started.
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
		// Prometheus has the request metrics (eot_http_request_duration_seconds).
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
	)
	// otelhttp's own scope, so the spans look as if it had started them.
	tracer := tp.Tracer(otelhttp.ScopeName, trace.WithInstrumentationVersion(otelhttp.Version))
	// Built once: every request pays for what its unsampled path
	// allocates (bench: BenchmarkTraced/never).
	server := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	carried := carriedHeaders(tracing.Propagator)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if untraced[r.URL.Path] {
			h.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		if carried(r.Header) {
			ctx = tracing.Propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		ctx, span := tracer.Start(ctx, r.Method, server...)
		if !span.IsRecording() {
			h.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		traced.ServeHTTP(w, r.WithContext(tracing.WithPreStarted(ctx, span)))
	})
}

// carriedHeaders reports whether a request carries any header the
// propagator reads. Most requests carry none, and Extract would look each
// one up through Header.Get, which allocates the canonical form of the
// propagator's lower-case names on every call.
func carriedHeaders(p propagation.TextMapPropagator) func(http.Header) bool {
	fields := p.Fields()
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = textproto.CanonicalMIMEHeaderKey(f)
	}
	return func(h http.Header) bool {
		for _, k := range keys {
			if len(h[k]) > 0 {
				return true
			}
		}
		return false
	}
}

// routePath sets the span's http.route and url.path, once
// the mux has matched the request, with the route ("/debug/pprof/" for the
// whole subtree), or url.path "unmatched": no route carries an id in its
// path today, but a client may put anything in a path that matches none,
// and a future route with a {wildcard} would record the id otherwise.
func routePath(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		span := trace.SpanFromContext(r.Context())
		if !span.IsRecording() {
			return
		}
		if r.Pattern == "" {
			span.SetAttributes(attribute.String("url.path", "unmatched"))
			return
		}
		// otelhttp names the span from the pattern after the mux returns,
		// but sets no http.route: it saw the request before routing.
		route := routeOf(r.Pattern)
		span.SetAttributes(attribute.String("url.path", route), attribute.String("http.route", route))
	})
}

// instrumentedMux lets huma register on the mux while every route gets the
// latency histogram labelled by its pattern (bounded cardinality).
type instrumentedMux struct {
	mux     *http.ServeMux
	metrics *httpMetrics
}

func (m *instrumentedMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.mux.Handle(pattern, m.metrics.wrap(pattern, http.HandlerFunc(h)))
}

func (m *instrumentedMux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

type httpMetrics struct {
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metrics.Namespace, Name: "http_request_duration_seconds",
		Help:    "HTTP request latency by route pattern and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "code"})}
	return m, metrics.Register(reg, "http", m.duration)
}

func (m *httpMetrics) wrap(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		m.duration.WithLabelValues(route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

// routeOf is a mux pattern without its method ("GET /metrics" → "/metrics"),
// the form semantic conventions give http.route.
func routeOf(pattern string) string {
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return pattern
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// PprofHandler serves net/http/pprof behind the internal token.
func PprofHandler() Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return Handler{Pattern: "/debug/pprof/", Handler: mux, Internal: true}
}
