package integration

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

const (
	dashboardsDir  = "../production/dashboards"
	alertsFile     = "../production/alerts/strata-alerts.yaml"
	alertTestsFile = "../production/alerts/strata-alerts.test.yaml"
	runbooksFile   = "../docs/runbooks.md"
)

// grafanaVariables are the values this test gives the dashboards' template variables, as Grafana would
// substitute them: the scrape job of the test's Prometheus, "All" tenants, a rate window of four scrapes.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "1m",
	"$__interval", "15s",
	"$__range", "1h",
	"${job}", "strata",
	"$job", "strata",
	"${tenant}", ".+",
	"$tenant", ".+",
)

// waitForSelfScrapes waits until Strata holds three scrapes of its own metrics taken after the given
// time, so that every rate over the activity has samples to compare. Prometheus' remote write sends only
// what it scraped after its WAL watcher started, so early scrapes may never arrive: the samples are
// counted, not just the newest one looked at.
func waitForSelfScrapes(t *testing.T, s *strataProcess, after time.Time) {
	t.Helper()
	pollUntil(t, 30*time.Second, "three scrapes of Strata's own metrics, remote-written by Prometheus", func() (bool, string) {
		var m []matrixSeries
		code, resp := getAPI(t, s.url("/prometheus"), "/api/v1/query", monitoringTenant, url.Values{"query": {`up{job="strata"}[1m]`}})
		if code != http.StatusOK || json.Unmarshal(resp.Data, &queryResult{Result: &m}) != nil || len(m) != 1 {
			return false, fmt.Sprintf("%d %s", code, resp.Error)
		}
		n := 0
		for _, v := range m[0].Values {
			if v.millis(t) > after.UnixMilli() {
				n++
			}
		}
		return n >= 3, fmt.Sprintf("%d scrapes after %s", n, after.Format(time.RFC3339Nano))
	})
}

// instantQuery runs expr as the monitoring tenant and returns the number of series or samples in its
// answer, or the error Strata gave.
func instantQuery(t *testing.T, s *strataProcess, expr string) (int, error) {
	t.Helper()
	code, resp := getAPI(t, s.url("/prometheus"), "/api/v1/query", monitoringTenant, url.Values{"query": {expr}})
	if code != http.StatusOK {
		return 0, fmt.Errorf("%d %s: %s", code, resp.ErrorType, resp.Error)
	}
	var res struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(resp.Data, &res); err != nil {
		return 0, fmt.Errorf("answer %s: %w", resp.Data, err)
	}
	return len(res.Result), nil
}

// dashboardTarget is one query of one panel, with where it comes from.
type dashboardTarget struct {
	where, expr string
	datasource  map[string]any
}

// checkDashboards runs every panel query of every dashboard; each must return data.
func checkDashboards(t *testing.T, s *strataProcess) {
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no dashboards in %s", dashboardsDir)
	var failed []string
	queries := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		var d struct {
			Title      string           `json:"title"`
			Panels     []map[string]any `json:"panels"`
			Templating struct {
				List []struct {
					Name       string         `json:"name"`
					Type       string         `json:"type"`
					Query      any            `json:"query"`
					Datasource map[string]any `json:"datasource"`
				} `json:"list"`
			} `json:"templating"`
		}
		require.NoError(t, json.Unmarshal(data, &d), file)
		vars := map[string]bool{}
		for _, v := range d.Templating.List {
			vars[v.Name] = true
			if v.Type != "query" {
				continue
			}
			require.Equal(t, "${datasource}", v.Datasource["uid"], "%s: variable %s", d.Title, v.Name)
			query, _ := v.Query.(string)
			if err := checkLabelValuesVariable(t, s, query); err != nil {
				failed = append(failed, fmt.Sprintf("%s: variable %s: %s: %v", d.Title, v.Name, query, err))
			}
		}
		require.True(t, vars["datasource"] && vars["job"], "%s: needs the datasource and job variables", d.Title)

		targets := panelTargets(d.Title, d.Panels)
		require.NotEmpty(t, targets, "%s has no queries", d.Title)
		for _, tg := range targets {
			queries++
			require.Equal(t, "${datasource}", tg.datasource["uid"], "%s: data source", tg.where)
			require.Contains(t, tg.expr, `job=~"$job"`, "%s: every query selects Strata's processes with $job", tg.where)
			expr := grafanaVariables.Replace(tg.expr)
			n, err := instantQuery(t, s, expr)
			switch {
			case err != nil:
				failed = append(failed, fmt.Sprintf("%s: %s: %v", tg.where, expr, err))
			case n == 0:
				failed = append(failed, fmt.Sprintf("%s: %s: no data", tg.where, expr))
			}
		}
	}
	t.Logf("%d panel queries in %d dashboards", queries, len(files))
	require.Empty(t, failed, "dashboard queries that do not return data:\n%s", strings.Join(failed, "\n"))
}

// panelTargets collects the queries of panels, and of the panels of collapsed rows.
func panelTargets(dashboard string, panels []map[string]any) []dashboardTarget {
	var out []dashboardTarget
	for _, p := range panels {
		title, _ := p["title"].(string)
		where := dashboard + " / " + title
		targets, _ := p["targets"].([]any)
		for _, raw := range targets {
			tg, _ := raw.(map[string]any)
			expr, _ := tg["expr"].(string)
			ds, _ := tg["datasource"].(map[string]any)
			out = append(out, dashboardTarget{where: where, expr: expr, datasource: ds})
		}
		if nested, ok := p["panels"].([]any); ok {
			var children []map[string]any
			for _, c := range nested {
				if m, ok := c.(map[string]any); ok {
					children = append(children, m)
				}
			}
			out = append(out, panelTargets(dashboard, children)...)
		}
	}
	return out
}

var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// checkLabelValuesVariable asks Strata's label values API what Grafana asks for a label_values(selector,
// label) variable.
func checkLabelValuesVariable(t *testing.T, s *strataProcess, query string) error {
	m := labelValuesQuery.FindStringSubmatch(query)
	if m == nil {
		return fmt.Errorf("not a label_values(selector, label) query")
	}
	var values []string
	code, resp := getAPI(t, s.url("/prometheus"), "/api/v1/label/"+m[2]+"/values", monitoringTenant,
		url.Values{"match[]": {grafanaVariables.Replace(m[1])}})
	if code != http.StatusOK {
		return fmt.Errorf("%d %s", code, resp.Error)
	}
	if err := json.Unmarshal(resp.Data, &values); err != nil {
		return err
	}
	if len(values) == 0 {
		return fmt.Errorf("no values")
	}
	return nil
}

// checkAlerts checks the alerting rules with promtool, that each has a unit test in which it fires on its
// trouble (make check-dashboards runs them), and against Strata: every expression parses in
// Strata's query API and returns nothing (the cluster is healthy: no alert fires), and every metric
// selector in it returns data, or, when a matcher picks a value that only trouble produces
// (status=~"5..", state="unhealthy"), the metric exists with that label. Each alert links to a runbook
// section.
func checkAlerts(t *testing.T, s *strataProcess) {
	out, err := exec.Command("promtool", "check", "rules", alertsFile).CombinedOutput()
	require.NoError(t, err, "promtool check rules %s:\n%s", alertsFile, out)

	groups, errs := rulefmt.ParseFile(alertsFile, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	require.Empty(t, errs)
	anchors := runbookAnchors(t)
	unitTested := firingUnitTests(t)
	p := parser.NewParser(parser.Options{})
	var failed []string
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "group %s holds a recording rule; this file is for alerts", g.Name)
			alerts++
			url := r.Annotations["runbook_url"]
			_, anchor, _ := strings.Cut(url, "#")
			require.Equal(t, strings.ToLower(r.Alert), anchor, "%s: runbook_url %q", r.Alert, url)
			require.True(t, strings.HasSuffix(strings.TrimSuffix(url, "#"+anchor), "/docs/runbooks.md"), "%s: runbook_url %q", r.Alert, url)
			require.True(t, anchors[anchor], "%s: docs/runbooks.md has no section #%s", r.Alert, anchor)
			require.NotEmpty(t, r.Labels["severity"], "%s: severity label", r.Alert)
			require.True(t, unitTested[r.Alert], "%s: %s has no test in which it fires", r.Alert, alertTestsFile)

			// The test's cluster is healthy: an alert that fires there is wrong.
			if n, err := instantQuery(t, s, r.Expr); err != nil || n > 0 {
				failed = append(failed, fmt.Sprintf("%s: %d series fire in a healthy cluster, err %v", r.Alert, n, err))
				continue
			}
			expr, err := p.ParseExpr(r.Expr)
			require.NoError(t, err, r.Alert)
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				vs, ok := node.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				if err := checkSelector(t, s, vs); err != nil {
					failed = append(failed, fmt.Sprintf("%s: %s: %v", r.Alert, vs, err))
				}
				return nil
			})
		}
	}
	t.Logf("%d alerts", alerts)
	require.Empty(t, failed, "alert selectors without data:\n%s", strings.Join(failed, "\n"))
}

// checkSelector requires a selector to return data or, failing that, its metric to exist with every label
// its matchers name.
func checkSelector(t *testing.T, s *strataProcess, vs *parser.VectorSelector) error {
	if n, err := instantQuery(t, s, vs.String()); err != nil || n > 0 {
		return err
	}
	var present []string
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			present = append(present, m.String())
		} else {
			present = append(present, m.Name+`!=""`)
		}
	}
	relaxed := "{" + strings.Join(present, ", ") + "}"
	n, err := instantQuery(t, s, relaxed)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no data, not even for %s", relaxed)
	}
	t.Logf("%s: no data while healthy; %s has", vs, relaxed)
	return nil
}

// runbookAnchors returns the anchors GitHub gives the second-level headings of docs/runbooks.md.
func runbookAnchors(t *testing.T) map[string]bool {
	data, err := os.ReadFile(runbooksFile)
	require.NoError(t, err)
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(string(data), "\n") {
		if heading, ok := strings.CutPrefix(line, "## "); ok {
			anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(strings.TrimSpace(heading)), ""), " ", "-")] = true
		}
	}
	return anchors
}

// firingUnitTests returns the alerts that strata-alerts.test.yaml (promtool's unit tests, run by make
// check-dashboards) expects to fire somewhere.
func firingUnitTests(t *testing.T) map[string]bool {
	data, err := os.ReadFile(alertTestsFile)
	require.NoError(t, err)
	var file struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(data, &file))
	out := map[string]bool{}
	for _, test := range file.Tests {
		for _, a := range test.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				out[a.Alertname] = true
			}
		}
	}
	return out
}

// loadAlertGroups stores the groups of strata-alerts.yaml as the monitoring tenant's rules, each as
// stratatool or the config API's users would.
func loadAlertGroups(t *testing.T, s *strataProcess) {
	t.Helper()
	data, err := os.ReadFile(alertsFile)
	require.NoError(t, err)
	var file struct {
		Groups []yaml.Node `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(data, &file))
	require.NotEmpty(t, file.Groups)
	for _, g := range file.Groups {
		group, err := yaml.Marshal(&g)
		require.NoError(t, err)
		loadRuleGroup(t, s, monitoringTenant, "strata-alerts", string(group))
	}
}

// checkAlertsInRuler waits until Strata's ruler has evaluated every alerting rule of the monitoring
// tenant, and requires each to be healthy and none to be pending or firing.
func checkAlertsInRuler(t *testing.T, s *strataProcess) {
	groups, errs := rulefmt.ParseFile(alertsFile, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	require.Empty(t, errs)
	want := 0
	for _, g := range groups.Groups {
		want += len(g.Rules)
	}
	type rule struct {
		Name           string    `json:"name"`
		Health         string    `json:"health"`
		LastError      string    `json:"lastError"`
		State          string    `json:"state"`
		LastEvaluation time.Time `json:"lastEvaluation"`
	}
	var rules []rule
	pollUntil(t, 30*time.Second, "every alerting rule evaluated by the ruler", func() (bool, string) {
		var out struct {
			Groups []struct {
				Rules []rule `json:"rules"`
			} `json:"groups"`
		}
		mustGetAPI(t, s.url(""), "/prometheus/api/v1/rules", monitoringTenant, nil, &out)
		rules = rules[:0]
		evaluated := 0
		for _, g := range out.Groups {
			for _, r := range g.Rules {
				rules = append(rules, r)
				if !r.LastEvaluation.IsZero() && r.Health != "unknown" {
					evaluated++
				}
			}
		}
		return len(rules) == want && evaluated == want, fmt.Sprintf("%d of %d rules, %d evaluated", len(rules), want, evaluated)
	})
	for _, r := range rules {
		require.Equal(t, "ok", r.Health, "%s: %s", r.Name, r.LastError)
		require.Equal(t, "inactive", r.State, "%s fires in a healthy cluster", r.Name)
	}
	require.Empty(t, rulerAlerts(t, s, monitoringTenant))
	t.Logf("%d alerting rules evaluated by the ruler, all healthy and inactive", len(rules))
}
