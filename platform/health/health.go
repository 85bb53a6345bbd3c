// Package health answers the orchestrator's probes: /healthz says the
// process is up; /readyz says it can do its work (database reachable and
// every migration applied), so traffic waits for a migrated schema. The
// same checks run every few seconds on their own and set eot_ready, so an
// alert sees a replica that is not ready even when nothing probes it.
package health

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/metrics"
	"github.com/eats/eats-orders-tracking/platform/migrate"
)

// watchInterval is how often the readiness checks run without a probe: well
// under a scrape interval, and one ping plus one small query per replica.
const watchInterval = 10 * time.Second

// ProbeStatus is a probe's body.
type ProbeStatus struct {
	Status string            `json:"status" enum:"ok,unavailable" doc:"ok when the check passed"`
	Checks map[string]string `json:"checks,omitempty" doc:"each check's result: ok or the reason it failed"`
}

type statusOutput struct {
	Status int
	Body   ProbeStatus
}

// Checker runs the readiness checks and keeps the last outcome in the
// eot_ready gauge.
type Checker struct {
	db       *sqlx.DB
	migrator *migrate.Migrator
	ready    prometheus.Gauge
}

// NewChecker builds a Checker and registers eot_ready on reg (nil: the
// gauge is kept but not exported). The gauge reads 0 until a check passes.
func NewChecker(db *sqlx.DB, m *migrate.Migrator, reg prometheus.Registerer) (*Checker, error) {
	c := &Checker{db: db, migrator: m, ready: prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "ready",
		Help: "1 when the last readiness check passed (database reachable, every migration applied), else 0. " +
			"Set by every /readyz and by a check every 10 s, so it is right without probes.",
	})}
	if reg == nil {
		return c, nil
	}
	return c, metrics.Register(reg, "health", c.ready)
}

// Ready reports each check's outcome and whether all passed, and sets
// eot_ready to match, unless ctx ended meanwhile (a caller that went away
// says nothing about the database).
func (c *Checker) Ready(ctx context.Context) (map[string]string, bool) {
	checks, ok := c.check(ctx)
	switch {
	case ctx.Err() != nil:
	case ok:
		c.ready.Set(1)
	default:
		c.ready.Set(0)
	}
	return checks, ok
}

func (c *Checker) check(ctx context.Context) (map[string]string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "migrations": "ok"}
	ok := true
	if err := c.db.PingContext(ctx); err != nil {
		checks["database"], ok = "unreachable", false
		checks["migrations"] = "unknown"
		return checks, ok
	}
	pending, err := c.migrator.Pending(ctx)
	switch {
	case err != nil:
		checks["migrations"], ok = "unknown", false
	case pending:
		checks["migrations"], ok = "pending", false
	}
	return checks, ok
}

// Watch runs the checks now and then every interval until ctx ends, keeping
// eot_ready right between probes.
func (c *Checker) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		c.Ready(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Operations registers /healthz and /readyz.
func Operations(c *Checker) httpapi.Operations {
	return func(api huma.API) {
		huma.Register(api, huma.Operation{
			OperationID: "healthz", Method: http.MethodGet, Path: "/healthz",
			Summary:     "Liveness: the process is up",
			Description: "200 while the process serves HTTP; checks nothing else, so a slow database never gets a replica restarted.",
			Tags:        []string{httpapi.TagOps},
		}, func(context.Context, *struct{}) (*statusOutput, error) {
			return &statusOutput{Status: http.StatusOK, Body: ProbeStatus{Status: "ok"}}, nil
		})
		huma.Register(api, huma.Operation{
			OperationID: "readyz", Method: http.MethodGet, Path: "/readyz",
			Summary:     "Readiness: database reachable and migrations applied",
			Description: "200 when, within 2 s, the database answers and every migration is found applied; otherwise 503 with each check's result, so traffic waits for a migrated schema.",
			Tags:        []string{httpapi.TagOps},
			Responses:   map[string]*huma.Response{"503": {Description: "not ready"}},
		}, func(ctx context.Context, _ *struct{}) (*statusOutput, error) {
			checks, ok := c.Ready(ctx)
			if !ok {
				return &statusOutput{Status: http.StatusServiceUnavailable, Body: ProbeStatus{Status: "unavailable", Checks: checks}}, nil
			}
			return &statusOutput{Status: http.StatusOK, Body: ProbeStatus{Status: "ok", Checks: checks}}, nil
		})
	}
}

type checkerParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	DB        *sqlx.DB
	Migrator  *migrate.Migrator
	Registry  prometheus.Registerer
}

// newWatchedChecker is the graph's Checker: it watches from start to stop.
// It is built only with the HTTP API, so commands that serve nothing
// (migrate, openapi) start no watch.
func newWatchedChecker(p checkerParams) (*Checker, error) {
	c, err := NewChecker(p.DB, p.Migrator, p.Registry)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				c.Watch(ctx, watchInterval)
			}()
			return nil
		},
		OnStop: func(stop context.Context) error {
			cancel()
			select {
			case <-done:
			case <-stop.Done():
			}
			return nil
		},
	})
	return c, nil
}

// Module provides the checker, its routes and its watch.
var Module = fx.Module("health",
	fx.Provide(newWatchedChecker),
	httpapi.AsOperations(Operations),
)
