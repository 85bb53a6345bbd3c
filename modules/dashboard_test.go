package modules_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/pickerupdater"
	"github.com/eats/eats-orders-tracking/modules/pickerupdater/pickerfake"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// The operator's files under deploy/ (docs/runbook.md says what each alert
// means and what to do).
const (
	dashboardFile  = "deploy/grafana/eats-orders-tracking.json"
	alertsFile     = "deploy/prometheus/alerts.yaml"
	alertsTestFile = "deploy/prometheus/alerts_test.yaml"
	runbookFile    = "docs/runbook.md"
)

// The dashboard and the alerts name only series the service exports: an
// instance with every module on (the picker updater too, against a fake
// eats-picker-orders) is driven once through each path, so every vector
// has a sample, and each name in a panel, a template variable or an alert
// must be in its /metrics.
func TestDashboardAndAlertsNameOnlyExportedSeries(t *testing.T) {
	t.Parallel()
	used := usedSeries(t)
	require.NotEmpty(t, used)

	fake := pickerfake.New()
	fake.Start()
	t.Cleanup(fake.Close)
	a := apptest.Start(t, map[string]string{"PICKER_ORDERS_URL": fake.URL()})

	// A picker event: ingest, group commit, the phone cache, River's job
	// metrics.
	const orderNr = "dash-1"
	event := fmt.Sprintf(`{"event_type":"STATUS_CHANGE","order_nr":%q,"order_status":"picking","place_id":"40","picker_id":"picker-7","created_at":%q}`,
		orderNr, time.Now().UTC().Format(time.RFC3339))
	code, _, body := a.Do(t, http.MethodPost, "/internal/eats-orders-tracking/v1/picker-orders/events", strings.NewReader(event),
		map[string]string{"Authorization": "Bearer " + apptest.Token, "Content-Type": "application/json"})
	require.Equal(t, http.StatusAccepted, code, string(body))
	// A refresh: the updater's call to eats-picker-orders.
	fake.Set(orderNr, pickerfake.Order{Status: "picking", PickerID: "picker-7", PlaceID: 40})
	_, err := a.Client.Insert(t.Context(), pickerupdater.RefreshArgs{OrderNr: orderNr}, nil)
	require.NoError(t, err)
	// A tracking read: the presenter and the state cache.
	code, body = a.Get(t, "/eats/v1/eats-orders-tracking/v1/tracking", map[string]string{"X-Eats-User": "user_id=dash-eater"})
	require.Equal(t, http.StatusOK, code, string(body))

	// The jobs run asynchronously: wait for their samples.
	var missing []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		missing = missingSeries(used, exportedSeries(t, a))
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	require.Empty(t, missing, "series used but not in /metrics of an instance with every module on")
}

// The check itself: a made-up name, and a histogram's base name (not a
// series: only its _bucket, _sum and _count are), are reported.
func TestDashboardCheckReportsSeriesNotExported(t *testing.T) {
	t.Parallel()
	used := map[string][]string{}
	for where, expr := range map[string]string{
		"made up":   `sum(rate(eot_made_up_total[5m]))`,
		"base name": `histogram_quantile(0.99, sum by (le) (rate(eot_http_request_duration_seconds[$__rate_interval])))`,
		"fine":      `sum(rate(eot_http_request_duration_seconds_count{code=~"5..",instance=~"$instance"}[$__rate_interval])) / sum(eot_ready)`,
	} {
		addSeries(t, used, where, expr)
	}
	exported := familyNames(map[string]*dto.MetricFamily{
		"eot_http_request_duration_seconds": {Type: dto.MetricType_HISTOGRAM.Enum()},
		"eot_ready":                         {Type: dto.MetricType_GAUGE.Enum()},
	})
	require.Equal(t, []string{
		"eot_http_request_duration_seconds (base name)",
		"eot_made_up_total (made up)",
	}, missingSeries(used, exported))
}

// Every alert has a severity, a summary, a description and a runbook_url
// that names a section of docs/runbook.md, and alerts_test.yaml shows it
// both firing and not firing.
func TestDashboardAlertsAreLinkedAndTested(t *testing.T) {
	t.Parallel()
	anchors := runbookAnchors(t)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, g := range readAlertTests(t).Tests {
		for _, c := range g.AlertRuleTest {
			if len(c.ExpAlerts) > 0 {
				fires[c.Alertname] = true
			} else {
				quiet[c.Alertname] = true
			}
		}
	}
	for _, r := range alertRules(t) {
		require.Contains(t, []string{"page", "ticket"}, r.Labels["severity"], r.Alert)
		require.NotEmpty(t, r.Annotations["summary"], r.Alert)
		require.NotEmpty(t, r.Annotations["description"], r.Alert)
		url := r.Annotations["runbook_url"]
		anchor, ok := strings.CutPrefix(url, runbookFile+"#")
		require.True(t, ok, "%s: runbook_url %q is not %s#<section>", r.Alert, url, runbookFile)
		require.True(t, anchors[anchor], "%s: %s has no section #%s", r.Alert, runbookFile, anchor)
		require.True(t, fires[r.Alert], "%s: no test in %s makes it fire", r.Alert, alertsTestFile)
		require.True(t, quiet[r.Alert], "%s: no test in %s shows it not firing", r.Alert, alertsTestFile)
	}
}

// grafanaDashboard is the part of Grafana's dashboard JSON the checks read.
type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	// Panels are a collapsed row's.
	Panels []grafanaPanel `json:"panels"`
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type alertTests struct {
	Tests []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readRepoFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pgtest.RepoRoot(), name))
	require.NoError(t, err)
	return b
}

// readDashboard parses the dashboard and checks its shape: Grafana's
// schema 39, panel ids unique, every panel with a query.
func readDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(readRepoFile(t, dashboardFile), &d), dashboardFile)
	require.NotEmpty(t, d.UID, "uid")
	require.NotEmpty(t, d.Title, "title")
	require.Equal(t, 39, d.SchemaVersion, "schemaVersion")
	ids := map[int]bool{}
	var check func([]grafanaPanel)
	check = func(ps []grafanaPanel) {
		for _, p := range ps {
			require.False(t, ids[p.ID], "panel id %d used twice", p.ID)
			ids[p.ID] = true
			check(p.Panels)
			if p.Type == "row" {
				continue
			}
			require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				require.NotEmpty(t, tg.Expr, "panel %q: query %s is empty", p.Title, tg.RefID)
				require.False(t, refs[tg.RefID], "panel %q: refId %s used twice", p.Title, tg.RefID)
				refs[tg.RefID] = true
			}
		}
	}
	check(d.Panels)
	return d
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(readRepoFile(t, alertsFile), &f), alertsFile)
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	require.NotEmpty(t, rules)
	return rules
}

func readAlertTests(t *testing.T) alertTests {
	t.Helper()
	var f alertTests
	require.NoError(t, yaml.Unmarshal(readRepoFile(t, alertsTestFile), &f), alertsTestFile)
	return f
}

// labelValues is the Grafana variable query that lists a label's values
// in the series a selector selects.
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_]\w*\)$`)

// usedSeries maps each metric name the dashboard and the alerts select to
// where it is used.
func usedSeries(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	d := readDashboard(t)
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				addSeries(t, used, fmt.Sprintf("panel %q %s", p.Title, tg.RefID), tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		require.NotNil(t, m, "variable %s: only label_values(selector, label) is understood here (got %q)", v.Name, v.Definition)
		addSeries(t, used, "variable "+v.Name, m[1])
	}
	for _, r := range alertRules(t) {
		addSeries(t, used, "alert "+r.Alert+r.Record, r.Expr)
	}
	return used
}

// addSeries parses a PromQL expression (Grafana's $variables included) and
// records the metric names it selects. A selector without a plain name
// cannot be checked, so it fails the test.
func addSeries(t *testing.T, used map[string][]string, where, expr string) {
	t.Helper()
	e, err := metricsql.Parse(expr)
	require.NoError(t, err, "%s: %s", where, expr)
	metricsql.VisitAll(e, func(n metricsql.Expr) {
		me, ok := n.(*metricsql.MetricExpr)
		if !ok {
			return
		}
		for _, lfs := range me.LabelFilterss {
			i := slices.IndexFunc(lfs, func(lf metricsql.LabelFilter) bool { return lf.Label == "__name__" })
			require.True(t, i >= 0 && !lfs[i].IsRegexp && !lfs[i].IsNegative, "%s: a selector without a metric name: %s", where, expr)
			used[lfs[i].Value] = append(used[lfs[i].Value], where)
		}
	})
}

// exportedSeries reads the instance's /metrics as Prometheus scrapes it.
func exportedSeries(t *testing.T, a *apptest.App) map[string]bool {
	t.Helper()
	code, body := a.Get(t, "/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err)
	return familyNames(families)
}

// familyNames are the series names a scrape stores for the families that
// have a sample: a histogram is only its _bucket, _sum and _count.
func familyNames(families map[string]*dto.MetricFamily) map[string]bool {
	names := map[string]bool{}
	for name, f := range families {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	return names
}

// missingSeries lists the used names not exported, each with where it is
// first used, sorted.
func missingSeries(used map[string][]string, exported map[string]bool) []string {
	var missing []string
	for name, where := range used {
		if !exported[name] {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, where[0]))
		}
	}
	slices.Sort(missing)
	return missing
}

// runbookAnchors are the runbook's section anchors as GitHub renders them:
// the heading in lower case, spaces as hyphens, punctuation dropped.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	anchors := map[string]bool{}
	for line := range strings.Lines(string(readRepoFile(t, runbookFile))) {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			h = strings.TrimSpace(strings.TrimLeft(h, "#"))
			anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
		}
	}
	return anchors
}
