package widget

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/web"
)

// serve mounts the module's handlers on a mux, as httpapi does.
func serve(t *testing.T) *httptest.Server {
	t.Helper()
	var p struct {
		fx.In
		Handlers []httpapi.Handler `group:"http_handlers"`
	}
	app := fxtest.New(t, Module, fx.Populate(&p))
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	mux := http.NewServeMux()
	for _, h := range p.Handlers {
		mux.Handle(h.Pattern, h.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// response is what the tests check of an answer; get has already read and
// closed its body.
type response struct {
	StatusCode int
	Header     http.Header
}

func get(t *testing.T, srv *httptest.Server, method, path string, header map[string]string) (response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{StatusCode: resp.StatusCode, Header: resp.Header}, string(b)
}

func TestModuleStartsAndStops(t *testing.T) {
	t.Parallel()
	var p struct {
		fx.In
		Handlers []httpapi.Handler `group:"http_handlers"`
	}
	app := fxtest.New(t, Module, fx.Populate(&p))
	app.RequireStart().RequireStop()
	var patterns []string
	for _, h := range p.Handlers {
		patterns = append(patterns, h.Pattern)
		require.False(t, h.Internal, "the widget is public")
	}
	require.ElementsMatch(t, []string{"GET /app/", "GET /app"}, patterns)
}

func TestServesTheEmbeddedWidget(t *testing.T) {
	t.Parallel()
	srv := serve(t)

	resp, body := get(t, srv, http.MethodGet, "/app/", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	require.Contains(t, body, `<main id="app"`)
	require.Contains(t, body, `src="./assets/index.js"`, "relative asset URLs, so the prefix can move")

	index, err := io.ReadAll(must(web.Dist().Open("index.html")))
	require.NoError(t, err)
	require.Equal(t, string(index), body, "the embedded build, byte for byte")

	resp, body = get(t, srv, http.MethodGet, "/app/assets/index.js", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/javascript; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	require.Contains(t, body, "X-Eats-User")

	resp, _ = get(t, srv, http.MethodGet, "/app/assets/index.css", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/css; charset=utf-8", resp.Header.Get("Content-Type"))
}

func TestRevalidationAnswers304(t *testing.T) {
	t.Parallel()
	srv := serve(t)
	resp, _ := get(t, srv, http.MethodGet, "/app/", nil)
	etag := resp.Header.Get("ETag")
	require.Regexp(t, `^"[0-9a-f]{32}"$`, etag)
	resp, body := get(t, srv, http.MethodGet, "/app/", map[string]string{"If-None-Match": etag})
	require.Equal(t, http.StatusNotModified, resp.StatusCode)
	require.Empty(t, body)
	resp, _ = get(t, srv, http.MethodGet, "/app/", map[string]string{"If-None-Match": `"other"`})
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestHeadAndUnknownFiles(t *testing.T) {
	t.Parallel()
	srv := serve(t)
	resp, body := get(t, srv, http.MethodHead, "/app/", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, body)
	for _, p := range []string{"/app/nope.js", "/app/assets/", "/app/assets/index.js/x"} {
		resp, _ = get(t, srv, http.MethodGet, p, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}
	// The mux cleans dot segments by redirecting; nothing outside dist is served.
	for _, p := range []string{"/app/../go.mod", "/app/assets/../../embed.go", "/app/%2e%2e/embed.go"} {
		resp, body = get(t, srv, http.MethodGet, p, nil)
		require.NotEqual(t, http.StatusOK, resp.StatusCode, p)
		require.NotContains(t, body, "package", p)
	}
	resp, _ = get(t, srv, http.MethodPost, "/app/", nil)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestRedirectKeepsTheQuery(t *testing.T) {
	t.Parallel()
	srv := serve(t)
	resp, _ := get(t, srv, http.MethodGet, "/app?eater=demo&lang=en", nil)
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	require.Equal(t, "/app/?eater=demo&lang=en", resp.Header.Get("Location"))
	resp, _ = get(t, srv, http.MethodGet, "/app", nil)
	require.Equal(t, "/app/", resp.Header.Get("Location"))
}

func TestRefusesABuildWithoutIndex(t *testing.T) {
	t.Parallel()
	_, err := newSite(fstest.MapFS{"assets/index.js": {Data: []byte("x")}})
	require.ErrorContains(t, err, "no index.html")
	s, err := newSite(fstest.MapFS{"index.html": {Data: []byte("<p>")}, "a/b.weird": {Data: []byte("\x00\x01")}})
	require.NoError(t, err)
	require.Equal(t, "application/octet-stream", s.files["a/b.weird"].ctype)
	require.True(t, strings.HasPrefix(s.files["index.html"].ctype, "text/html"))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
