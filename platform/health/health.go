// Package health answers the orchestrator's probes: /healthz says the
// process is up; /readyz says it can do its work (database reachable and
// every migration applied), so traffic waits for a migrated schema.
package health

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/jmoiron/sqlx"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/migrate"
)

// ProbeStatus is a probe's body.
type ProbeStatus struct {
	Status string            `json:"status" enum:"ok,unavailable" doc:"ok when the check passed"`
	Checks map[string]string `json:"checks,omitempty" doc:"each check's result: ok or the reason it failed"`
}

type statusOutput struct {
	Status int
	Body   ProbeStatus
}

// Checker runs the readiness checks.
type Checker struct {
	db       *sqlx.DB
	migrator *migrate.Migrator
}

// NewChecker builds a Checker.
func NewChecker(db *sqlx.DB, m *migrate.Migrator) *Checker { return &Checker{db: db, migrator: m} }

// Ready reports each check's outcome and whether all passed.
func (c *Checker) Ready(ctx context.Context) (map[string]string, bool) {
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

// Module provides the checker and its routes.
var Module = fx.Module("health",
	fx.Provide(NewChecker),
	httpapi.AsOperations(Operations),
)
