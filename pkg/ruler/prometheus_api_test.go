package ruler

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// apiGet calls handler for the tenant (none if "") and returns the status and decoded body.
func apiGet(t *testing.T, handler http.HandlerFunc, tenantID, path string, query url.Values) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path+"?"+query.Encode(), nil)
	if tenantID != "" {
		req = req.WithContext(tenant.NewContext(req.Context(), tenantID))
	}
	rec := httptest.NewRecorder()
	handler(rec, req)
	var body map[string]any
	if rec.Header().Get("Content-Type") == "application/json" {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	}
	return rec.Code, body
}

// ruleNames returns "file/group/rule type" of every rule in a /rules answer.
func ruleNames(t *testing.T, body map[string]any) []string {
	t.Helper()
	require.Equal(t, "success", body["status"])
	var names []string
	for _, g := range body["data"].(map[string]any)["groups"].([]any) {
		group := g.(map[string]any)
		for _, r := range group["rules"].([]any) {
			rule := r.(map[string]any)
			names = append(names, group["file"].(string)+"/"+group["name"].(string)+"/"+rule["name"].(string)+" "+rule["type"].(string))
		}
	}
	return names
}

func TestPrometheusAPI_RulesAndAlerts(t *testing.T) {
	db := openTSDB(t, testSample{labels.FromStrings("__name__", "errors", "job", "api"), time.Now().Add(-5 * time.Second), 2})
	r := newTestRuler(t, testConfig(t), nil, map[string]storage.Queryable{"tenant-a": db, "tenant-b": openTSDB(t)}, Dependencies{})
	r.setGroup(t, "tenant-a", "team/one", rulefmt.RuleGroup{Name: "g1", Rules: []rulefmt.Rule{
		{Record: "job:errors:sum", Expr: "sum by (job) (errors)"},
		{Alert: "Errors", Expr: "errors > 1", Labels: map[string]string{"severity": "page"}, Annotations: map[string]string{"summary": "errors"}},
	}})
	r.setGroup(t, "tenant-a", "two", recordingGroup("g2", 0, recordRule("other", "vector(1)")))
	r.setGroup(t, "tenant-b", "b", recordingGroup("gb", 0, recordRule("b_rule", "vector(1)")))
	r.sync(t)
	require.Eventually(t, func() bool {
		alerts := r.alerts("tenant-a", "Errors")
		return len(alerts) == 1 && len(r.pusher.samplesOf("other")) > 0 && len(r.pusher.samplesOf("job:errors:sum")) > 0
	}, waitFor, 10*time.Millisecond)

	code, body := apiGet(t, r.ServeRules, "tenant-a", RulesPath, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []string{"team/one/g1/job:errors:sum recording", "team/one/g1/Errors alerting", "two/g2/other recording"}, ruleNames(t, body))

	group := body["data"].(map[string]any)["groups"].([]any)[0].(map[string]any)
	require.Equal(t, testInterval.Seconds(), group["interval"])
	require.NotEqual(t, "0001-01-01T00:00:00Z", group["lastEvaluation"])
	recording := group["rules"].([]any)[0].(map[string]any)
	require.Equal(t, "ok", recording["health"])
	require.Equal(t, `sum by (job) (errors)`, recording["query"])
	require.NotContains(t, recording, "lastError")
	alerting := group["rules"].([]any)[1].(map[string]any)
	require.Equal(t, "firing", alerting["state"])
	require.Equal(t, map[string]any{"severity": "page"}, alerting["labels"])
	require.Equal(t, map[string]any{"summary": "errors"}, alerting["annotations"])
	alert := alerting["alerts"].([]any)[0].(map[string]any)
	require.Equal(t, map[string]any{"alertname": "Errors", "job": "api", "severity": "page"}, alert["labels"])
	require.Equal(t, "firing", alert["state"])
	require.Equal(t, "2e+00", alert["value"])
	require.NotEmpty(t, alert["activeAt"])

	for name, tc := range map[string]struct {
		query url.Values
		want  []string
	}{
		"type alert":   {url.Values{"type": {"alert"}}, []string{"team/one/g1/Errors alerting"}},
		"type record":  {url.Values{"type": {"RECORD"}}, []string{"team/one/g1/job:errors:sum recording", "two/g2/other recording"}},
		"rule group":   {url.Values{"rule_group[]": {"g2"}}, []string{"two/g2/other recording"}},
		"file":         {url.Values{"file[]": {"team/one"}}, []string{"team/one/g1/job:errors:sum recording", "team/one/g1/Errors alerting"}},
		"rule name":    {url.Values{"rule_name[]": {"other", "Errors"}}, []string{"team/one/g1/Errors alerting", "two/g2/other recording"}},
		"no match":     {url.Values{"file[]": {"nope"}}, nil},
		"combined":     {url.Values{"type": {"record"}, "file[]": {"team/one"}}, []string{"team/one/g1/job:errors:sum recording"}},
		"name in file": {url.Values{"rule_name[]": {"other"}, "file[]": {"team/one"}}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			code, body := apiGet(t, r.ServeRules, "tenant-a", RulesPath, tc.query)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, tc.want, ruleNames(t, body))
		})
	}

	_, body = apiGet(t, r.ServeRules, "tenant-a", RulesPath, url.Values{"exclude_alerts": {"true"}, "type": {"alert"}})
	alerting = body["data"].(map[string]any)["groups"].([]any)[0].(map[string]any)["rules"].([]any)[0].(map[string]any)
	require.Equal(t, []any{}, alerting["alerts"])

	code, body = apiGet(t, r.ServeAlerts, "tenant-a", AlertsPath, nil)
	require.Equal(t, http.StatusOK, code)
	alerts := body["data"].(map[string]any)["alerts"].([]any)
	require.Len(t, alerts, 1)
	require.Equal(t, "Errors", alerts[0].(map[string]any)["labels"].(map[string]any)["alertname"])

	// Another tenant sees only its own; a tenant without rules gets empty lists.
	_, body = apiGet(t, r.ServeRules, "tenant-b", RulesPath, nil)
	require.Equal(t, []string{"b/gb/b_rule recording"}, ruleNames(t, body))
	_, body = apiGet(t, r.ServeAlerts, "tenant-b", AlertsPath, nil)
	require.Equal(t, []any{}, body["data"].(map[string]any)["alerts"])
	_, body = apiGet(t, r.ServeRules, "nobody", RulesPath, nil)
	require.Equal(t, map[string]any{"groups": []any{}}, body["data"])
}

func TestPrometheusAPI_RejectsBadRequests(t *testing.T) {
	r := newTestRuler(t, testConfig(t), nil, nil, Dependencies{})

	code, body := apiGet(t, r.ServeRules, "tenant-a", RulesPath, url.Values{"type": {"both"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "error", body["status"])
	require.Equal(t, "bad_data", body["errorType"])
	require.Contains(t, body["error"], `unsupported type "both"`)

	code, _ = apiGet(t, r.ServeRules, "tenant-a", RulesPath, url.Values{"exclude_alerts": {"maybe"}})
	require.Equal(t, http.StatusBadRequest, code)

	code, _ = apiGet(t, r.ServeRules, "", RulesPath, nil)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = apiGet(t, r.ServeAlerts, "", AlertsPath, nil)
	require.Equal(t, http.StatusUnauthorized, code)

	rec := httptest.NewRecorder()
	r.ServeAlerts(rec, httptest.NewRequest(http.MethodPost, AlertsPath, nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
}

// The durations of an alerting rule are reported in seconds, as Prometheus does.
func TestPrometheusAPI_AlertingRuleDurations(t *testing.T) {
	r := newTestRuler(t, testConfig(t), nil, map[string]storage.Queryable{"tenant-a": openTSDB(t)}, Dependencies{})
	r.setGroup(t, "tenant-a", "ns", rulefmt.RuleGroup{Name: "g", Rules: []rulefmt.Rule{{
		Alert: "Never", Expr: "vector(1) < 0", For: model.Duration(5 * time.Minute), KeepFiringFor: model.Duration(time.Minute),
	}}})
	r.sync(t)
	_, body := apiGet(t, r.ServeRules, "tenant-a", RulesPath, nil)
	rule := body["data"].(map[string]any)["groups"].([]any)[0].(map[string]any)["rules"].([]any)[0].(map[string]any)
	require.Equal(t, 300.0, rule["duration"])
	require.Equal(t, 60.0, rule["keepFiringFor"])
	require.Equal(t, []any{}, rule["alerts"])
}

func TestSortedGroups_ByNamespaceNotByFileName(t *testing.T) {
	group := func(namespace, name string) *rules.Group {
		return rules.NewGroup(rules.GroupOptions{Name: name, File: filepath.Join("dir", ruleFileName(namespace))})
	}
	// "ж" encodes to "0LY", which sorts before "YQ" ("a"); the namespaces sort the other way.
	groups := sortedGroups([]*rules.Group{group("ж", "g"), group("a", "y"), group("a", "x")})
	var names []string
	for _, g := range groups {
		names = append(names, namespaceOfFile(g.File())+"/"+g.Name())
	}
	require.Equal(t, []string{"a/x", "a/y", "ж/g"}, names)
}
