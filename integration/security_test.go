package integration

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/strata-metrics/strata/pkg/tlsconfig/tlstest"
)

// secureCredentials writes a credentials file of name → password, tenants and roles.
func secureCredentials(t *testing.T, dir string, entries ...[4]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("credentials:\n")
	for _, e := range entries {
		hash, err := bcrypt.GenerateFromPassword([]byte(e[1]), bcrypt.DefaultCost)
		require.NoError(t, err)
		fmt.Fprintf(&b, "  - name: %s\n    secret_hash: %q\n    tenants: [%s]\n    roles: [%s]\n", e[0], hash, e[2], e[3])
	}
	return writeFile(t, dir, "credentials.yaml", b.String())
}

// basicAuthTransport adds a credential to requests that carry none.
type basicAuthTransport struct {
	base           http.RoundTripper
	user, password string
}

func (b *basicAuthTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == "" && b.user != "" {
		r = r.Clone(r.Context())
		r.SetBasicAuth(b.user, b.password)
	}
	return b.base.RoundTrip(r)
}

// clientAs is an HTTPS client that trusts ca and authenticates as user.
func clientAs(pool *x509.CertPool, user, password string) *http.Client {
	return &http.Client{Transport: &basicAuthTransport{
		base: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		user: user, password: password,
	}}
}

// call makes a request with client and returns its status and body.
func call(t *testing.T, client *http.Client, method, target, orgID string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	require.NoError(t, err)
	if orgID != "" {
		req.Header.Set("X-Scope-OrgID", orgID)
	}
	if method == http.MethodPost && strings.HasSuffix(target, "/api/v1/push") {
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(raw)
}

func serverSerial(t *testing.T, addr string, pool *x509.CertPool) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	require.NoError(t, err)
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestSecureCluster: a cluster of separate processes with TLS on every HTTP and gRPC port and
// -auth.type=basic. A real Prometheus writes with basic_auth and tls_config; each credential can do
// what its roles and tenants allow and nothing else; plain text is refused everywhere; a certificate
// replaced on disk is served without a restart.
func TestSecureCluster(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, "strata", "strata")
	creds := secureCredentials(t, dir,
		[4]string{"team-a-writer", "writer-a", "team-a", "write"},
		[4]string{"team-a-reader", "reader-a", "team-a", "read"},
		[4]string{"team-b-writer", "writer-b", "team-b", "write"},
		[4]string{"team-b-reader", "reader-b", "team-b", "read"},
		[4]string{"ops", "ops-secret", `"*"`, "admin"},
	)
	pool := ca.Pool()
	secure := []string{
		"-server.http-tls-cert-path=" + cert, "-server.http-tls-key-path=" + key,
		"-server.grpc-tls-cert-path=" + cert, "-server.grpc-tls-key-path=" + key, "-server.grpc-tls-ca-path=" + ca.CertPath,
		"-auth.type=basic", "-auth.credentials-file=" + creds,
		"-memberlist.tls-enabled", "-memberlist.tls-cert-path=" + cert, "-memberlist.tls-key-path=" + key, "-memberlist.tls-ca-path=" + ca.CertPath,
	}
	for _, client := range []string{"ingester.client", "store-gateway.client", "querier.frontend-client", "ruler.client", "alertmanager.alertmanager-client"} {
		secure = append(secure, "-"+client+".tls-enabled", "-"+client+".tls-ca-path="+ca.CertPath,
			"-"+client+".tls-cert-path="+cert, "-"+client+".tls-key-path="+key)
	}
	c := startCluster(t, clusterOptions{ingesters: 3, args: secure, configure: func(p *strataProcess) {
		p.scheme, p.client = "https", clientAs(pool, "ops", "ops-secret")
	}})

	// A real Prometheus scrapes a target and writes its samples to team-a with basic_auth over TLS.
	scrapeAndWrite(t, "secure_test_metric 42", c.distributor.url("/api/v1/push"), fmt.Sprintf(`
    basic_auth:
      username: team-a-writer
      password: writer-a
    tls_config:
      ca_file: %s`, ca.CertPath))

	readerA := clientAs(pool, "team-a-reader", "reader-a")
	query := c.querier.url("/prometheus/api/v1/query?" + url.Values{"query": {"secure_test_metric"}}.Encode())
	require.Eventually(t, func() bool {
		code, body := call(t, readerA, http.MethodGet, query, "", nil)
		return code == http.StatusOK && strings.Contains(body, `"42"`)
	}, 60*time.Second, 250*time.Millisecond, "Prometheus' samples never became readable by team-a's reader")

	// Each credential does what its roles and tenants allow, and nothing else.
	writerA := clientAs(pool, "team-a-writer", "writer-a")
	code, body := call(t, writerA, http.MethodGet, query, "", nil)
	require.Equal(t, http.StatusForbidden, code, "the writer cannot read: %s", body)
	code, _ = call(t, clientAs(pool, "team-b-reader", "reader-b"), http.MethodGet, query, "team-a", nil)
	require.Equal(t, http.StatusForbidden, code, "team-b's reader cannot read team-a")
	code, body = call(t, clientAs(pool, "team-b-reader", "reader-b"), http.MethodGet, query, "", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, "secure_test_metric", "team-b sees none of team-a's series")
	push := c.distributor.url("/api/v1/push")
	raw := snappyWriteRequest(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "forged"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}},
	}}})
	code, _ = call(t, clientAs(pool, "team-b-writer", "writer-b"), http.MethodPost, push, "team-a", strings.NewReader(string(raw)))
	require.Equal(t, http.StatusForbidden, code, "team-b's writer cannot write team-a")
	code, _ = call(t, clientAs(pool, "team-a-writer", "wrong"), http.MethodPost, push, "", strings.NewReader(string(raw)))
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = call(t, clientAs(pool, "", ""), http.MethodGet, query, "team-a", nil)
	require.Equal(t, http.StatusUnauthorized, code, "X-Scope-OrgID alone is no credential")

	// Admin endpoints need the admin role.
	for _, p := range []string{"/ingester/flush", "/config", "/runtime_config", "/debug/pprof/cmdline", "/ingester/ring", "/metrics"} {
		code, _ := call(t, clientAs(pool, "", ""), http.MethodGet, c.ingesters[0].url(p), "", nil)
		require.Equal(t, http.StatusUnauthorized, code, p)
		code, _ = call(t, readerA, http.MethodGet, c.ingesters[0].url(p), "", nil)
		require.Equal(t, http.StatusForbidden, code, p)
	}
	code, _ = call(t, clientAs(pool, "ops", "ops-secret"), http.MethodGet, c.ingesters[0].url("/config"), "", nil)
	require.Equal(t, http.StatusOK, code)

	// Plain text is refused on every HTTP and gRPC port.
	for _, p := range append(append([]*strataProcess{}, c.ingesters...), c.distributor, c.querier) {
		resp, err := http.Get("http://" + p.httpAddr + "/ready")
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP to %s", p.httpAddr)

		conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		_ = conn.Close()
		require.Error(t, err, "plain gRPC to %s", p.grpcAddr)
	}
	// The gossip ports speak TLS only: a plain-text peer is disconnected without an answer.
	for _, gossip := range strings.Split(c.joinAddr, ",") {
		conn, err := net.DialTimeout("tcp", gossip, 2*time.Second)
		require.NoError(t, err)
		_, _ = conn.Write([]byte("plain-text gossip\n"))
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
		answer, err := io.ReadAll(conn)
		_ = conn.Close()
		var netErr net.Error
		require.False(t, errors.As(err, &netErr) && netErr.Timeout(), "gossip port %s held a plain-text connection open", gossip)
		require.Less(t, len(answer), 16, "a TLS alert at most")
	}
	// A gRPC client with a certificate of another CA is refused too: only members may name tenants.
	other := tlstest.NewCA(t, dir, "other")
	otherCert, otherKey := other.Issue(t, "intruder", "strata")
	pair, err := tls.LoadX509KeyPair(otherCert, otherKey)
	require.NoError(t, err)
	intruder, err := tls.Dial("tcp", c.ingesters[0].grpcAddr, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2"}})
	if err == nil {
		// TLS 1.3 reports the refused client certificate on the first read.
		_, err = intruder.Read(make([]byte, 1))
		_ = intruder.Close()
	}
	require.Error(t, err)

	// The certificate is replaced on disk: every server presents the new one without a restart, and the
	// cluster keeps working with it (its gRPC clients present it too).
	before := serverSerial(t, c.distributor.httpAddr, pool)
	ca.Issue(t, "strata", "strata")
	require.Eventually(t, func() bool { return serverSerial(t, c.distributor.httpAddr, pool) != before }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, tlstest.Serial(t, cert).String(), serverSerial(t, c.ingesters[0].grpcAddr, pool))
	code, body = call(t, writerA, http.MethodPost, push, "", strings.NewReader(string(raw)))
	require.Equal(t, http.StatusNoContent, code, body)
}

// TestMTLSTenants: with -auth.type=mtls the client certificate names the tenant.
func TestMTLSTenants(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, "strata", "strata")
	p := newStrataProcess(t, filepath.Join(dir, "data"),
		"-ingester.ring.instance-addr=127.0.0.1", "-ingester.ring.instance-id=strata-test",
		"-server.http-tls-cert-path="+cert, "-server.http-tls-key-path="+key, "-server.http-tls-ca-path="+ca.CertPath,
		"-server.http-tls-client-auth=VerifyClientCertIfGiven", "-auth.type=mtls")
	pool := ca.Pool()
	p.scheme, p.client = "https", clientAs(pool, "", "")
	p.start()

	withCert := func(issuer *tlstest.CA, cn string) *http.Client {
		certPath, keyPath := issuer.Issue(t, cn, cn)
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		require.NoError(t, err)
		// Sent whatever CAs the server names, as a client trying its luck would.
		sendCert := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, GetClientCertificate: sendCert}}}
	}
	teamA, teamB := withCert(ca, "team-a"), withCert(ca, "team-b")
	raw := snappyWriteRequest(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "mtls_metric"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 7}},
	}}})
	code, body := call(t, teamA, http.MethodPost, p.url("/api/v1/push"), "", strings.NewReader(string(raw)))
	require.Equal(t, http.StatusNoContent, code, body)

	query := p.url("/prometheus/api/v1/query?" + url.Values{"query": {"mtls_metric"}}.Encode())
	code, body = call(t, teamA, http.MethodGet, query, "", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"7"`)
	code, body = call(t, teamB, http.MethodGet, query, "", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, "mtls_metric", "team-b's certificate reads team-b")
	code, _ = call(t, teamB, http.MethodGet, query, "team-a", nil)
	require.Equal(t, http.StatusForbidden, code)
	code, _ = call(t, teamA, http.MethodPost, p.url("/ingester/flush"), "", nil)
	require.Equal(t, http.StatusForbidden, code, "a tenant's certificate is no admin")
	code, _ = call(t, p.client, http.MethodGet, query, "team-a", nil)
	require.Equal(t, http.StatusUnauthorized, code, "no certificate, no tenant")

	// A certificate from another CA is refused.
	foreign := withCert(tlstest.NewCA(t, dir, "other"), "team-a")
	_, err := foreign.Get(query)
	require.Error(t, err)
}

func snappyWriteRequest(t *testing.T, req *prompb.WriteRequest) []byte {
	t.Helper()
	raw, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, raw)
}

// TestBearerPrometheus: a real Prometheus writes with remote_write's authorization (a bearer token) and
// the token's tenant reads it back; another tenant's token reads nothing of it.
func TestBearerPrometheus(t *testing.T) {
	dir := t.TempDir()
	sha := func(token string) string {
		sum := sha256.Sum256([]byte(token))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	creds := writeFile(t, dir, "credentials.yaml", fmt.Sprintf(`credentials:
  - {name: agent-a, secret_hash: %q, tenants: [team-a], roles: [write, read]}
  - {name: agent-b, secret_hash: %q, tenants: [team-b], roles: [read]}
`, sha("token-of-team-a"), sha("token-of-team-b")))
	p := startStrata(t, filepath.Join(dir, "data"), "-auth.type=bearer", "-auth.credentials-file="+creds)

	scrapeAndWrite(t, "bearer_test_metric 5", p.url("/api/v1/push"), `
    authorization:
      credentials: token-of-team-a`)

	bearer := func(token string) *http.Client {
		return &http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+token)
			return http.DefaultTransport.RoundTrip(r)
		})}
	}
	query := p.url("/prometheus/api/v1/query?" + url.Values{"query": {"bearer_test_metric"}}.Encode())
	require.Eventually(t, func() bool {
		code, body := call(t, bearer("token-of-team-a"), http.MethodGet, query, "", nil)
		return code == http.StatusOK && strings.Contains(body, `"5"`)
	}, 60*time.Second, 250*time.Millisecond, "Prometheus' samples never became readable with team-a's token")
	code, body := call(t, bearer("token-of-team-b"), http.MethodGet, query, "", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, "bearer_test_metric")
	code, _ = call(t, bearer("token-of-team-c"), http.MethodGet, query, "", nil)
	require.Equal(t, http.StatusUnauthorized, code)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSingleBinaryTLS: -target=all with TLS on both ports and basic auth; its own components reach each
// other over gRPC with TLS (the querier's worker pulls queries from the query-frontend), so a query is
// answered end to end.
func TestSingleBinaryTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, "strata", "strata")
	creds := secureCredentials(t, dir, [4]string{"app", "app-secret", "team-a", "write, read"})
	args := []string{
		"-server.http-tls-cert-path=" + cert, "-server.http-tls-key-path=" + key,
		"-server.grpc-tls-cert-path=" + cert, "-server.grpc-tls-key-path=" + key, "-server.grpc-tls-ca-path=" + ca.CertPath,
		"-auth.type=basic", "-auth.credentials-file=" + creds,
	}
	for _, client := range []string{"ingester.client", "store-gateway.client", "querier.frontend-client", "ruler.client", "alertmanager.alertmanager-client"} {
		args = append(args, "-"+client+".tls-enabled", "-"+client+".tls-ca-path="+ca.CertPath,
			"-"+client+".tls-cert-path="+cert, "-"+client+".tls-key-path="+key)
	}
	p := newStrataProcess(t, filepath.Join(dir, "data"), append([]string{"-ingester.ring.instance-addr=127.0.0.1", "-ingester.ring.instance-id=strata-test"}, args...)...)
	pool := ca.Pool()
	app := clientAs(pool, "app", "app-secret")
	p.scheme, p.client = "https", app
	p.start()

	raw := snappyWriteRequest(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "single_binary_metric"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 3}},
	}}})
	code, body := call(t, app, http.MethodPost, p.url("/api/v1/push"), "", strings.NewReader(string(raw)))
	require.Equal(t, http.StatusNoContent, code, body)
	for _, path := range []string{"/prometheus/api/v1/query?", "/prometheus/api/v1/query_range?step=15&start=" + unixSeconds(time.Now().Add(-time.Hour)) + "&end=" + unixSeconds(time.Now()) + "&"} {
		code, body = call(t, app, http.MethodGet, p.url(path+url.Values{"query": {"single_binary_metric"}}.Encode()), "", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"3"`, path)
	}
}

// scrapeAndWrite runs a current Prometheus that scrapes a target serving exposition (one line of the text
// format) every second and writes it to pushURL with auth, remote_write settings in YAML (indented as
// keys of the remote_write entry).
func scrapeAndWrite(t *testing.T, exposition, pushURL, auth string) {
	t.Helper()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, exposition+"\n")
	}))
	t.Cleanup(target.Close)
	startPrometheus3(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: [%q]
remote_write:
  - url: %s%s
    queue_config:
      batch_send_deadline: 1s
`, strings.TrimPrefix(target.URL, "http://"), pushURL, auth))
}
