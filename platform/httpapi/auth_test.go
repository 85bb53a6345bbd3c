package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRequireToken(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	basic := func(r *http.Request) { r.SetBasicAuth("ops", "tok") }
	for _, tc := range []struct {
		name   string
		token  string
		method string
		setup  func(*http.Request)
		want   int
	}{
		{"off without a token", "", http.MethodGet, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, http.StatusNotFound},
		{"no credentials", "tok", http.MethodGet, func(*http.Request) {}, http.StatusUnauthorized},
		{"wrong bearer", "tok", http.MethodGet, func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, http.StatusUnauthorized},
		{"bearer", "tok", http.MethodPost, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, http.StatusTeapot},
		{"bearer from another site", "tok", http.MethodPost, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer tok")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}, http.StatusTeapot},
		{"basic GET from another site", "tok", http.MethodGet, func(r *http.Request) { basic(r); r.Header.Set("Sec-Fetch-Site", "cross-site") }, http.StatusTeapot},
		{"basic POST same origin", "tok", http.MethodPost, func(r *http.Request) { basic(r); r.Header.Set("Sec-Fetch-Site", "same-origin") }, http.StatusTeapot},
		{"basic POST without browser headers", "tok", http.MethodPost, basic, http.StatusTeapot},
		{"basic POST from another site", "tok", http.MethodPost, func(r *http.Request) { basic(r); r.Header.Set("Sec-Fetch-Site", "cross-site") }, http.StatusForbidden},
		{"basic POST from another origin (old browser)", "tok", http.MethodPost, func(r *http.Request) { basic(r); r.Header.Set("Origin", "https://evil.example") }, http.StatusForbidden},
		{"wrong basic password", "tok", http.MethodGet, func(r *http.Request) { r.SetBasicAuth("ops", "nope") }, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tc.method, "http://eot.internal/riverui/api/jobs/cancel", nil)
			tc.setup(r)
			w := httptest.NewRecorder()
			RequireToken(tc.token, ok).ServeHTTP(w, r)
			require.Equal(t, tc.want, w.Code, w.Body.String())
			if tc.want != http.StatusTeapot {
				require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
			}
		})
	}
}
