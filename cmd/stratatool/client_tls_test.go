package main

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/ruler"
	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/tlsconfig/tlstest"
)

// tlsSeen is what the TLS server received of a request.
type tlsSeen struct {
	tenant, authorization, clientCN string
}

// tlsRulesServer is the rules config API over HTTPS, requiring client certificates from the CA.
type tlsRulesServer struct {
	url string
	mu  sync.Mutex
	got []tlsSeen
}

func newTLSRulesServer(t *testing.T, ca *tlstest.CA) *tlsRulesServer {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	api := tenant.Middleware(true)(ruler.NewConfigAPI(rulestore.NewBucketStore(objstore.NewInMemBucket(), "rules", logger), noLimits{}, logger))
	s := &tlsRulesServer{}
	certPath, keyPath := ca.Issue(t, "strata", "strata")
	srv := tlstest.StartServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got = append(s.got, tlsSeen{r.Header.Get(tenant.OrgIDHeader), r.Header.Get("Authorization"), r.TLS.PeerCertificates[0].Subject.CommonName})
		s.mu.Unlock()
		api.ServeHTTP(w, r)
	}), certPath, keyPath, ca)
	s.url = srv.URL
	return s
}

func (s *tlsRulesServer) seen() []tlsSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tlsSeen(nil), s.got...)
}

func clearClientEnv(t *testing.T) {
	for _, k := range []string{"STRATA_ADDRESS", "STRATA_TENANT_ID", "STRATA_API_USER", "STRATA_API_KEY", "STRATA_AUTH_TOKEN",
		"STRATA_PASSWORD", "STRATA_TOKEN", "STRATA_TLS_CA_PATH", "STRATA_TLS_CERT_PATH", "STRATA_TLS_KEY_PATH"} {
		t.Setenv(k, "")
	}
}

func TestClient_TLSWithClientCertificateAndCredentials(t *testing.T) {
	clearClientEnv(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	s := newTLSRulesServer(t, ca)
	certPath, keyPath := ca.Issue(t, "cli", "team-a-cli")
	tlsArgs := []string{"--address", s.url, "--id", "team-a", "--tls-ca-path", ca.CertPath, "--tls-cert-path", certPath, "--tls-key-path", keyPath}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("writer:pw"))

	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"--user and --password":       {args: []string{"--user", "writer", "--password", "pw"}, want: basic},
		"--user and STRATA_PASSWORD":  {args: []string{"--user", "writer"}, env: map[string]string{"STRATA_PASSWORD": "pw"}, want: basic},
		"--bearer-token":              {args: []string{"--bearer-token", "tok"}, want: "Bearer tok"},
		"STRATA_TOKEN":                {env: map[string]string{"STRATA_TOKEN": "tok"}, want: "Bearer tok"},
		"the same password twice":     {args: []string{"--user", "writer", "--key", "pw", "--password", "pw"}, want: basic},
		"no credentials, certificate": {},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			before := len(s.seen())
			status, _, stderr := runCLI(t, append(append(tlsArgs, tc.args...), "rules", "list")...)
			require.Equal(t, 0, status, stderr)
			got := s.seen()[before:]
			require.Len(t, got, 1)
			require.Equal(t, tlsSeen{tenant: "team-a", authorization: tc.want, clientCN: "team-a-cli"}, got[0])
		})
	}
}

func TestClient_TLSRefusesAnUnverifiedCluster(t *testing.T) {
	clearClientEnv(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	other := tlstest.NewCA(t, dir, "other")
	s := newTLSRulesServer(t, ca)
	certPath, keyPath := ca.Issue(t, "cli", "cli")
	base := []string{"--address", s.url, "--id", "t", "--tls-cert-path", certPath, "--tls-key-path", keyPath}

	for name, tc := range map[string]struct {
		args []string
		want string // in stderr; empty: succeeds
	}{
		"system roots":             {want: "certificate signed by unknown authority"},
		"another CA":               {args: []string{"--tls-ca-path", other.CertPath}, want: "certificate signed by unknown authority"},
		"a name it does not carry": {args: []string{"--tls-ca-path", ca.CertPath, "--tls-server-name", "strata.example.com"}, want: "strata.example.com"},
		"the name it carries":      {args: []string{"--tls-ca-path", ca.CertPath, "--tls-server-name", "localhost"}},
		"insecure skip verify":     {args: []string{"--tls-insecure-skip-verify"}},
	} {
		t.Run(name, func(t *testing.T) {
			status, _, stderr := runCLI(t, append(append(base, tc.args...), "rules", "list")...)
			if tc.want == "" {
				require.Equal(t, 0, status, stderr)
				return
			}
			require.Equal(t, 1, status)
			require.Contains(t, stderr, tc.want)
		})
	}

	// Without a client certificate the cluster refuses the handshake.
	status, _, stderr := runCLI(t, "--address", s.url, "--id", "t", "--tls-ca-path", ca.CertPath, "rules", "list")
	require.Equal(t, 1, status)
	require.Contains(t, stderr, "certificate required")
}

func TestClient_RefusesIncompleteTLSAndCredentialFlags(t *testing.T) {
	clearClientEnv(t)
	for args, want := range map[string]string{
		"--address http://x --id t --tls-ca-path /ca.crt rules list":                   "--tls-* flags need an https:// --address",
		"--address https://x --id t --tls-cert-path /c.crt rules list":                 "--tls-cert-path and --tls-key-path go together",
		"--address https://x --id t --tls-ca-path /nonexistent.crt rules list":         "/nonexistent.crt",
		"--address https://x --id t --key a --password b rules list":                   "--key and --password are the same setting with different values",
		"--address https://x --id t --auth-token a --bearer-token b rules list":        "--auth-token and --bearer-token",
		"--address https://x --id t --user u --password p --bearer-token b rules list": "--auth-token and --user/--key both authenticate",
	} {
		status, _, stderr := runCLI(t, strings.Fields(args)...)
		require.Equal(t, 1, status, args)
		require.Contains(t, stderr, want, args)
	}
}
