package web_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/web"
	"github.com/eats/eats-orders-tracking/web/webtest"
)

func TestDistIsEmbedded(t *testing.T) {
	t.Parallel()
	index, err := fs.ReadFile(web.Dist(), "index.html")
	require.NoError(t, err)
	require.Contains(t, string(index), `<main id="app"`)
	for _, name := range []string{"assets/index.js", "assets/index.css"} {
		_, err := fs.Stat(web.Dist(), name)
		require.NoError(t, err, "%s is referenced by index.html", name)
		require.Contains(t, string(index), "./"+name)
	}
}

func TestTypeCheck(t *testing.T) {
	t.Parallel()
	dir := webtest.NodeModules(t)
	r := webtest.Tsc(dir)
	require.NoError(t, r.Err, "tsc --noEmit:\n%s", r.Output)
}

func TestGeneratedTypesMatchTheSpec(t *testing.T) {
	t.Parallel()
	dir := webtest.NodeModules(t)
	r := webtest.Node(dir, 2*time.Minute, "scripts/check-generated.mjs")
	require.NoError(t, r.Err, r.Output)
}

func TestDistMatchesAFreshBuild(t *testing.T) {
	t.Parallel()
	dir := webtest.NodeModules(t)
	r := webtest.Node(dir, 2*time.Minute, "scripts/check-dist.mjs")
	require.NoError(t, r.Err, r.Output)
}

// The checks above must be able to fail: break a copy and watch them.
func TestChecksCatchDrift(t *testing.T) {
	t.Parallel()
	dir := webtest.CopyWeb(t)

	gen := filepath.Join(dir, "src", "api.gen.ts")
	appendTo(t, gen, "\nexport type Stale = 1;\n")
	r := webtest.Node(dir, 2*time.Minute, "scripts/check-generated.mjs")
	require.Error(t, r.Err, r.Output)
	require.Contains(t, r.Output, "does not match openapi/openapi.yaml")

	appendTo(t, filepath.Join(dir, "dist", "assets", "index.js"), "//")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dist", "stray.txt"), []byte("x"), 0o644))
	r = webtest.Node(dir, 2*time.Minute, "scripts/check-dist.mjs")
	require.Error(t, r.Err, r.Output)
	require.Contains(t, r.Output, "differs from a fresh build: assets/index.js")
	require.Contains(t, r.Output, "only in the committed tree: stray.txt")
}

// Checked by: "Removing picker from the handled cases in the widget fails
// the type check." The contact_type switch is exhaustive, so the spec's
// enum and the widget cannot drift apart silently.
func TestRemovingPickerFailsTheTypeCheck(t *testing.T) {
	t.Parallel()
	dir := webtest.CopyWeb(t)
	r := webtest.Tsc(dir)
	require.NoError(t, r.Err, "the unmodified copy must type-check:\n%s", r.Output)

	render := filepath.Join(dir, "src", "render.ts")
	b, err := os.ReadFile(render)
	require.NoError(t, err)
	var kept []string
	removed := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `case "picker":`) {
			removed++
			continue
		}
		kept = append(kept, line)
	}
	require.Equal(t, 1, removed, "render.ts handles picker in exactly one case line")
	require.NoError(t, os.WriteFile(render, []byte(strings.Join(kept, "\n")), 0o644))

	r = webtest.Tsc(dir)
	require.Error(t, r.Err, "tsc must fail without the picker case:\n%s", r.Output)
	require.Contains(t, r.Output, "src/render.ts")
	require.Contains(t, r.Output, `Argument of type '"picker"' is not assignable to parameter of type 'never'`)
}

// A new contact type in the spec reaches the widget's type check: after
// regenerating, tsc fails until the switch handles it. Changes to internal
// operations do not touch the app's client at all.
func TestSpecChangesReachTheTypeCheck(t *testing.T) {
	t.Parallel()
	dir := webtest.CopyWeb(t)
	spec := filepath.Join(dir, "..", "openapi", "openapi.yaml")
	b, err := os.ReadFile(spec)
	require.NoError(t, err)
	original := string(b)

	internalOnly := strings.Replace(original, "  /internal/eats-orders-tracking/v1/experiments:\n",
		"  /internal/eats-orders-tracking/v1/something-new:\n    get:\n      operationId: somethingNew\n      tags: [internal]\n      responses:\n        \"204\":\n          description: No Content\n  /internal/eats-orders-tracking/v1/experiments:\n", 1)
	require.NotEqual(t, original, internalOnly)
	require.NoError(t, os.WriteFile(spec, []byte(internalOnly), 0o644))
	r := webtest.Node(dir, 2*time.Minute, "scripts/check-generated.mjs")
	require.NoError(t, r.Err, "an internal operation is not part of the app's client:\n%s", r.Output)

	const enum = "    TrackedOrderButtonContactType:\n      description: Whom a call button calls.\n      enum:\n        - courier\n        - place\n        - picker\n"
	require.Contains(t, original, enum, "the spec declares the named enum")
	withRobot := strings.Replace(original, enum, enum+"        - robot\n", 1)
	require.NoError(t, os.WriteFile(spec, []byte(withRobot), 0o644))
	r = webtest.Node(dir, 2*time.Minute, "scripts/check-generated.mjs")
	require.Error(t, r.Err, "a new enum value changes the app's client:\n%s", r.Output)

	r = webtest.Node(dir, 2*time.Minute, "scripts/generate.mjs")
	require.NoError(t, r.Err, r.Output)
	r = webtest.Tsc(dir)
	require.Error(t, r.Err, "tsc must fail until the widget handles robot:\n%s", r.Output)
	require.Contains(t, r.Output, `Argument of type '"robot"' is not assignable to parameter of type 'never'`)
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}
