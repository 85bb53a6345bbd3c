package httpapi

import (
	"context"
	"net/http"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/stretchr/testify/require"
)

// The document states who may call each operation: internal ones need the
// token and list the guard's answers once each; the others say they need
// nothing here (security: []), rather than leave it undeclared.
func TestSpecDeclaresSecurity(t *testing.T) {
	t.Parallel()
	api := humago.New(http.NewServeMux(), NewConfig())
	noop := func(context.Context, *struct{}) (*struct{}, error) { return &struct{}{}, nil }
	huma.Register(api, huma.Operation{OperationID: "public", Method: http.MethodGet, Path: "/public"}, noop)
	huma.Register(api, Internal(huma.Operation{
		OperationID: "internal", Method: http.MethodPost, Path: "/internal",
		Errors: []int{http.StatusUnauthorized, http.StatusUnprocessableEntity},
	}), noop)

	public := api.OpenAPI().Paths["/public"].Get
	require.NotNil(t, public.Security)
	require.Empty(t, public.Security)
	require.Empty(t, public.Tags)

	internal := api.OpenAPI().Paths["/internal"].Post
	require.Equal(t, []map[string][]string{{"bearer": {}}, {"basic": {}}}, internal.Security)
	require.Equal(t, []string{TagInternal}, internal.Tags)
	// huma adds 500 itself; the operation's own 401 is not repeated.
	require.Equal(t, []int{http.StatusUnauthorized, http.StatusUnprocessableEntity, http.StatusForbidden, http.StatusNotFound, http.StatusInternalServerError}, internal.Errors)
	for _, code := range []string{"401", "403", "404", "422"} {
		require.Contains(t, internal.Responses, code)
	}

	var declared []string
	for _, tag := range api.OpenAPI().Tags {
		require.NotEmpty(t, tag.Description, tag.Name)
		declared = append(declared, tag.Name)
	}
	require.ElementsMatch(t, []string{TagInternal, TagOps}, declared)
	require.NotEmpty(t, api.OpenAPI().Servers)
	require.NotNil(t, api.OpenAPI().Info.License)
}
