package main

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/ruler"
	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
	"github.com/strata-metrics/strata/pkg/tenant"
)

type noLimits struct{}

func (noLimits) RulerMaxRulesPerRuleGroup(string) int   { return 0 }
func (noLimits) RulerMaxRuleGroupsPerTenant(string) int { return 0 }

// seenRequest is what the server received of a request.
type seenRequest struct {
	method, path, tenant, authorization string
}

// rulesServer is Strata's rules config API over an in-memory bucket, behind the tenant middleware.
type rulesServer struct {
	url      string
	mu       sync.Mutex
	requests []seenRequest
}

func newRulesServer(t *testing.T) *rulesServer {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	api := ruler.NewConfigAPI(rulestore.NewBucketStore(objstore.NewInMemBucket(), "rules", logger), noLimits{}, logger)
	handler := tenant.Middleware(true)(api)
	s := &rulesServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, seenRequest{r.Method, r.URL.EscapedPath(), r.Header.Get(tenant.OrgIDHeader), r.Header.Get("Authorization")})
		s.mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *rulesServer) seen() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.requests...)
}

// cli runs stratatool against the server as tenant "team".
func (s *rulesServer) cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runCLI(t, append([]string{"--address", s.url, "--id", "team"}, args...)...)
}

const teamRules = `namespace: alerts
groups:
  - name: availability
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        labels: {severity: page}
  - name: latency
    rules:
      - record: job:latency:p99
        expr: histogram_quantile(0.99, sum by (job, le) (rate(latency_bucket[5m])))
`

func TestRulesAPI_LoadListGetDelete(t *testing.T) {
	s := newRulesServer(t)
	dir := t.TempDir()
	namespaced := writeFile(t, dir, "team.yml", teamRules)
	plain := writeFile(t, dir, "recording.yml", "groups:\n  - name: requests\n    rules: [{record: 'job:requests:rate5m', expr: 'sum by (job) (rate(requests_total[5m]))'}]\n")

	status, stdout, _ := s.cli(t, "rules", "list")
	require.Equal(t, 0, status)
	require.Equal(t, "no rule groups\n", stdout)

	status, stdout, stderr := s.cli(t, "rules", "load", namespaced, plain)
	require.Equal(t, 0, status, stderr)
	require.Equal(t, "loaded group \"availability\" in namespace \"alerts\"\nloaded group \"latency\" in namespace \"alerts\"\nloaded group \"requests\" in namespace \"recording\"\n", stdout)

	status, stdout, _ = s.cli(t, "rules", "list")
	require.Equal(t, 0, status)
	require.Equal(t, "NAMESPACE  GROUP         RULES\nalerts     availability  1\nalerts     latency       1\nrecording  requests      1\n", stdout)

	status, stdout, _ = s.cli(t, "rules", "get", "alerts", "availability")
	require.Equal(t, 0, status)
	require.Equal(t, "name: availability\nrules:\n    - alert: InstanceDown\n      expr: up == 0\n      for: 5m\n      labels:\n        severity: page\n", stdout)

	status, stdout, _ = s.cli(t, "rules", "delete", "alerts", "availability")
	require.Equal(t, 0, status)
	require.Equal(t, "deleted group \"availability\" of namespace \"alerts\"\n", stdout)

	// The server's status and body are shown.
	status, _, stderr = s.cli(t, "rules", "get", "alerts", "availability")
	require.Equal(t, 1, status)
	require.Equal(t, "stratatool: GET /prometheus/config/v1/rules/alerts/availability: the server answered 404 Not Found: tenant team: namespace \"alerts\", group \"availability\": rule group not found\n", stderr)

	status, stdout, _ = s.cli(t, "rules", "delete", "recording")
	require.Equal(t, 0, status)
	require.Equal(t, "deleted namespace \"recording\"\n", stdout)
	status, stdout, _ = s.cli(t, "rules", "list")
	require.Equal(t, 0, status)
	require.Equal(t, "NAMESPACE  GROUP    RULES\nalerts     latency  1\n", stdout)

	status, _, stderr = s.cli(t, "rules", "delete", "recording")
	require.Equal(t, 1, status)
	require.Contains(t, stderr, "404 Not Found")
}

func TestRulesAPI_LoadSendsNothingFromInvalidFiles(t *testing.T) {
	s := newRulesServer(t)
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yml", teamRules)
	bad := writeFile(t, dir, "bad.yml", "groups:\n  - name: g\n    rules: [{record: x, expr: 'sum('}]\n")
	status, _, stderr := s.cli(t, "rules", "load", good, bad)
	require.Equal(t, 1, status)
	require.Contains(t, stderr, "the rule files have 1 problem, nothing was sent:\n  "+bad+": 3:31: group \"g\", rule 1, \"x\": could not parse expression")
	require.Empty(t, s.seen())
}

func TestRulesAPI_NamesArePathEscaped(t *testing.T) {
	s := newRulesServer(t)
	dir := t.TempDir()
	for i, ns := range []string{"a/b", "..", "with space?"} {
		f := writeFile(t, dir, "f"+string(rune('0'+i))+".yml", "namespace: '"+ns+"'\ngroups:\n  - name: 'g/1 %'\n    rules: [{record: x, expr: vector(1)}]\n")
		status, _, stderr := s.cli(t, "rules", "load", f)
		require.Equal(t, 0, status, stderr)
		status, stdout, stderr := s.cli(t, "rules", "get", ns, "g/1 %")
		require.Equal(t, 0, status, stderr)
		require.Contains(t, stdout, "name: g/1 %\n")
	}
	paths := map[string]bool{}
	for _, r := range s.seen() {
		paths[r.method+" "+r.path] = true
	}
	require.True(t, paths["POST /prometheus/config/v1/rules/a%2Fb"], paths)
	require.True(t, paths["GET /prometheus/config/v1/rules/%2E%2E/g%2F1%20%25"], paths)
	require.True(t, paths["GET /prometheus/config/v1/rules/with%20space%3F/g%2F1%20%25"], paths)
	status, stdout, _ := s.cli(t, "rules", "list")
	require.Equal(t, 0, status)
	require.Contains(t, stdout, "a/b ")
	require.Contains(t, stdout, "with space? ")
}

func TestClient_SendsTenantAndCredentials(t *testing.T) {
	s := newRulesServer(t)
	basic := func(user, key string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+key))
	}
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want seenRequest
	}{
		"flags, basic auth": {
			args: []string{"--address", s.url, "--id", "t1", "--user", "u", "--key", "k"},
			want: seenRequest{tenant: "t1", authorization: basic("u", "k")},
		},
		"key only: the tenant is the user": {
			args: []string{"--address", s.url, "--id", "t2", "--key", "k"},
			want: seenRequest{tenant: "t2", authorization: basic("t2", "k")},
		},
		"environment, bearer token": {
			env:  map[string]string{"STRATA_ADDRESS": s.url, "STRATA_TENANT_ID": "t3", "STRATA_AUTH_TOKEN": "tok"},
			want: seenRequest{tenant: "t3", authorization: "Bearer tok"},
		},
		"environment, basic auth": {
			env:  map[string]string{"STRATA_ADDRESS": s.url, "STRATA_TENANT_ID": "t4", "STRATA_API_USER": "u", "STRATA_API_KEY": "k"},
			want: seenRequest{tenant: "t4", authorization: basic("u", "k")},
		},
		"no credentials": {
			args: []string{"--address", s.url + "/", "--id", "t5"},
			want: seenRequest{tenant: "t5"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			for _, k := range []string{"STRATA_ADDRESS", "STRATA_TENANT_ID", "STRATA_API_USER", "STRATA_API_KEY", "STRATA_AUTH_TOKEN"} {
				t.Setenv(k, tc.env[k])
			}
			before := len(s.seen())
			status, _, stderr := runCLI(t, append(tc.args, "rules", "list")...)
			require.Equal(t, 0, status, stderr)
			got := s.seen()[before:]
			require.Len(t, got, 1)
			tc.want.method, tc.want.path = http.MethodGet, ruler.ConfigRulesPath
			require.Equal(t, tc.want, got[0])
		})
	}
}

func TestClient_RefusesIncompleteFlags(t *testing.T) {
	for _, k := range []string{"STRATA_ADDRESS", "STRATA_TENANT_ID", "STRATA_API_USER", "STRATA_API_KEY", "STRATA_AUTH_TOKEN"} {
		t.Setenv(k, "")
	}
	for args, want := range map[string]string{
		"rules list":                                                  "no cluster address: set --address or STRATA_ADDRESS",
		"--address ftp://x --id t rules list":                         `--address "ftp://x" is not an http:// or https:// URL`,
		"--address http://x rules list":                               "no tenant: set --id or STRATA_TENANT_ID",
		"--address http://x --id .. rules list":                       "--id: ",
		"--address http://x --id t --key k --auth-token a rules list": "--auth-token and --user/--key both authenticate",
	} {
		status, _, stderr := runCLI(t, strings.Fields(args)...)
		require.Equal(t, 1, status, args)
		require.Contains(t, stderr, want, args)
	}
}

func TestRulesDiffAndSync(t *testing.T) {
	s := newRulesServer(t)
	dir := t.TempDir()
	initial := writeFile(t, dir, "initial.yml", `namespace: team
groups:
  - name: same
    rules: [{record: 'a:b', expr: vector(1)}]
  - name: changed
    rules: [{alert: Down, expr: up == 0, for: 5m}]
  - name: removed
    rules: [{record: 'c:d', expr: vector(2)}]
`)
	other := writeFile(t, dir, "other.yml", "groups:\n  - name: untouched\n    rules: [{record: 'e:f', expr: vector(3)}]\n")
	status, _, stderr := s.cli(t, "rules", "load", initial, other)
	require.Equal(t, 0, status, stderr)

	desired := writeFile(t, dir, "team.yml", `groups:
  - name: same
    rules: [{record: 'a:b', expr: vector(1)}]
  - name: changed
    rules: [{alert: Down, expr: up == 0, for: 10m}]
  - name: added
    rules: [{record: 'g:h', expr: vector(4)}]
`)
	status, stdout, stderr := s.cli(t, "rules", "diff", desired)
	require.Equal(t, 0, status, stderr)
	require.Equal(t, `+ namespace "team", group "added": in the files only, 1 rule
~ namespace "team", group "changed": differs
    --- cluster
    +++ files
    @@ -3,3 +3,3 @@
         - alert: Down
           expr: up == 0
    -      for: 5m
    +      for: 10m
- namespace "team", group "removed": in the cluster only, 1 rule
1 to create, 1 to update, 1 to delete
`, stdout)

	before := len(s.seen())
	status, stdout, _ = s.cli(t, "rules", "sync", "--dry-run", desired)
	require.Equal(t, 0, status)
	require.Contains(t, stdout, "1 to create, 1 to update, 1 to delete\ndry run: nothing was changed\n")
	for _, r := range s.seen()[before:] {
		require.Equal(t, http.MethodGet, r.method)
	}

	status, stdout, stderr = s.cli(t, "rules", "sync", desired)
	require.Equal(t, 0, status, stderr)
	require.Equal(t, "deleted group \"removed\" of namespace \"team\"\ncreated group \"added\" of namespace \"team\"\nupdated group \"changed\" of namespace \"team\"\n", stdout)

	status, stdout, _ = s.cli(t, "rules", "diff", desired)
	require.Equal(t, 0, status)
	require.Equal(t, "no differences: the cluster has the groups of the files\n", stdout)
	status, stdout, _ = s.cli(t, "rules", "sync", desired)
	require.Equal(t, 0, status)
	require.Equal(t, "no differences: nothing to change\n", stdout)

	// Namespaces the files do not name are left alone.
	status, stdout, _ = s.cli(t, "rules", "list")
	require.Equal(t, 0, status)
	require.Contains(t, stdout, "other      untouched")

	// A file with no groups empties its namespace.
	empty := writeFile(t, dir, "empty.yml", "namespace: team\ngroups: []\n")
	status, stdout, stderr = s.cli(t, "rules", "sync", empty)
	require.Equal(t, 0, status, stderr)
	require.Equal(t, 3, strings.Count(stdout, "deleted group"))
}
