package httpapi

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
)

// tokenOK accepts the token as a bearer token or as the Basic-auth password
// (so a browser can open the dashboard), and says which one it was.
// Comparison is constant-time.
func tokenOK(token, authorization string) (ok, basic bool) {
	got := ""
	if strings.HasPrefix(authorization, "Bearer ") {
		got = strings.TrimPrefix(authorization, "Bearer ")
	} else if _, pass, isBasic := (&http.Request{Header: http.Header{"Authorization": {authorization}}}).BasicAuth(); isBasic {
		got, basic = pass, true
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1, basic
}

// crossOrigin refuses state-changing requests a browser sends from another
// site. Only Basic auth needs it: a browser re-sends cached Basic
// credentials by itself (a forged form could cancel jobs in riverui or post
// an event), while a bearer token is never sent without the caller's code.
var crossOrigin = http.NewCrossOriginProtection()

const (
	unauthorized    = "a valid internal token is required (Authorization: Bearer <token>)"
	crossOriginDeny = "cross-origin request with Basic credentials refused; send the token as Authorization: Bearer <token>"
	challenge       = `Bearer realm="eats-orders-tracking", Basic realm="eats-orders-tracking"`
)

// check applies the token rule to a request: 0 when it may pass, else the
// status and detail to answer with.
func check(token string, r *http.Request) (int, string) {
	if token == "" {
		return http.StatusNotFound, "internal routes are off: INTERNAL_API_TOKEN is not set"
	}
	ok, basic := tokenOK(token, r.Header.Get("Authorization"))
	switch {
	case !ok:
		return http.StatusUnauthorized, unauthorized
	case basic && crossOrigin.Check(r) != nil:
		return http.StatusForbidden, crossOriginDeny
	}
	return 0, ""
}

// RequireToken guards a plain handler: 404 when the token is unset (the
// route is off), 401 when the request does not carry it, 403 for a
// cross-site browser request riding on Basic credentials.
func RequireToken(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, detail := check(token, r)
		if status == 0 {
			h.ServeHTTP(w, r)
			return
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", challenge)
		}
		writeProblem(w, status, http.StatusText(status), detail)
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
		r, _ := humago.Unwrap(ctx) // the API is served by humago (NewAPI)
		status, detail := check(token, r)
		if status == 0 {
			next(ctx)
			return
		}
		if status == http.StatusUnauthorized {
			ctx.SetHeader("WWW-Authenticate", challenge)
		}
		_ = huma.WriteErr(api, ctx, status, detail)
	}
}

// writeProblem writes an RFC 9457 problem document.
func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": title, "status": status, "detail": detail})
}
