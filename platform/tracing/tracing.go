// Package tracing provides the service's OpenTelemetry trace.TracerProvider:
// the SDK exporting over OTLP/HTTP (protobuf) when OTEL_EXPORTER_OTLP_ENDPOINT
// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, otherwise a no-op provider
// with nothing started, so a replica without a collector pays nothing.
//
// When on, the SDK's own environment variables apply (read by the SDK from
// the process environment): OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// (default parentbased_always_on), OTEL_SERVICE_NAME (default
// eats-orders-tracking), OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS,
// _TIMEOUT, _COMPRESSION and the OTEL_BSP_* batching knobs. Context crosses
// process boundaries as W3C tracecontext (Propagator).
//
// Components take the provider from the graph and treat Off(tp) as "do not
// even wrap": tests supply their own provider (an SDK one over
// tracetest.InMemoryExporter) with fx.Decorate.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/shutdown"
)

// ServiceName is the resource's service.name unless OTEL_SERVICE_NAME says otherwise.
const ServiceName = "eats-orders-tracking"

// The variables that turn tracing on (either one), as the SDK names them.
const (
	envEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envSDKDisabled    = "OTEL_SDK_DISABLED"
	envTracesExporter = "OTEL_TRACES_EXPORTER"
	envProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// Propagator is how trace context crosses process boundaries: W3C
// tracecontext only (River's middleware writes the same format into a job's
// metadata).
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Enabled reports whether environ asks for traces: an OTLP endpoint is set,
// and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says no.
func Enabled(environ config.Environment) bool {
	if strings.EqualFold(strings.TrimSpace(environ[envSDKDisabled]), "true") ||
		strings.EqualFold(strings.TrimSpace(environ[envTracesExporter]), "none") {
		return false
	}
	return strings.TrimSpace(environ[envEndpoint]) != "" || strings.TrimSpace(environ[envTracesEndpoint]) != ""
}

// Off reports whether tp records nothing (nil or the no-op provider), so a
// component can skip its instrumentation altogether.
func Off(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return true
	}
	return false
}

// tracesURL is where spans go: the traces endpoint as given, or the
// general endpoint with /v1/traces appended, as the OTLP spec says.
func tracesURL(environ config.Environment) string {
	if v := strings.TrimSpace(environ[envTracesEndpoint]); v != "" {
		return v
	}
	return strings.TrimRight(strings.TrimSpace(environ[envEndpoint]), "/") + "/v1/traces"
}

// Params are the provider's inputs.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Environ   config.Environment
	Logger    *slog.Logger
	// Budget bounds the final flush: it runs after the HTTP server and River
	// stopped (it was built before them), within what is left of the drain.
	Budget *shutdown.Budget
}

// New builds the provider. It does no I/O: the exporter connects on the
// first batch; stop flushes what is buffered and shuts the SDK down.
func New(p Params) (trace.TracerProvider, error) {
	if !Enabled(p.Environ) {
		return noop.NewTracerProvider(), nil
	}
	for _, name := range []string{envTracesProtocol, envProtocol} {
		if v := strings.TrimSpace(p.Environ[name]); v != "" && v != "http/protobuf" {
			return nil, fmt.Errorf("tracing: %s=%q: this service exports OTLP over http/protobuf only", name, v)
		}
	}
	endpoint := tracesURL(p.Environ)
	// The exporter ignores an endpoint it cannot parse (and sends to
	// localhost:4318): refuse it at start instead.
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracing: %s / %s: %q is not an http(s)://host[:port] URL", envTracesEndpoint, envEndpoint, config.MaskURL(endpoint))
	}
	exporter, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", config.MaskURL(endpoint), err)
	}
	// Later options win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the default name.
	res, err := resource.New(context.Background(),
		resource.WithAttributes(attribute.String("service.name", ServiceName)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	// No WithSampler: the SDK reads OTEL_TRACES_SAMPLER(_ARG) itself and
	// defaults to parentbased_always_on.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			p.Logger.Info("tracing on", "endpoint", config.MaskURL(endpoint),
				"sampler", p.Environ["OTEL_TRACES_SAMPLER"], "sampler_arg", p.Environ["OTEL_TRACES_SAMPLER_ARG"])
			return nil
		},
		OnStop: func(ctx context.Context) error {
			ctx, cancel := p.Budget.Context(ctx)
			defer cancel()
			if err := tp.Shutdown(ctx); err != nil {
				return fmt.Errorf("tracing: flush and shut down: %w", err)
			}
			return nil
		},
	})
	return tp, nil
}

// Module provides the trace.TracerProvider.
var Module = fx.Module("tracing", fx.Provide(New))
