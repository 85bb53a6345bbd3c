package httpapi

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// tokenOK accepts the token as a bearer token or as the Basic-auth password
// (so a browser can open the dashboard). Comparison is constant-time.
func tokenOK(token, authorization string) bool {
	got := ""
	if strings.HasPrefix(authorization, "Bearer ") {
		got = strings.TrimPrefix(authorization, "Bearer ")
	} else if _, pass, ok := (&http.Request{Header: http.Header{"Authorization": {authorization}}}).BasicAuth(); ok {
		got = pass
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// RequireToken guards a plain handler: 404 when the token is unset (the
// route is off), 401 when the request does not carry it.
func RequireToken(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case token == "":
			writeProblem(w, http.StatusNotFound, "Not Found", "internal routes are off: INTERNAL_API_TOKEN is not set")
		case !tokenOK(token, r.Header.Get("Authorization")):
			w.Header().Set("WWW-Authenticate", `Bearer realm="eats-orders-tracking", Basic realm="eats-orders-tracking"`)
			writeProblem(w, http.StatusUnauthorized, "Unauthorized", "a valid internal token is required (Authorization: Bearer <token>)")
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// internalGuard applies the same rule to huma operations tagged internal.
func internalGuard(api huma.API, token string) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		if op == nil || !slices.Contains(op.Tags, TagInternal) {
			next(ctx)
			return
		}
		switch {
		case token == "":
			_ = huma.WriteErr(api, ctx, http.StatusNotFound, "internal routes are off: INTERNAL_API_TOKEN is not set")
		case !tokenOK(token, ctx.Header("Authorization")):
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="eats-orders-tracking", Basic realm="eats-orders-tracking"`)
			_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, "a valid internal token is required (Authorization: Bearer <token>)")
		default:
			next(ctx)
		}
	}
}

// writeProblem writes an RFC 9457 problem document.
func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": title, "status": status, "detail": detail})
}
