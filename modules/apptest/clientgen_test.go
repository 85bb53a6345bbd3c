package apptest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/orderingest"
	"github.com/eats/eats-orders-tracking/modules/tracking"
)

// excludedOperations are operation ids oapi-codegen cannot express, left out
// of the generated client (README, "The app's client generator"). None now.
var excludedOperations = []string{}

// runtimeModules are what the generated client imports (the runtime and
// its own requirements); their versions come from tools/oapi.mod.
var runtimeModules = []string{
	"github.com/oapi-codegen/runtime",
	"github.com/google/uuid",
	"github.com/apapsch/go-jsonmerge/v2",
}

// The served OpenAPI 3.0 document is usable by a generator other than the
// widget's: oapi-codegen (pinned in tools/oapi.mod) generates a Go client
// into a temporary module, and testdata/clientgen/main.go drives a running
// instance with it (events through the internal route, the tracking answer
// decoded into the generated types, a 422 naming errors[].location).
func TestGeneratedGoClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds oapi-codegen and a program (about 1.5 min cold)")
	}
	root := repoRoot(t)
	a := apptest.Start(t, nil)

	code, spec := a.Get(t, "/openapi-3.0.yaml", nil)
	require.Equal(t, 200, code, string(spec))
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "openapi-3.0.yaml"), spec, 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "eot"), 0o755))
	cfg := fmt.Sprintf("package: eot\ngenerate:\n  models: true\n  client: true\noutput: %s\n",
		filepath.Join(dir, "eot", "eot.gen.go"))
	if len(excludedOperations) > 0 {
		cfg += "output-options:\n  exclude-operation-ids: [" + strings.Join(excludedOperations, ", ") + "]\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "oapi-codegen.yaml"), []byte(cfg), 0o644))
	goCmd(t, root, nil, "tool", "-modfile=tools/oapi.mod", "oapi-codegen",
		"-config", filepath.Join(dir, "oapi-codegen.yaml"), filepath.Join(dir, "openapi-3.0.yaml"))

	// A module of its own, no replace: the runtime at tools/oapi.mod's
	// versions, whose checksums tools/oapi.sum already holds.
	toolMod, err := os.ReadFile(filepath.Join(root, "tools", "oapi.mod"))
	require.NoError(t, err)
	var mod strings.Builder
	mod.WriteString("module eotclient\n\ngo 1.26.0\n\nrequire (\n")
	for _, m := range runtimeModules {
		v := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(m) + `\s+(\S+)`).FindSubmatch(toolMod)
		require.NotNil(t, v, "%s is not in tools/oapi.mod", m)
		fmt.Fprintf(&mod, "\t%s %s\n", m, v[1])
	}
	mod.WriteString(")\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod.String()), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "tools", "oapi.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
	program, err := os.ReadFile(filepath.Join("testdata", "clientgen", "main.go"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), program, 0o644))

	// The order itself comes from the order pipeline (no HTTP route).
	_, err = a.Client.Insert(context.Background(), orderingest.OrderArgs{
		OrderNr: "gen-1", EaterID: "gen-eater", FlowType: tracking.FlowRetail, Status: tracking.OrderPlaceConfirmed,
		Place: &orderingest.Place{ID: "40", Name: "Shop 40"}, ETA: time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		CreatedAt: time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339Nano),
	}, nil)
	require.NoError(t, err)

	out := goCmd(t, dir, []string{"GOFLAGS=-mod=mod", "GOWORK=off", "EOT_URL=" + a.URL, "EOT_TOKEN=" + apptest.Token, "EOT_EATER=gen-eater", "EOT_ORDER=gen-1"},
		"run", ".")
	t.Logf("the program printed: %s", out)
	var got struct {
		JobIDs       []int64         `json:"jobIds"`
		Tracking     json.RawMessage `json:"tracking"`
		Raw          json.RawMessage `json:"raw"`
		CacheControl string          `json:"cacheControl"`
		BadStatus    int             `json:"badStatus"`
		BadProblem   struct {
			Status int `json:"status"`
			Errors []struct {
				Location string `json:"location"`
				Message  string `json:"message"`
			} `json:"errors"`
		} `json:"badProblem"`
	}
	require.NoError(t, json.Unmarshal(out, &got), string(out))

	require.Len(t, got.JobIDs, 2)
	require.NotZero(t, got.JobIDs[0])
	require.Equal(t, "no-store", got.CacheControl)
	// Every field of the answer survives the generated types: re-encoded,
	// they say exactly what the server sent.
	require.JSONEq(t, string(got.Raw), string(got.Tracking))
	var r struct {
		Meta    struct{ CheckAfter, Count int } `json:"meta"`
		Payload struct {
			TrackedOrders []struct {
				Status, Title, Description string
				CheckAfter                 int `json:"checkAfter"`
				Order                      struct {
					OrderNr, FlowType, Status string
					CreatedAt, ETA            time.Time
				} `json:"order"`
				Place   struct{ ID, Name string } `json:"place"`
				Actions []struct {
					Type, Title string
					Payload     struct {
						ContactType string `json:"contact_type"`
						Phone       string `json:"phone"`
					} `json:"payload"`
				} `json:"actions"`
				Banners *struct {
					Design  string `json:"design"`
					Banners []struct{ ID, Kind, Text, AppLink string }
				} `json:"banners"`
			} `json:"trackedOrders"`
		} `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(got.Tracking, &r))
	require.Equal(t, 15, r.Meta.CheckAfter)
	require.Equal(t, 1, r.Meta.Count)
	o := r.Payload.TrackedOrders[0]
	require.Equal(t, "picker_call", o.Status)
	require.NotEmpty(t, o.Title)
	require.NotEmpty(t, o.Description)
	require.Equal(t, 15, o.CheckAfter)
	require.Equal(t, "gen-1", o.Order.OrderNr)
	require.Equal(t, "retail", o.Order.FlowType)
	require.Equal(t, "place_confirmed", o.Order.Status)
	require.False(t, o.Order.CreatedAt.IsZero())
	require.False(t, o.Order.ETA.IsZero())
	require.Equal(t, "40", o.Place.ID)
	require.Equal(t, "Shop 40", o.Place.Name)
	require.NotEmpty(t, o.Actions)
	require.Equal(t, "call", o.Actions[0].Type)
	require.NotEmpty(t, o.Actions[0].Title)
	require.Equal(t, "picker", o.Actions[0].Payload.ContactType)
	require.Equal(t, "+79991234567,42", o.Actions[0].Payload.Phone)
	require.NotNil(t, o.Banners)
	require.Equal(t, "wide_and_short", o.Banners.Design)
	require.NotEmpty(t, o.Banners.Banners)
	require.Equal(t, "retail_forgot_item", o.Banners.Banners[0].ID)
	require.Equal(t, "info", o.Banners.Banners[0].Kind)
	require.NotEmpty(t, o.Banners.Banners[0].Text)

	require.Equal(t, 422, got.BadStatus)
	require.Equal(t, 422, got.BadProblem.Status)
	var locations []string
	for _, e := range got.BadProblem.Errors {
		locations = append(locations, e.Location)
	}
	require.Contains(t, locations, "body.order_nr", "%s", out)
}

// goCmd runs the go command in dir with env added and returns its standard
// output. The temporary module resolves what it lacks itself (-mod=mod),
// from the module cache or GOPROXY; tools/oapi.mod is only read.
func goCmd(t *testing.T, dir string, env []string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	require.NoError(t, err, "go %s:\n%s%s", strings.Join(args, " "), stderr.String(), out)
	t.Logf("go %s: %s", args[0], time.Since(start).Round(time.Millisecond))
	return out
}

// repoRoot is the folder holding go.mod and tools/.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "oapi.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "tools/oapi.mod not found above the test")
		dir = parent
	}
}
