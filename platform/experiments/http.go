package experiments

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/eats/eats-orders-tracking/platform/httpapi"
)

// ExperimentsStatus names the response schema in the API document.
type ExperimentsStatus Status

type statusOutput struct {
	Body ExperimentsStatus
}

// Operations serves the set in force, when it was loaded and the last
// refusal, so an operator can see why a change did not take.
func Operations(s *Store) httpapi.Operations {
	return func(api huma.API) {
		huma.Register(api, httpapi.Internal(huma.Operation{
			OperationID: "getExperiments",
			Method:      http.MethodGet,
			Path:        "/internal/eats-orders-tracking/v1/experiments",
			Summary:     "Experiments in force, when they were loaded, and the last refused file's error",
			Description: "The experiment set the service applies now (from EXPERIMENTS_FILE), when it was loaded, and, when a later version of the file was refused, the refusal's error, so an operator can see why a change did not take.",
		}), func(context.Context, *struct{}) (*statusOutput, error) {
			return &statusOutput{Body: ExperimentsStatus(s.Status())}, nil
		})
	}
}
