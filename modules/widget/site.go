package widget

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// csp lets index.html load only its own scripts and styles and call only
// its own origin; the favicon is an empty data: URL.
const csp = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type file struct {
	body  []byte
	ctype string
	etag  string
}

// site answers GET and HEAD for the files of the built widget, all held in
// memory (the whole build is a few kilobytes).
type site struct {
	files map[string]file
}

// newSite reads every file of fsys once. It fails when there is no
// index.html, so a binary built without the widget does not start.
func newSite(fsys fs.FS) (*site, error) {
	s := &site{files: make(map[string]file)}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		s.files[name] = file{
			body:  body,
			ctype: contentType(name, body),
			etag:  `"` + hex.EncodeToString(sum[:16]) + `"`,
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("widget: read the embedded widget: %w", err)
	}
	if _, ok := s.files["index.html"]; !ok {
		return nil, fmt.Errorf("widget: the embedded widget has no index.html (build it: npm --prefix web run build)")
	}
	return s, nil
}

func contentType(name string, body []byte) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return http.DetectContentType(body)
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, prefix)
	if name == "" {
		name = "index.html"
	}
	f, ok := s.files[name]
	if !ok {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	// Revalidate every time: names carry no hash, the ETag makes it cheap.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if name == "index.html" {
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
	}
	// ServeContent answers If-None-Match with 304, HEAD and ranges.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}

// redirect sends /app to /app/, keeping the query, so the widget's
// relative asset URLs resolve under the prefix.
type redirect struct{}

func (redirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := prefix
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	// Only the query comes from the request, after the fixed path: the
	// Location is always this server's /app/.
	http.Redirect(w, r, target, http.StatusMovedPermanently) //nolint:gosec // G710: fixed same-origin path, the query cannot change where it points
}
