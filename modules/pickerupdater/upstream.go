package pickerupdater

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	platformmetrics "github.com/eats/eats-orders-tracking/platform/metrics"
	"github.com/eats/eats-orders-tracking/platform/tracing"
)

// The upstream's errors. The refresh job tells them apart: not found moves
// updated_at, malformed and rejected are not applied, unavailable is retried
// later.
var (
	// errUpstreamNotFound: eats-picker-orders answered 404 for the order.
	errUpstreamNotFound = errors.New("picker order not found upstream")
	// errUpstreamMalformed: a 2xx answer we cannot use; never retried.
	errUpstreamMalformed = errors.New("malformed answer from eats-picker-orders")
	// errUpstreamRejected: a 4xx other than 404 (or a 3xx); never retried,
	// asking again would get the same answer.
	errUpstreamRejected = errors.New("eats-picker-orders rejected the request")
	// errUpstreamUnavailable: timeouts, connection errors and 5xx after the
	// retries, the call's deadline, or an open breaker.
	errUpstreamUnavailable = errors.New("eats-picker-orders unavailable")
	// errBreakerOpen comes with errUpstreamUnavailable when the call was not
	// even tried because the circuit breaker is open.
	errBreakerOpen = errors.New("circuit breaker open")
	// errCallDeadline is the cause of the call context's deadline, so the
	// call's own deadline can be told from the caller's.
	errCallDeadline = errors.New("call deadline exceeded")
)

// maxAnswerBytes bounds what we read from the upstream; a real answer is a
// few hundred bytes.
const maxAnswerBytes = 1 << 20

// upstreamConfig configures the eats-picker-orders client. Zero fields take
// the defaults noted on them.
type upstreamConfig struct {
	// BaseURL of eats-picker-orders, e.g. "http://picker-orders.local". Required.
	BaseURL string
	// AttemptTimeout bounds one HTTP attempt, body included. Default 2s.
	AttemptTimeout time.Duration
	// MaxAttempts per call, the first one included. Default 3.
	MaxAttempts int
	// BackoffMin and BackoffMax bound the exponential backoff between
	// attempts (±25% jitter). Defaults 100ms and 1s.
	BackoffMin, BackoffMax time.Duration
	// BreakerFailures is how many failed attempts in a row open the breaker.
	// Default 5.
	BreakerFailures uint
	// BreakerDelay is how long the breaker stays open before one probe is let
	// through. Default 10s.
	BreakerDelay time.Duration
	// CallTimeout bounds a whole call, retries and backoff included. Default:
	// room for every attempt to time out, the longest backoffs and one more
	// attempt's worth of slack for jitter, so it is a backstop rather than
	// what usually ends a call (10s with the other defaults).
	CallTimeout time.Duration
}

// withDefaults fills zero fields and checks the result.
func (c upstreamConfig) withDefaults() (upstreamConfig, error) {
	c.AttemptTimeout = cmp.Or(c.AttemptTimeout, 2*time.Second)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, 3)
	c.BackoffMin = cmp.Or(c.BackoffMin, 100*time.Millisecond)
	c.BackoffMax = cmp.Or(c.BackoffMax, time.Second)
	c.BreakerFailures = cmp.Or(c.BreakerFailures, 5)
	c.BreakerDelay = cmp.Or(c.BreakerDelay, 10*time.Second)
	c.CallTimeout = cmp.Or(c.CallTimeout,
		time.Duration(c.MaxAttempts+1)*c.AttemptTimeout+time.Duration(c.MaxAttempts-1)*c.BackoffMax)

	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("base URL is empty"))
	} else if u, err := url.Parse(c.BaseURL); err != nil {
		errs = append(errs, fmt.Errorf("base URL: %w", err))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("base URL %q: want http(s)://host[:port][/path]", c.BaseURL))
	}
	if c.AttemptTimeout < 0 || c.BackoffMin < 0 || c.BackoffMax < 0 || c.BreakerDelay < 0 || c.CallTimeout < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts %d: want at least 1", c.MaxAttempts))
	}
	if c.BackoffMin > c.BackoffMax {
		errs = append(errs, fmt.Errorf("backoff min %s is over max %s", c.BackoffMin, c.BackoffMax))
	}
	if c.CallTimeout < c.AttemptTimeout {
		errs = append(errs, fmt.Errorf("call timeout %s is under attempt timeout %s", c.CallTimeout, c.AttemptTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("picker orders upstream config: %w", err)
	}
	return c, nil
}

// upstreamOrder is eats-picker-orders' view of one picker order, checked.
type upstreamOrder struct {
	OrderNr         string
	Status          tracking.PickerStatus
	PickerID        string // "" when the answer has none
	StatusUpdatedAt time.Time
	PlaceID         string // the upstream's integer, as a string
	Forwarding      *upstreamForwarding
}

// upstreamForwarding is the customer-to-picker phone forwarding; it belongs
// to the answer's picker (or the stored one when the answer has none).
type upstreamForwarding struct {
	Phone     string
	ExpiresAt time.Time
}

// LogValue keeps the phone out of logs should an order ever be logged whole.
func (o upstreamOrder) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("order_nr", o.OrderNr),
		slog.String("status", string(o.Status)),
		slog.String("picker_id", o.PickerID),
		slog.Time("status_updated_at", o.StatusUpdatedAt),
		slog.String("place_id", o.PlaceID),
	}
	if o.Forwarding != nil {
		attrs = append(attrs, slog.Any("forwarding", o.Forwarding))
	}
	return slog.GroupValue(attrs...)
}

// LogValue masks the phone in logs.
func (f *upstreamForwarding) LogValue() slog.Value {
	if f == nil {
		return slog.Value{}
	}
	return slog.GroupValue(
		slog.String("phone", tracking.MaskPhone(f.Phone)),
		slog.Time("expires_at", f.ExpiresAt),
	)
}

// String masks the phone when the forwarding is printed with fmt.
func (f upstreamForwarding) String() string {
	return fmt.Sprintf("{phone %s, expires_at %s}", tracking.MaskPhone(f.Phone), f.ExpiresAt.Format(time.RFC3339))
}

// upstream is the eats-picker-orders client. It is safe for concurrent use.
type upstream struct {
	cfg       upstreamConfig
	orderURL  *url.URL
	transport *http.Transport
	client    *http.Client
	breaker   circuitbreaker.CircuitBreaker[upstreamOrder]
	executor  failsafe.Executor[upstreamOrder]
	metrics   upstreamMetrics
	logger    *slog.Logger
	// tracer spans each call (setTracing); a no-op until then.
	tracer trace.Tracer
}

type upstreamMetrics struct {
	requests     *prometheus.CounterVec
	attempts     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	breakerState prometheus.GaugeFunc
}

// Call outcomes, the values of eot_picker_orders_requests_total{outcome}.
const (
	outcomeOK          = "ok"
	outcomeNotFound    = "not_found"
	outcomeMalformed   = "malformed"
	outcomeRejected    = "rejected"
	outcomeError       = "error"
	outcomeBreakerOpen = "breaker_open"
)

// newUpstream builds the client; it does no I/O. A nil reg skips metrics
// registration, a nil logger discards.
func newUpstream(cfg upstreamConfig, reg prometheus.Registerer, logger *slog.Logger) (*upstream, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("picker orders base URL: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("upstream", "eats-picker-orders")

	// Our own transport, so Close only drops our idle connections and the
	// pool fits the refresh queue's concurrency.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32

	u := &upstream{
		cfg:       cfg,
		orderURL:  base.JoinPath("api", "v1", "order"),
		transport: transport,
		// No client timeout: the attempt and call deadlines are the timeouts.
		client: &http.Client{Transport: transport},
		logger: logger,
		tracer: noop.NewTracerProvider().Tracer(""),
	}

	// Only unavailability counts: a 404, a rejection or a malformed answer
	// all come from an upstream that is up. A caller's cancellation counts as
	// neither kind of failure, so it is not held against the upstream (in
	// half-open it closes the breaker; the next failures reopen it).
	transient := func(_ upstreamOrder, err error) bool {
		return errors.Is(err, errUpstreamUnavailable) || errors.Is(err, timeout.ErrExceeded)
	}
	u.breaker = circuitbreaker.NewBuilder[upstreamOrder]().
		HandleIf(transient).
		WithFailureThreshold(cfg.BreakerFailures).
		WithDelay(cfg.BreakerDelay).
		WithSuccessThreshold(1). // one probe at a time in half-open
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			if e.NewState == circuitbreaker.OpenState {
				logger.Warn("circuit breaker opened", "from", e.OldState.String(), "delay", cfg.BreakerDelay)
				return
			}
			logger.Info("circuit breaker state changed", "from", e.OldState.String(), "to", e.NewState.String())
		}).
		Build()
	retry := retrypolicy.NewBuilder[upstreamOrder]().
		HandleIf(transient).
		WithMaxAttempts(cfg.MaxAttempts).
		WithBackoff(cfg.BackoffMin, cfg.BackoffMax).
		WithJitterFactor(0.25).
		ReturnLastFailure(). // the last attempt's error says more than "retries exceeded"
		OnRetryScheduled(func(e failsafe.ExecutionScheduledEvent[upstreamOrder]) {
			logger.Debug("retrying", "attempt", e.Attempts(), "delay", e.Delay, "error", e.LastError())
		}).
		Build()
	// Outermost first: each retry passes the breaker, each attempt has its
	// own deadline.
	u.executor = failsafe.With[upstreamOrder](retry, u.breaker, timeout.New[upstreamOrder](cfg.AttemptTimeout))

	u.metrics = upstreamMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eot_picker_orders_requests_total",
			Help: "Calls to eats-picker-orders (retries included in one call), by outcome.",
		}, []string{"outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eot_picker_orders_attempts_total",
			Help: "HTTP attempts to eats-picker-orders, by result.",
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eot_picker_orders_request_duration_seconds",
			Help:    "Duration of calls to eats-picker-orders, retries and backoff included, by outcome.",
			Buckets: prometheus.DefBuckets,
		}, []string{"outcome"}),
		breakerState: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eot_picker_orders_breaker_state",
			Help: "Circuit breaker in front of eats-picker-orders: 0 closed, 1 half-open, 2 open.",
		}, u.breakerState),
	}
	if reg != nil {
		if err := platformmetrics.Register(reg, "picker orders", u.metrics.requests, u.metrics.attempts, u.metrics.duration, u.metrics.breakerState); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// breakerState maps failsafe's states (closed 0, open 1, half-open 2) to the
// gauge's scale, which orders them by how bad they are.
func (u *upstream) breakerState() float64 {
	switch u.breaker.State() {
	case circuitbreaker.HalfOpenState:
		return 1
	case circuitbreaker.OpenState:
		return 2
	}
	return 0
}

// Span attributes of a call. The order number is not one of them: the
// span hangs off the refresh job's work span, which has the job's id.
const (
	attrBreakerState      = "picker_orders.breaker.state"
	attrBreakerStateAfter = "picker_orders.breaker.state_after"
	attrAttempts          = "picker_orders.attempts"
	attrOutcome           = "picker_orders.outcome"
)

// setTracing spans each call with tp (nil keeps the no-op tracer).
func (u *upstream) setTracing(tp trace.TracerProvider) {
	if tp != nil {
		u.tracer = tp.Tracer("github.com/eats/eats-orders-tracking/modules/pickerupdater")
	}
}

// close drops idle keep-alive connections; the module calls it on stop.
func (u *upstream) close() { u.transport.CloseIdleConnections() }

// Order asks eats-picker-orders for the order. Errors wrap one of
// errUpstreamNotFound, errUpstreamMalformed, errUpstreamRejected,
// errUpstreamUnavailable (with errBreakerOpen when not tried), or the
// caller's context error.
func (u *upstream) Order(ctx context.Context, orderNr string) (upstreamOrder, error) {
	if orderNr == "" {
		return upstreamOrder{}, errors.New("get picker order: empty order_nr")
	}
	if err := ctx.Err(); err != nil {
		// Not asked at all, so neither the breaker nor the metrics hear of it.
		return upstreamOrder{}, fmt.Errorf("get picker order %s: %w", orderNr, context.Cause(ctx))
	}
	start := time.Now()
	// One span per call, retries and backoff included; the breaker's state
	// when the call began says whether it was even tried.
	ctx, span := u.tracer.Start(ctx, "eats-picker-orders GET /api/v1/order",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String(attrBreakerState, u.breaker.State().String())))
	defer span.End()
	callCtx, cancel := context.WithTimeoutCause(ctx, u.cfg.CallTimeout, errCallDeadline)
	defer cancel()

	attempts := 0
	order, err := u.executor.WithContext(callCtx).GetWithExecution(func(exec failsafe.Execution[upstreamOrder]) (upstreamOrder, error) {
		attempts++ // attempts run one after another, never concurrently
		return u.attempt(exec.Context(), callCtx, orderNr)
	})
	outcome, err := u.classify(ctx, callCtx, err, attempts)
	span.SetAttributes(
		attribute.String(attrBreakerStateAfter, u.breaker.State().String()),
		attribute.Int(attrAttempts, attempts),
		attribute.String(attrOutcome, outcome),
	)
	if outcome != outcomeOK && outcome != outcomeNotFound {
		span.SetStatus(codes.Error, outcome)
	}

	u.metrics.requests.WithLabelValues(outcome).Inc()
	u.metrics.duration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	if err != nil {
		return upstreamOrder{}, fmt.Errorf("get picker order %s: %w", orderNr, err)
	}
	return order, nil
}

// classify turns what the executor returned into an outcome and the error
// the caller sees.
func (u *upstream) classify(ctx, callCtx context.Context, err error, attempts int) (string, error) {
	switch {
	case err == nil:
		return outcomeOK, nil
	case errors.Is(err, circuitbreaker.ErrOpen):
		if attempts > 0 {
			// Opened between our retries: the earlier attempts failed.
			return outcomeBreakerOpen, fmt.Errorf("%w after %d attempts: %w", errUpstreamUnavailable, attempts, errBreakerOpen)
		}
		return outcomeBreakerOpen, fmt.Errorf("%w: %w", errUpstreamUnavailable, errBreakerOpen)
	case ctx.Err() != nil:
		// The caller gave up (shutdown, job timeout): not the upstream's fault.
		return outcomeError, context.Cause(ctx)
	case errors.Is(context.Cause(callCtx), errCallDeadline):
		return outcomeError, fmt.Errorf("%w: %w (%s, %d attempts)", errUpstreamUnavailable, errCallDeadline, u.cfg.CallTimeout, attempts)
	case errors.Is(err, timeout.ErrExceeded):
		return outcomeError, fmt.Errorf("%w: attempt deadline %s exceeded (%d attempts)", errUpstreamUnavailable, u.cfg.AttemptTimeout, attempts)
	case errors.Is(err, errUpstreamUnavailable):
		return outcomeError, fmt.Errorf("%w (%d attempts)", err, attempts)
	case errors.Is(err, errUpstreamNotFound):
		return outcomeNotFound, err
	case errors.Is(err, errUpstreamMalformed):
		return outcomeMalformed, err
	case errors.Is(err, errUpstreamRejected):
		return outcomeRejected, err
	}
	return outcomeError, err
}

// attempt is one HTTP round trip with its body read and checked. ctx is the
// attempt's (cancelled by the attempt timeout), callCtx the whole call's.
func (u *upstream) attempt(ctx, callCtx context.Context, orderNr string) (upstreamOrder, error) {
	result := "ok"
	defer func() { u.metrics.attempts.WithLabelValues(result).Inc() }()

	// cut names why the attempt's context ended; the attempt timeout cancels
	// it without a cause, so "timeout" is what remains.
	cut := func(err error) error {
		switch {
		case callCtx.Err() != nil && errors.Is(context.Cause(callCtx), errCallDeadline):
			result = "call_deadline"
			return fmt.Errorf("%w: %w", errUpstreamUnavailable, errCallDeadline)
		case callCtx.Err() != nil:
			result = "canceled"
			return context.Cause(callCtx)
		default:
			result = "timeout"
			return fmt.Errorf("%w: %w", errUpstreamUnavailable, err)
		}
	}

	reqURL := *u.orderURL
	reqURL.RawQuery = url.Values{"eats_id": {orderNr}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reqURL.String(), nil)
	if err != nil {
		result = "error"
		return upstreamOrder{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	// eats-picker-orders continues our trace if it is traced too.
	tracing.Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))

	resp, err := u.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return upstreamOrder{}, cut(err)
		}
		result = "connection_error"
		return upstreamOrder{}, fmt.Errorf("%w: %w", errUpstreamUnavailable, err)
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
	}()

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return upstreamOrder{}, cut(err)
		}
		result = "connection_error"
		return upstreamOrder{}, fmt.Errorf("%w: read answer (status %d): %w", errUpstreamUnavailable, resp.StatusCode, err)
	}

	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		order, err := decodeOrder(body, orderNr)
		if err != nil {
			result = "malformed"
			return upstreamOrder{}, err
		}
		return order, nil
	case code == http.StatusNotFound:
		result = "not_found"
		errCode := errorCode(body)
		u.logger.Debug("order not found upstream", "order_nr", orderNr, "code", errCode)
		return upstreamOrder{}, fmt.Errorf("%w (code %q)", errUpstreamNotFound, errCode)
	case code >= 500:
		result = "server_error"
		return upstreamOrder{}, fmt.Errorf("%w: status %d (code %q)", errUpstreamUnavailable, code, errorCode(body))
	case code >= 300:
		result = "rejected"
		return upstreamOrder{}, fmt.Errorf("%w: status %d (code %q)", errUpstreamRejected, code, errorCode(body))
	default:
		// A 2xx other than 200 carries no order we know how to read.
		result = "malformed"
		return upstreamOrder{}, fmt.Errorf("%w: status %d, want 200", errUpstreamMalformed, code)
	}
}

// errorCode reads the code of an error answer `{"code","message"}`, for
// errors and logs only; the message is ignored.
func errorCode(body []byte) string {
	var e struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return tracking.Truncate(e.Code)
}

// wireOrder is the 200 answer as sent; pointers tell absent from empty.
type wireOrder struct {
	Payload *struct {
		EatsID          *string      `json:"eats_id"`
		Status          *string      `json:"status"`
		PickerID        *string      `json:"picker_id"`
		StatusUpdatedAt *string      `json:"status_updated_at"`
		PlaceID         *json.Number `json:"place_id"`
		Forwarding      *struct {
			Phone     *string `json:"phone"`
			ExpiresAt *string `json:"expires_at"`
		} `json:"customer_picker_phone_forwarding"`
	} `json:"payload"`
}

// decodeOrder checks a 200 answer for orderNr. Errors wrap
// errUpstreamMalformed and never quote a phone number.
func decodeOrder(body []byte, orderNr string) (upstreamOrder, error) {
	malformed := func(format string, args ...any) (upstreamOrder, error) {
		return upstreamOrder{}, fmt.Errorf("%w: %s", errUpstreamMalformed, fmt.Sprintf(format, args...))
	}
	if len(body) > maxAnswerBytes {
		return malformed("answer over %d bytes", maxAnswerBytes)
	}
	var w wireOrder
	if err := json.Unmarshal(body, &w); err != nil {
		// json's messages quote types and offsets, never the input itself.
		return malformed("bad JSON: %v", err)
	}
	p := w.Payload
	switch {
	case p == nil:
		return malformed("payload is missing")
	case p.EatsID == nil || *p.EatsID == "":
		return malformed("payload.eats_id is missing")
	case *p.EatsID != orderNr:
		return malformed("payload.eats_id %q is not the order asked for", tracking.Truncate(*p.EatsID))
	case p.Status == nil || *p.Status == "":
		return malformed("payload.status is missing")
	case !tracking.PickerStatus(*p.Status).Valid():
		return malformed("payload.status %q is unknown", tracking.Truncate(*p.Status))
	case p.StatusUpdatedAt == nil || *p.StatusUpdatedAt == "":
		return malformed("payload.status_updated_at is missing")
	}
	o := upstreamOrder{
		OrderNr: orderNr,
		Status:  tracking.PickerStatus(*p.Status),
	}
	var err error
	if o.StatusUpdatedAt, err = tracking.ParseTime("payload.status_updated_at", *p.StatusUpdatedAt); err != nil {
		return malformed("%v", err)
	}
	if p.PickerID != nil {
		o.PickerID = *p.PickerID
	}
	// DESIGN §5 shows place_id in every answer, but an answer without it is
	// still applied: apply stores no place_id (picker_orders' payload is
	// picker_id, status and status_history only), so refusing it as
	// malformed would leave the order un-refreshed, asked again every tick,
	// over a field nothing reads. A place_id that is present but not an
	// integer is refused: the answer is not the shape we know.
	if p.PlaceID != nil {
		id, err := strconv.ParseInt(p.PlaceID.String(), 10, 64)
		if err != nil {
			return malformed("payload.place_id %q is not an integer", tracking.Truncate(p.PlaceID.String()))
		}
		o.PlaceID = strconv.FormatInt(id, 10)
	}
	if f := p.Forwarding; f != nil {
		switch {
		case f.Phone == nil || *f.Phone == "":
			return malformed("payload.customer_picker_phone_forwarding.phone is missing")
		case f.ExpiresAt == nil || *f.ExpiresAt == "":
			return malformed("payload.customer_picker_phone_forwarding.expires_at is missing")
		}
		expires, err := tracking.ParseTime("payload.customer_picker_phone_forwarding.expires_at", *f.ExpiresAt)
		if err != nil {
			return malformed("%v", err)
		}
		o.Forwarding = &upstreamForwarding{Phone: *f.Phone, ExpiresAt: expires}
	}
	return o, nil
}
