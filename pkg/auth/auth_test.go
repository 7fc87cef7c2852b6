package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/tlsconfig"
	"github.com/strata-metrics/strata/pkg/tlsconfig/tlstest"
)

func bcryptHash(t *testing.T, secret string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	require.NoError(t, err)
	return string(h)
}

func sha256Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return sha256Prefix + hex.EncodeToString(sum[:])
}

func writeCredentials(t testing.TB, path string, creds ...Credential) {
	t.Helper()
	var b strings.Builder
	b.WriteString("credentials:\n")
	for _, c := range creds {
		fmt.Fprintf(&b, "  - name: %s\n    secret_hash: %q\n    tenants: [%s]\n    roles: [%s]\n", c.Name, c.SecretHash,
			strings.Join(quoteAll(c.Tenants), ", "), strings.Join(roleStrings(c.Roles), ", "))
	}
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(b.String()), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func roleStrings(rs []Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// testServer serves an authenticator in front of a handler that answers 200 with the tenant it sees.
type testServer struct {
	url   string
	authn *Authenticator
	reg   *prometheus.Registry
}

func newTestServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	var cfg Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(f)
	require.NoError(t, f.Parse(args))
	require.NoError(t, cfg.Validate())
	reg := prometheus.NewRegistry()
	authn := New(cfg, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, authn.Start(context.Background()))
	t.Cleanup(func() { _ = authn.Stop(context.Background()) })
	srv := httptest.NewServer(authn.Middleware(echoTenant()))
	t.Cleanup(srv.Close)
	return &testServer{url: srv.URL, authn: authn, reg: reg}
}

func echoTenant() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "tenant="+r.Header.Get(tenant.OrgIDHeader))
	})
}

type request struct {
	method, path   string
	user, password string
	token          string
	orgID          string
}

func do(t *testing.T, client *http.Client, base string, req request) (int, string, http.Header) {
	t.Helper()
	if req.method == "" {
		req.method = http.MethodGet
	}
	r, err := http.NewRequest(req.method, base+req.path, nil)
	require.NoError(t, err)
	if req.user != "" {
		r.SetBasicAuth(req.user, req.password)
	}
	if req.token != "" {
		r.Header.Set("Authorization", "Bearer "+req.token)
	}
	if req.orgID != "" {
		r.Header.Set(tenant.OrgIDHeader, req.orgID)
	}
	resp, err := client.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, strings.TrimSpace(string(body)), resp.Header
}

// adminPaths are the endpoints that need the admin role, each with the method that acts.
var adminPaths = []request{
	{method: http.MethodPost, path: "/ingester/flush"},
	{method: http.MethodPost, path: "/ingester/shutdown"},
	{method: http.MethodPost, path: "/ingester/prepare-shutdown"},
	{method: http.MethodPost, path: "/ingester/ring"},
	{path: "/distributor/ring"},
	{path: "/store-gateway/ring"},
	{path: "/compactor/ring"},
	{path: "/ruler/ring"},
	{path: "/multitenant_alertmanager/ring"},
	{path: "/multitenant_alertmanager/status"},
	{path: "/memberlist"},
	{path: "/config"},
	{path: "/runtime_config"},
	{path: "/services"},
	{path: "/metrics"},
	{path: "/debug/pprof/"},
	{path: "/debug/pprof/cmdline"},
	{path: "/distributor/ha_tracker"},
	{path: "/store-gateway/tenants"},
	{method: http.MethodPost, path: "/compactor/delete_tenant"},
	{path: "/compactor/delete_tenant_status"},
	{method: http.MethodPost, path: "/prometheus/api/v1/admin/tsdb/delete_series"},
	{path: "/prometheus/api/v1/../../../ingester/flush"},
	{path: "/no/such/endpoint"},
}

func TestBasic_RolesAndTenants(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "credentials.yaml")
	writeCredentials(t, creds,
		Credential{Name: "team-a-writer", SecretHash: bcryptHash(t, "w-secret"), Tenants: []string{"team-a"}, Roles: []Role{RoleWrite}},
		Credential{Name: "team-a-reader", SecretHash: bcryptHash(t, "r-secret"), Tenants: []string{"team-a"}, Roles: []Role{RoleRead}},
		Credential{Name: "grafana", SecretHash: bcryptHash(t, "g-secret"), Tenants: []string{"team-a", "team-b"}, Roles: []Role{RoleRead, RoleRules}},
		Credential{Name: "ops", SecretHash: bcryptHash(t, "o-secret"), Tenants: []string{AllTenants}, Roles: []Role{RoleAdmin}},
	)
	s := newTestServer(t, "-auth.type=basic", "-auth.credentials-file="+creds)
	c := http.DefaultClient

	code, body, _ := do(t, c, s.url, request{method: http.MethodPost, path: "/api/v1/push", user: "team-a-writer", password: "w-secret"})
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "tenant=team-a", body, "a credential of one tenant acts as it without the header")

	code, body, _ = do(t, c, s.url, request{path: "/prometheus/api/v1/query", user: "team-a-writer", password: "w-secret"})
	require.Equal(t, http.StatusForbidden, code, "the writer cannot read")
	require.Contains(t, body, "read role")

	code, body, _ = do(t, c, s.url, request{path: "/prometheus/api/v1/query", user: "team-a-reader", password: "r-secret"})
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "tenant=team-a", body)

	code, _, _ = do(t, c, s.url, request{path: "/prometheus/api/v1/query", user: "team-a-reader", password: "r-secret", orgID: "team-b"})
	require.Equal(t, http.StatusForbidden, code, "team-a's credential cannot read team-b")
	code, _, _ = do(t, c, s.url, request{method: http.MethodPost, path: "/api/v1/push", user: "team-a-writer", password: "w-secret", orgID: "team-b"})
	require.Equal(t, http.StatusForbidden, code, "team-a's credential cannot write team-b")

	// A credential of several tenants names one, or several for a federated read, in the header.
	code, body, _ = do(t, c, s.url, request{path: "/prometheus/api/v1/query", user: "grafana", password: "g-secret"})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "tenant=", body, "no tenant chosen for a credential of several: the handler asks for the header")
	code, body, _ = do(t, c, s.url, request{path: "/prometheus/api/v1/query", user: "grafana", password: "g-secret", orgID: "team-a|team-b"})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "tenant=team-a|team-b", body)
	code, _, _ = do(t, c, s.url, request{path: "/prometheus/api/v1/query", user: "grafana", password: "g-secret", orgID: "team-a|team-c"})
	require.Equal(t, http.StatusForbidden, code)

	// No credential, an unknown user, a wrong password: 401 with nothing that tells them apart.
	for _, req := range []request{
		{path: "/prometheus/api/v1/query"},
		{path: "/prometheus/api/v1/query", user: "nobody", password: "r-secret"},
		{path: "/prometheus/api/v1/query", user: "team-a-reader", password: "wrong"},
		{path: "/prometheus/api/v1/query", token: "r-secret"},
	} {
		code, body, header := do(t, c, s.url, req)
		require.Equal(t, http.StatusUnauthorized, code, req)
		require.Equal(t, `Basic realm="strata"`, header.Get("WWW-Authenticate"))
		require.NotContains(t, body, "team-a")
		require.NotContains(t, body, "nobody")
	}
	require.Equal(t, 1.0, testutil.ToFloat64(s.authn.failures.WithLabelValues("missing")))
	require.Equal(t, 3.0, testutil.ToFloat64(s.authn.failures.WithLabelValues("invalid")))

	// Readiness and the UI's page need no credential; everything else does.
	for _, p := range []string{"/ready", "/", "/query"} {
		code, _, _ := do(t, c, s.url, request{path: p})
		require.Equal(t, http.StatusOK, code, p)
	}

	for _, req := range adminPaths {
		code, _, _ := do(t, c, s.url, req)
		require.Equal(t, http.StatusUnauthorized, code, req.path)
		req.user, req.password = "grafana", "g-secret"
		code, _, _ = do(t, c, s.url, req)
		require.Equal(t, http.StatusForbidden, code, req.path)
		req.user, req.password = "ops", "o-secret"
		code, _, _ = do(t, c, s.url, req)
		require.Equal(t, http.StatusOK, code, req.path)
	}
}

func TestBearer_TokensAndReload(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "credentials.yaml")
	writeCredentials(t, creds,
		Credential{Name: "agent", SecretHash: sha256Hash("long-random-token"), Tenants: []string{"team-a"}, Roles: []Role{RoleWrite}},
		Credential{Name: "dashboards", SecretHash: bcryptHash(t, "grafana-token"), Tenants: []string{"team-a"}, Roles: []Role{RoleRead}},
	)
	s := newTestServer(t, "-auth.type=bearer", "-auth.credentials-file="+creds, "-auth.credentials-reload-period=20ms")
	c := http.DefaultClient

	code, body, _ := do(t, c, s.url, request{method: http.MethodPost, path: "/api/v1/push", token: "long-random-token"})
	require.Equal(t, http.StatusOK, code, body)
	code, body, _ = do(t, c, s.url, request{path: "/prometheus/api/v1/labels", token: "grafana-token"})
	require.Equal(t, http.StatusOK, code, body)
	code, _, header := do(t, c, s.url, request{path: "/prometheus/api/v1/labels", token: "guess"})
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, `Bearer realm="strata"`, header.Get("WWW-Authenticate"))
	code, _, _ = do(t, c, s.url, request{path: "/prometheus/api/v1/labels", user: "dashboards", password: "grafana-token"})
	require.Equal(t, http.StatusUnauthorized, code, "bearer mode takes no basic auth")
	for _, req := range adminPaths {
		code, _, _ := do(t, c, s.url, req)
		require.Equal(t, http.StatusUnauthorized, code, req.path)
		req.token = "grafana-token"
		code, _, _ = do(t, c, s.url, req)
		require.Equal(t, http.StatusForbidden, code, req.path)
	}

	// The dashboards token is revoked: it stops working at the next reload, although it is cached.
	writeCredentials(t, creds,
		Credential{Name: "agent", SecretHash: sha256Hash("long-random-token"), Tenants: []string{"team-a"}, Roles: []Role{RoleWrite}},
	)
	require.Eventually(t, func() bool {
		code, _, _ := do(t, c, s.url, request{path: "/prometheus/api/v1/labels", token: "grafana-token"})
		return code == http.StatusUnauthorized
	}, 5*time.Second, 10*time.Millisecond)

	// A broken file keeps the credentials in force, and says so in a metric.
	require.NoError(t, os.WriteFile(creds, []byte("credentials: [{name: x, roles: [superuser]}]"), 0o600))
	require.Eventually(t, func() bool {
		return gaugeValue(t, s.reg, "strata_auth_credentials_last_reload_successful") == 0
	}, 5*time.Second, 10*time.Millisecond)
	code, _, _ = do(t, c, s.url, request{method: http.MethodPost, path: "/api/v1/push", token: "long-random-token"})
	require.Equal(t, http.StatusOK, code)
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestHeader_AdminEndpointsNeedAnAdminCredential(t *testing.T) {
	// Without a credentials file the header type is today's behaviour: the proxy in front decides.
	open := newTestServer(t)
	code, _, _ := do(t, http.DefaultClient, open.url, request{method: http.MethodPost, path: "/ingester/flush"})
	require.Equal(t, http.StatusOK, code)

	creds := filepath.Join(t.TempDir(), "credentials.yaml")
	writeCredentials(t, creds,
		Credential{Name: "ops", SecretHash: bcryptHash(t, "o-secret"), Tenants: []string{AllTenants}, Roles: []Role{RoleAdmin}},
		Credential{Name: "reader", SecretHash: bcryptHash(t, "r-secret"), Tenants: []string{AllTenants}, Roles: []Role{RoleRead}},
	)
	s := newTestServer(t, "-auth.credentials-file="+creds)
	code, body, _ := do(t, http.DefaultClient, s.url, request{path: "/prometheus/api/v1/query", orgID: "team-z"})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "tenant=team-z", body, "data endpoints still trust the header")
	for _, req := range adminPaths {
		code, _, _ := do(t, http.DefaultClient, s.url, req)
		require.Equal(t, http.StatusUnauthorized, code, req.path)
		req.user, req.password = "reader", "r-secret"
		code, _, _ = do(t, http.DefaultClient, s.url, req)
		require.Equal(t, http.StatusForbidden, code, req.path)
		req.user, req.password = "ops", "o-secret"
		code, _, _ = do(t, http.DefaultClient, s.url, req)
		require.Equal(t, http.StatusOK, code, req.path)
	}
}

func TestMTLS_TenantFromCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	other := tlstest.NewCA(t, dir, "other")
	serverCert, serverKey := ca.Issue(t, "server", "strata")
	creds := filepath.Join(dir, "credentials.yaml")
	writeCredentials(t, creds, Credential{Name: "ops", Tenants: []string{AllTenants}, Roles: []Role{RoleAdmin}})

	var cfg Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(f)
	require.NoError(t, f.Parse([]string{"-auth.type=mtls", "-auth.credentials-file=" + creds}))
	require.NoError(t, cfg.Validate())
	authn := New(cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, authn.Start(context.Background()))
	t.Cleanup(func() { _ = authn.Stop(context.Background()) })

	var common tlsconfig.Common
	var serverTLS tlsconfig.ServerConfig
	sf := flag.NewFlagSet("server", flag.ContinueOnError)
	tlsconfig.RegisterServerCommonFlags(&common, sf)
	serverTLS.RegisterFlagsWithPrefix("server.http-", "HTTP", &common, sf)
	require.NoError(t, sf.Parse([]string{"-server.http-tls-cert-path=" + serverCert, "-server.http-tls-key-path=" + serverKey,
		"-server.http-tls-ca-path=" + ca.CertPath, "-server.http-tls-client-auth=VerifyClientCertIfGiven"}))
	tlsCfg, err := serverTLS.TLSConfig("http/1.1")
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(authn.Middleware(echoTenant()))
	srv.TLS = tlsCfg
	srv.StartTLS()
	t.Cleanup(srv.Close)

	client := func(issuer *tlstest.CA, file, cn string) *http.Client {
		var cc tlsconfig.ClientConfig
		cf := flag.NewFlagSet("client", flag.ContinueOnError)
		cc.RegisterFlagsWithPrefix("c.", "server", cf)
		args := []string{"-c.tls-enabled", "-c.tls-ca-path=" + ca.CertPath}
		if issuer != nil {
			cert, key := issuer.Issue(t, file, cn)
			args = append(args, "-c.tls-cert-path="+cert, "-c.tls-key-path="+key)
		}
		require.NoError(t, cf.Parse(args))
		cl, err := cc.NewClient()
		require.NoError(t, err)
		return &http.Client{Transport: &http.Transport{DialTLSContext: cl.DialTLSContext}}
	}

	teamA := client(ca, "team-a", "team-a")
	code, body, _ := do(t, teamA, srv.URL, request{method: http.MethodPost, path: "/api/v1/push"})
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "tenant=team-a", body)
	code, _, _ = do(t, teamA, srv.URL, request{path: "/prometheus/api/v1/query", orgID: "team-b"})
	require.Equal(t, http.StatusForbidden, code)
	code, _, _ = do(t, teamA, srv.URL, request{method: http.MethodPost, path: "/ingester/flush"})
	require.Equal(t, http.StatusForbidden, code, "a tenant's certificate has no admin role")

	ops := client(ca, "ops", "ops")
	code, _, _ = do(t, ops, srv.URL, request{method: http.MethodPost, path: "/ingester/flush"})
	require.Equal(t, http.StatusOK, code, "the credentials file gives the ops certificate the admin role")

	noCert := client(nil, "", "")
	code, _, _ = do(t, noCert, srv.URL, request{path: "/ready"})
	require.Equal(t, http.StatusOK, code, "probes need no certificate")
	code, _, _ = do(t, noCert, srv.URL, request{path: "/prometheus/api/v1/query"})
	require.Equal(t, http.StatusUnauthorized, code)

	// A certificate from another CA is refused by the handshake.
	foreign := client(other, "foreign", "team-a")
	_, err = foreign.Get(srv.URL + "/prometheus/api/v1/query")
	require.Error(t, err)
}

func TestParseCredentials_Errors(t *testing.T) {
	hash := bcryptHash(t, "x")
	for _, tc := range []struct{ yaml, err string }{
		{"credentials: [{name: a, secret_hash: '" + hash + "', tenants: [t], roles: [superuser]}]", `role "superuser"`},
		{"credentials: [{name: a, secret_hash: 'plain', tenants: [t], roles: [read]}]", "neither a bcrypt hash"},
		{"credentials: [{name: a, secret_hash: 'sha256:abc', tenants: [t], roles: [read]}]", "64 hex digits"},
		{"credentials: [{name: a, tenants: [t], roles: [read]}]", "secret_hash must be set"},
		{"credentials: [{name: a, secret_hash: '" + hash + "', roles: [read]}]", "at least one tenant"},
		{"credentials: [{name: a, secret_hash: '" + hash + "', tenants: ['..'], roles: [read]}]", `tenant ".."`},
		{"credentials: [{name: 'a:b', secret_hash: '" + hash + "', tenants: [t], roles: [read]}]", "no ':'"},
		{"credentials: [{name: a, secret_hash: '" + hash + "', tenants: [t], roles: [read]}, {name: a, secret_hash: '" + hash + "', tenants: [t], roles: [read]}]", "listed twice"},
		{"credentials: [{name: a, password: x}]", "field password not found"},
	} {
		_, err := parseCredentials([]byte(tc.yaml), true)
		require.ErrorContains(t, err, tc.err, tc.yaml)
	}
	// htpasswd -B writes $2y$ hashes.
	set, err := parseCredentials([]byte("credentials: [{name: a, secret_hash: '"+strings.Replace(hash, "$2a$", "$2y$", 1)+"', tenants: [t], roles: [read]}]"), true)
	require.NoError(t, err)
	require.True(t, set.byName["a"].matches("x"))
}

func TestRequiredRole(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		role         Role
	}{
		{http.MethodPost, "/api/v1/push", RoleWrite},
		{http.MethodPost, "/otlp/v1/metrics", RoleWrite},
		{http.MethodPost, "/api/v1/upload/block/01J/start", RoleWrite},
		{http.MethodGet, "/prometheus/api/v1/query_range", RoleRead},
		{http.MethodPost, "/prometheus/api/v1/read", RoleRead},
		{http.MethodGet, "/api/v1/user_limits", RoleRead},
		{http.MethodPost, "/prometheus/config/v1/rules/ns", RoleRules},
		{http.MethodPost, "/api/v1/alerts", RoleRules},
		{http.MethodGet, "/alertmanager/api/v2/alerts", RoleRead},
		{http.MethodPost, "/alertmanager/api/v2/silences", RoleRules},
		{http.MethodPost, "/prometheus/api/v1/admin/tsdb/delete_series", RoleAdmin},
		{http.MethodGet, "/prometheus//api/v1/query", RoleAdmin},
		{http.MethodGet, "/prometheus/api/v1/./query", RoleAdmin},
		{http.MethodGet, "/ready", rolePublic},
	} {
		require.Equal(t, tc.role, RequiredRole(tc.method, tc.path), tc.path)
	}
}

func TestBasic_HostileCredentials(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "credentials.yaml")
	writeCredentials(t, creds,
		Credential{Name: "writer", SecretHash: bcryptHash(t, "w-secret"), Tenants: []string{"team-a"}, Roles: []Role{RoleWrite}})
	s := newTestServer(t, "-auth.type=basic", "-auth.credentials-file="+creds)
	checks := func() float64 { return testutil.ToFloat64(s.authn.secretChecks) }

	// A client retrying a wrong password pays bcrypt once per cache TTL, not once per request.
	for range 5 {
		code, _, _ := do(t, http.DefaultClient, s.url, request{method: http.MethodPost, path: "/api/v1/push", user: "writer", password: "guess"})
		require.Equal(t, http.StatusUnauthorized, code)
	}
	require.Equal(t, 1.0, checks())
	// So does the right one.
	for range 5 {
		code, _, _ := do(t, http.DefaultClient, s.url, request{method: http.MethodPost, path: "/api/v1/push", user: "writer", password: "w-secret"})
		require.Equal(t, http.StatusOK, code)
	}
	require.Equal(t, 2.0, checks())
	// An unknown user costs no check at all; a 100 KB password is refused like any wrong one.
	code, _, _ := do(t, http.DefaultClient, s.url, request{path: "/prometheus/api/v1/query", user: "nobody", password: "x"})
	require.Equal(t, http.StatusUnauthorized, code)
	code, _, _ = do(t, http.DefaultClient, s.url, request{path: "/prometheus/api/v1/query", user: "writer", password: strings.Repeat("p", 100<<10)})
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, 3.0, checks())

	// With every check slot taken (a flood of new passwords), a request whose client gives up is answered
	// 503, retryable, instead of waiting: the cores stay bounded.
	for range cap(s.authn.verifySlots) {
		s.authn.verifySlots <- struct{}{}
	}
	defer func() {
		for range cap(s.authn.verifySlots) {
			<-s.authn.verifySlots
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/push", nil)
	req.SetBasicAuth("writer", "another-guess")
	w := httptest.NewRecorder()
	s.authn.Middleware(echoTenant()).ServeHTTP(w, req)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, 3.0, checks())
}
