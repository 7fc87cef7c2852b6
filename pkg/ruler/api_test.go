package ruler

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
	"github.com/strata-metrics/strata/pkg/tenant"
)

type fixedLimits struct{ rulesPerGroup, groupsPerTenant int }

func (l fixedLimits) RulerMaxRulesPerRuleGroup(string) int   { return l.rulesPerGroup }
func (l fixedLimits) RulerMaxRuleGroupsPerTenant(string) int { return l.groupsPerTenant }

// defaultLimits are Mimir's defaults, as -ruler.max-rules-per-rule-group and
// -ruler.max-rule-groups-per-tenant set them.
var defaultLimits = fixedLimits{rulesPerGroup: 20, groupsPerTenant: 70}

func newTestAPI(t *testing.T, limits Limits) (*ConfigAPI, rulestore.Store) {
	t.Helper()
	store := rulestore.NewBucketStore(objstore.NewInMemBucket(), "rules", slog.New(slog.DiscardHandler))
	return NewConfigAPI(store, limits, slog.New(slog.DiscardHandler)), store
}

// do sends a request for tenantID ("" for none) to h; path is below ConfigRulesPath and already escaped.
func do(t *testing.T, h http.Handler, tenantID, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, ConfigRulesPath+path, r)
	if tenantID != "" {
		req = req.WithContext(tenant.NewContext(req.Context(), tenantID))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const groupG1 = `name: g1
interval: 1m
rules:
- record: job:up:sum
  expr: sum by (job) (up)
- alert: Down
  expr: up == 0
  for: 5m
  keep_firing_for: 1m
  labels:
    severity: page
  annotations:
    summary: "{{ $labels.job }} is down ({{ $value }})"
`

func decodeGroups(t *testing.T, body string) map[string][]rulefmt.RuleGroup {
	t.Helper()
	var m map[string][]rulefmt.RuleGroup
	require.NoError(t, yaml.Unmarshal([]byte(body), &m))
	return m
}

func mustGroup(t *testing.T, s string) rulefmt.RuleGroup {
	t.Helper()
	var g rulefmt.RuleGroup
	require.NoError(t, yaml.Unmarshal([]byte(s), &g))
	return g
}

func TestConfigAPI_EveryRoute(t *testing.T) {
	api, _ := newTestAPI(t, defaultLimits)
	g1 := mustGroup(t, groupG1)

	rec := do(t, api, "team-a", http.MethodPost, "/ns1", groupG1)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"status":"success","data":null,"errorType":"","error":""}`, rec.Body.String())
	require.Equal(t, http.StatusAccepted, do(t, api, "team-a", http.MethodPost, "/ns1", "name: g2\nrules:\n- record: a:b\n  expr: vector(1)\n").Code)
	require.Equal(t, http.StatusAccepted, do(t, api, "team-a", http.MethodPost, "/ns2", groupG1).Code)

	rec = do(t, api, "team-a", http.MethodGet, "/ns1/g1", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))
	require.Equal(t, g1, mustGroup(t, rec.Body.String()))

	rec = do(t, api, "team-a", http.MethodGet, "/ns2", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, map[string][]rulefmt.RuleGroup{"ns2": {g1}}, decodeGroups(t, rec.Body.String()))

	rec = do(t, api, "team-a", http.MethodGet, "", "")
	require.Equal(t, http.StatusOK, rec.Code)
	all := decodeGroups(t, rec.Body.String())
	require.Len(t, all, 2)
	require.Equal(t, []string{"g1", "g2"}, []string{all["ns1"][0].Name, all["ns1"][1].Name})

	// POST replaces a group of the same name.
	require.Equal(t, http.StatusAccepted, do(t, api, "team-a", http.MethodPost, "/ns2", "name: g1\nrules:\n- record: x:y\n  expr: vector(2)\n").Code)
	rec = do(t, api, "team-a", http.MethodGet, "/ns2/g1", "")
	require.Equal(t, "x:y", mustGroup(t, rec.Body.String()).Rules[0].Record)

	require.Equal(t, http.StatusAccepted, do(t, api, "team-a", http.MethodDelete, "/ns1/g2", "").Code)
	require.Equal(t, http.StatusNotFound, do(t, api, "team-a", http.MethodGet, "/ns1/g2", "").Code)
	require.Equal(t, http.StatusAccepted, do(t, api, "team-a", http.MethodDelete, "/ns2", "").Code)
	rec = do(t, api, "team-a", http.MethodGet, "", "")
	require.Equal(t, map[string][]rulefmt.RuleGroup{"ns1": {g1}}, decodeGroups(t, rec.Body.String()))
}

func TestConfigAPI_NoGroupsIsAnEmptyMapAsInMimir(t *testing.T) {
	api, _ := newTestAPI(t, defaultLimits)
	for _, path := range []string{"", "/absent"} {
		rec := do(t, api, "team-a", http.MethodGet, path, "")
		require.Equal(t, http.StatusOK, rec.Code, path)
		require.Equal(t, "{}\n", rec.Body.String(), path)
	}
}

func TestConfigAPI_MissingIsNotFound(t *testing.T) {
	api, _ := newTestAPI(t, defaultLimits)
	require.Equal(t, http.StatusAccepted, do(t, api, "team-a", http.MethodPost, "/ns", groupG1).Code)
	for _, c := range []struct{ method, path, want string }{
		{http.MethodGet, "/ns/absent", "rule group not found"},
		{http.MethodGet, "/absent/g1", "rule group not found"},
		{http.MethodDelete, "/ns/absent", "rule group not found"},
		{http.MethodDelete, "/absent", "rule namespace not found"},
	} {
		rec := do(t, api, "team-a", c.method, c.path, "")
		require.Equal(t, http.StatusNotFound, rec.Code, "%s %s", c.method, c.path)
		require.Contains(t, rec.Body.String(), c.want)
	}
}

func TestConfigAPI_MissingTenantIsUnauthorized(t *testing.T) {
	api, store := newTestAPI(t, defaultLimits)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, ""}, {http.MethodGet, "/ns"}, {http.MethodGet, "/ns/g1"},
		{http.MethodPost, "/ns"}, {http.MethodDelete, "/ns/g1"}, {http.MethodDelete, "/ns"},
	} {
		rec := do(t, api, "", c.method, c.path, groupG1)
		require.Equal(t, http.StatusUnauthorized, rec.Code, "%s %s", c.method, c.path)
		require.Contains(t, rec.Body.String(), "no tenant ID")
	}
	tenants, err := store.ListTenants(context.Background())
	require.NoError(t, err)
	require.Empty(t, tenants)
}

func TestConfigAPI_WrongMethodIs405WithAllow(t *testing.T) {
	api, _ := newTestAPI(t, defaultLimits)
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodPost, "", "GET, HEAD"},
		{http.MethodDelete, "", "GET, HEAD"},
		{http.MethodPut, "/ns", "DELETE, GET, HEAD, POST"},
		{http.MethodPost, "/ns/g", "DELETE, GET, HEAD"},
		{http.MethodPatch, "/ns/g", "DELETE, GET, HEAD"},
	} {
		rec := do(t, api, "team-a", c.method, c.path, "")
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code, "%s %s", c.method, c.path)
		require.Equal(t, c.allow, rec.Header().Get("Allow"), "%s %s", c.method, c.path)
	}
	require.Equal(t, http.StatusNotFound, do(t, api, "team-a", http.MethodGet, "/ns/g/extra", "").Code)
}

func TestConfigAPI_RejectsInvalidRuleGroups(t *testing.T) {
	rule := func(lines ...string) string {
		return "name: g\nrules:\n- " + strings.Join(lines, "\n  ") + "\n"
	}
	for name, tc := range map[string]struct{ body, want string }{
		"empty body":               {"", "the body is empty"},
		"not YAML":                 {"name: [", "the body is not a rule group in YAML"},
		"not a mapping":            {"- a\n- b\n", "the body is not a rule group in YAML"},
		"unknown group field":      {"name: g\nbogus: 1\nrules:\n- record: a:b\n  expr: up\n", "field bogus not found"},
		"unknown rule field":       {rule("record: a:b", "exprr: up"), "field exprr not found"},
		"a rule file, not a group": {"groups:\n- name: g\n  rules: []\n", "field groups not found"},
		"two documents":            {groupG1 + "---\n" + groupG1, "more than one YAML document"},
		"no name":                  {"rules:\n- record: a:b\n  expr: up\n", "group name is empty"},
		"name too long":            {"name: " + strings.Repeat("g", rulestore.MaxNameLength+1) + "\nrules:\n- record: a:b\n  expr: up\n", "at most 191 are allowed"},
		"no rules":                 {"name: g\nrules: []\n", `rule group "g" has no rules`},
		"negative interval":        {"name: g\ninterval: -1m\nrules:\n- record: a:b\n  expr: up\n", `not a valid duration string: "-1m"`},
		"negative limit":           {"name: g\nlimit: -1\nrules:\n- record: a:b\n  expr: up\n", "limit must not be negative, got -1"},
		"bad group label":          {"name: g\nlabels: {0bad: x}\nrules:\n- record: a:b\n  expr: up\n", `invalid label name "0bad"`},
		"record and alert":         {rule("record: a:b", "alert: A", "expr: up"), "only one of 'record' and 'alert' must be set"},
		"neither record nor alert": {rule("expr: up"), "one of 'record' or 'alert' must be set"},
		"no expression":            {rule("record: a:b"), `rule 1 (recording rule "a:b"): field 'expr' must be set in rule`},
		"bad expression":           {rule("record: a:b", "expr: sum(up"), `rule 1 (recording rule "a:b"): could not parse expression`},
		"bad record name":          {rule("record: a.b", "expr: up"), "invalid recording rule name: a.b"},
		"expression as a name":     {rule(`record: "up{job='x'}"`, "expr: up"), "invalid recording rule name"},
		"bad rule label":           {rule("alert: A", "expr: up", "labels: {__name__: x}"), "invalid label name: __name__"},
		"bad annotation name":      {rule("alert: A", "expr: up", "annotations: {0a: x}"), "invalid annotation name: 0a"},
		"bad annotation template":  {rule("alert: A", "expr: up", `annotations: {summary: "{{ .Labels"}`), `rule 1 (alerting rule "A"): annotation "summary"`},
		"for on a recording rule":  {rule("record: a:b", "expr: up", "for: 1m"), "invalid field 'for' in recording rule"},
		"negative for":             {rule("alert: A", "expr: up", "for: -5m"), `not a valid duration string: "-5m"`},
		"bad keep_firing_for":      {rule("record: a:b", "expr: up", "keep_firing_for: 1m"), "invalid field 'keep_firing_for' in recording rule"},
	} {
		t.Run(name, func(t *testing.T) {
			api, store := newTestAPI(t, defaultLimits)
			rec := do(t, api, "team-a", http.MethodPost, "/ns", tc.body)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.want)
			groups, err := store.ListRuleGroups(context.Background(), "team-a", "")
			require.NoError(t, err)
			require.Empty(t, groups, "nothing was stored")
		})
	}
}

func TestConfigAPI_ReportsEveryInvalidRule(t *testing.T) {
	api, _ := newTestAPI(t, defaultLimits)
	rec := do(t, api, "team-a", http.MethodPost, "/ns", "name: g\nrules:\n- record: ok:rule\n  expr: up\n- record: a:b\n  expr: sum(\n- alert: A\n  expr: up\n  record: r\n")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `rule 2 (recording rule "a:b"): could not parse expression`)
	require.Contains(t, rec.Body.String(), `rule 3 (alerting rule "A"): only one of 'record' and 'alert' must be set`)
}

func TestConfigAPI_AcceptsDuplicateRuleNamesAsPrometheusDoes(t *testing.T) {
	api, _ := newTestAPI(t, defaultLimits)
	body := "name: g\nrules:\n- record: a:b\n  expr: up\n- record: a:b\n  expr: up * 2\n- alert: A\n  expr: up == 0\n- alert: A\n  expr: up == 1\n"
	rec := do(t, api, "team-a", http.MethodPost, "/ns", body)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
}

func TestConfigAPI_RulesPerGroupLimit(t *testing.T) {
	body := "name: g\nrules:\n- record: a:b\n  expr: up\n- record: a:c\n  expr: up\n- record: a:d\n  expr: up\n"
	api, _ := newTestAPI(t, fixedLimits{rulesPerGroup: 2})
	rec := do(t, api, "team-a", http.MethodPost, "/ns", body)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `rule group "g" has 3 rules, more than the limit of 2`)
	require.Contains(t, rec.Body.String(), "-ruler.max-rules-per-rule-group")
	require.Contains(t, rec.Body.String(), "ruler_max_rules_per_rule_group")

	for _, limit := range []int{0, 3} {
		api, _ = newTestAPI(t, fixedLimits{rulesPerGroup: limit})
		require.Equal(t, http.StatusAccepted, do(t, api, "team-a", http.MethodPost, "/ns", body).Code, "limit %d", limit)
	}
}

func TestConfigAPI_RuleGroupsPerTenantLimit(t *testing.T) {
	api, _ := newTestAPI(t, fixedLimits{groupsPerTenant: 2})
	post := func(tenantID, ns, group string) *httptest.ResponseRecorder {
		return do(t, api, tenantID, http.MethodPost, "/"+ns, "name: "+group+"\nrules:\n- record: a:b\n  expr: up\n")
	}
	require.Equal(t, http.StatusAccepted, post("team-a", "ns1", "g1").Code)
	require.Equal(t, http.StatusAccepted, post("team-a", "ns2", "g1").Code)

	rec := post("team-a", "ns3", "g1") // namespaces count together
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "the tenant has 2 rule groups, and the limit is 2")
	require.Contains(t, rec.Body.String(), "-ruler.max-rule-groups-per-tenant")
	require.Contains(t, rec.Body.String(), "ruler_max_rule_groups_per_tenant")

	require.Equal(t, http.StatusAccepted, post("team-a", "ns1", "g1").Code, "replacing a group at the limit is allowed")
	require.Equal(t, http.StatusAccepted, post("team-b", "ns1", "g1").Code, "the limit is per tenant")
	require.Equal(t, http.StatusAccepted, do(t, api, "team-a", http.MethodDelete, "/ns2", "").Code)
	require.Equal(t, http.StatusAccepted, post("team-a", "ns3", "g1").Code, "a deleted group frees its place")

	api, _ = newTestAPI(t, fixedLimits{})
	for _, g := range []string{"g1", "g2", "g3", "g4"} {
		require.Equal(t, http.StatusAccepted, do(t, api, "team-a", http.MethodPost, "/ns", "name: "+g+"\nrules:\n- record: a:b\n  expr: up\n").Code, "0 is no limit")
	}
}

func TestConfigAPI_BodyTooLarge(t *testing.T) {
	api, _ := newTestAPI(t, fixedLimits{})
	body := "name: g\nrules:\n- record: a:b\n  expr: up # " + strings.Repeat("x", maxRuleGroupBytes) + "\n"
	rec := do(t, api, "team-a", http.MethodPost, "/ns", body)
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	require.Contains(t, rec.Body.String(), "larger than 1048576 bytes")
}

// allocatedBytes returns what f allocates, across the process: the tests of this package do not run
// in parallel, so it is f's work.
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestConfigAPI_YAMLAliasBombsAreRefusedWithBoundedWork(t *testing.T) {
	// Nine levels of nine aliases: 9^9 (387M) strings if expanded, in a body of under 1 KiB.
	var laughs strings.Builder
	laughs.WriteString("name: g\nrules:\n- record: a:b\n  expr: up\n  labels: &l0 {k: lol}\n")
	for i := 1; i <= 9; i++ {
		laughs.WriteString("- record: a:b\n  expr: up\n  annotations: &l" + string(rune('0'+i)) + " [")
		for j := range 9 {
			if j > 0 {
				laughs.WriteString(", ")
			}
			laughs.WriteString("*l" + string(rune('0'+i-1)))
		}
		laughs.WriteString("]\n")
	}
	// One anchored rule of 200 labels repeated by a thousand aliases: yaml.v3 refuses a document whose
	// nodes come from aliases at this ratio.
	var labels strings.Builder
	for i := range 200 {
		labels.WriteString(", k" + strconv.Itoa(i) + ": v")
	}
	flat := "name: g\nrules:\n- &r {record: a:b, expr: up, labels: {k: v" + labels.String() + "}}\n" + strings.Repeat("- *r\n", 1000)
	// A few aliases of a long expression: within yaml.v3's ratio, but 1.5 MiB of text once expanded.
	long := "name: g\nrules:\n- record: a:b\n  expr: &e \"" + strings.Repeat("up + ", 20_000) + "up\"\n" +
		strings.Repeat("- record: a:b\n  expr: *e\n", 15)
	require.Less(t, len(long), maxRuleGroupBytes)

	for name, tc := range map[string]struct{ body, want string }{
		"billion laughs":     {laughs.String(), "the body is not a rule group in YAML"},
		"aliased rules":      {flat, "excessive aliasing"},
		"aliased expression": {long, "bytes of text once its YAML aliases are expanded"},
	} {
		t.Run(name, func(t *testing.T) {
			api, _ := newTestAPI(t, fixedLimits{})
			var rec *httptest.ResponseRecorder
			allocated := allocatedBytes(func() { rec = do(t, api, "team-a", http.MethodPost, "/ns", tc.body) })
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.want)
			// About 5 MiB at most today; 200k expanded labels alone would take more than the bound.
			require.Less(t, allocated, uint64(16<<20), "the bomb was not expanded")
		})
	}
}

// escape percent-encodes a name as one path segment. RFC 3986 leaves dots unescaped, but a "." or ".."
// segment would be removed from the path on its way, so those names need theirs escaped.
func escape(name string) string {
	if name == "." || name == ".." {
		return strings.ReplaceAll(name, ".", "%2E")
	}
	return url.PathEscape(name)
}

func TestConfigAPI_Names(t *testing.T) {
	api, _ := newTestAPI(t, defaultLimits)
	// A real server and client: the names travel percent-encoded, as mimirtool and Grafana send them.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r.WithContext(tenant.NewContext(r.Context(), "team-a")))
	}))
	defer srv.Close()
	call := func(method, path, body string) (int, string) {
		req, err := http.NewRequest(method, srv.URL+ConfigRulesPath+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	for _, names := range [][2]string{
		{"a/b", "c/d"}, {"..", "."}, {"../../etc", "x/../y"}, {"ünïcødé ✓", "名前 with spaces"}, {"100%", "a?b#c"},
		{strings.Repeat("n", rulestore.MaxNameLength), strings.Repeat("g", rulestore.MaxNameLength)},
	} {
		ns, group := names[0], names[1]
		nsPath, groupPath := "/"+escape(ns), "/"+escape(group)
		body, err := yaml.Marshal(rulefmt.RuleGroup{Name: group, Rules: []rulefmt.Rule{{Record: "a:b", Expr: "up"}}})
		require.NoError(t, err)
		code, msg := call(http.MethodPost, nsPath, string(body))
		require.Equal(t, http.StatusAccepted, code, "%q: %s", ns, msg)

		code, msg = call(http.MethodGet, nsPath+groupPath, "")
		require.Equal(t, http.StatusOK, code, "%q/%q: %s", ns, group, msg)
		require.Equal(t, group, mustGroup(t, msg).Name)
		code, msg = call(http.MethodGet, nsPath, "")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, decodeGroups(t, msg), ns)

		code, _ = call(http.MethodDelete, nsPath+groupPath, "")
		require.Equal(t, http.StatusAccepted, code, "%q/%q", ns, group)
	}
	code, msg := call(http.MethodGet, "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "{}\n", msg, "every group was deleted")

	for _, c := range []struct{ method, path, want string }{
		{http.MethodGet, "/" + strings.Repeat("n", rulestore.MaxNameLength+1), "namespace name is 192 bytes, at most 191"},
		{http.MethodGet, "/ns/" + strings.Repeat("g", 100_000), "group name is 100000 bytes"},
		{http.MethodPost, "/" + strings.Repeat("n", rulestore.MaxNameLength+1), "namespace name is 192 bytes"},
		{http.MethodDelete, "/ns/%FF", "group name is not valid UTF-8"},
		{http.MethodDelete, "/%FF", "namespace name is not valid UTF-8"},
	} {
		code, msg := call(c.method, c.path, groupG1)
		require.Equal(t, http.StatusBadRequest, code, "%s %.40s", c.method, c.path)
		require.Contains(t, msg, c.want)
	}
}

func TestConfigAPI_TenantsNeverSeeEachOthersGroups(t *testing.T) {
	api, _ := newTestAPI(t, defaultLimits)
	require.Equal(t, http.StatusAccepted, do(t, api, "team-a", http.MethodPost, "/ns", groupG1).Code)

	rec := do(t, api, "team-b", http.MethodGet, "", "")
	require.Equal(t, "{}\n", rec.Body.String())
	rec = do(t, api, "team-b", http.MethodGet, "/ns", "")
	require.Equal(t, "{}\n", rec.Body.String())
	require.Equal(t, http.StatusNotFound, do(t, api, "team-b", http.MethodGet, "/ns/g1", "").Code)
	require.Equal(t, http.StatusNotFound, do(t, api, "team-b", http.MethodDelete, "/ns/g1", "").Code)
	require.Equal(t, http.StatusNotFound, do(t, api, "team-b", http.MethodDelete, "/ns", "").Code)

	// team-b's group of the same names is its own.
	require.Equal(t, http.StatusAccepted, do(t, api, "team-b", http.MethodPost, "/ns", "name: g1\nrules:\n- record: b:b\n  expr: up\n").Code)
	rec = do(t, api, "team-a", http.MethodGet, "/ns/g1", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, mustGroup(t, groupG1), mustGroup(t, rec.Body.String()))
}

func TestConfigAPI_LocalStoreIsReadOnly(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "team-a"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "team-a", "ns.yaml"), []byte("groups:\n- "+strings.ReplaceAll(groupG1, "\n", "\n  ")), 0o644))
	api := NewConfigAPI(rulestore.NewLocalStore(dir, slog.New(slog.DiscardHandler)), defaultLimits, slog.New(slog.DiscardHandler))

	rec := do(t, api, "team-a", http.MethodGet, "/ns/g1", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, mustGroup(t, groupG1), mustGroup(t, rec.Body.String()))

	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/ns"}, {http.MethodDelete, "/ns/g1"}, {http.MethodDelete, "/ns"},
	} {
		rec := do(t, api, "team-a", c.method, c.path, groupG1)
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code, "%s %s", c.method, c.path)
		require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
		require.Contains(t, rec.Body.String(), "read-only")
	}
}

// failingStore fails every call, as a bucket in an outage does.
type failingStore struct{ rulestore.Store }

var errOutage = errors.New("bucket unreachable")

func (failingStore) ListRuleGroups(context.Context, string, string) (map[string][]rulefmt.RuleGroup, error) {
	return nil, errOutage
}
func (failingStore) GetRuleGroup(context.Context, string, string, string) (rulefmt.RuleGroup, error) {
	return rulefmt.RuleGroup{}, errOutage
}
func (failingStore) SetRuleGroup(context.Context, string, string, rulefmt.RuleGroup) error {
	return errOutage
}
func (failingStore) DeleteRuleGroup(context.Context, string, string, string) error { return errOutage }
func (failingStore) DeleteNamespace(context.Context, string, string) error         { return errOutage }

func TestConfigAPI_StoreFailuresAre500(t *testing.T) {
	for name, limits := range map[string]fixedLimits{"listing for the group limit": defaultLimits, "writing": {}} {
		t.Run(name, func(t *testing.T) {
			api := NewConfigAPI(failingStore{}, limits, slog.New(slog.DiscardHandler))
			for _, c := range []struct{ method, path string }{
				{http.MethodGet, ""}, {http.MethodGet, "/ns"}, {http.MethodGet, "/ns/g1"},
				{http.MethodPost, "/ns"}, {http.MethodDelete, "/ns/g1"}, {http.MethodDelete, "/ns"},
			} {
				rec := do(t, api, "team-a", c.method, c.path, groupG1)
				require.Equal(t, http.StatusInternalServerError, rec.Code, "%s %s", c.method, c.path)
				require.Contains(t, rec.Body.String(), "bucket unreachable")
			}
		})
	}
}
