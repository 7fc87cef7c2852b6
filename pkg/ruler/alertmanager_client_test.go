package ruler

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tlsconfig"
	"github.com/strata-metrics/strata/pkg/tlsconfig/tlstest"
)

// tlsAlertmanager is an Alertmanager endpoint over TLS that requires client certificates from clientCA
// and records who sent each post.
type tlsAlertmanager struct {
	*receivedAlerts
	srv *httptest.Server

	mtx         sync.Mutex
	clientNames []string
	passwords   []string
}

func startTLSAlertmanager(t *testing.T, certPath, keyPath string, clientCA *tlstest.CA) *tlsAlertmanager {
	t.Helper()
	am := &tlsAlertmanager{receivedAlerts: &receivedAlerts{}}
	record := am.handler(t)
	am.srv = tlstest.StartServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		am.mtx.Lock()
		am.clientNames = append(am.clientNames, r.TLS.PeerCertificates[0].Subject.CommonName)
		_, password, _ := r.BasicAuth()
		am.passwords = append(am.passwords, password)
		am.mtx.Unlock()
		record.ServeHTTP(w, r)
	}), certPath, keyPath, clientCA)
	return am
}

// alertingRuler starts a ruler whose tenant-a fires one alert at every evaluation.
func alertingRuler(t *testing.T, cfg Config) *testRuler {
	t.Helper()
	db := openTSDB(t, testSample{labels.FromStrings("__name__", "queue_length", "queue", "q1"), time.Now().Add(-5 * time.Second), 50})
	r := newTestRuler(t, cfg, nil, map[string]storage.Queryable{"tenant-a": db}, Dependencies{})
	r.setGroup(t, "tenant-a", "alerts", rulefmt.RuleGroup{Name: "queues", Rules: []rulefmt.Rule{{
		Alert: "QueueTooLong", Expr: "queue_length > 10",
	}}})
	r.sync(t)
	return r
}

func TestRuler_SendsAlertsOverTLSWithClientCertificateAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	serverCert, serverKey := ca.Issue(t, "alertmanager", "alertmanager")
	clientCert, clientKey := ca.Issue(t, "ruler", "ruler-client")
	am := startTLSAlertmanager(t, serverCert, serverKey, ca)

	cfg := testConfig(t)
	cfg.AlertmanagerURL = am.srv.URL + "/alertmanager"
	cfg.AlertmanagerClient.TLS = tlsconfig.ClientConfig{Enabled: true, CAPath: ca.CertPath, CertPath: clientCert, KeyPath: clientKey,
		Common: tlsconfig.Common{MinVersion: "VersionTLS12"}}
	cfg.AlertmanagerClient.BasicAuthUsername = "ruler"
	cfg.AlertmanagerClient.BasicAuthPassword.Value = "s3cret"
	alertingRuler(t, cfg)

	require.Eventually(t, func() bool { return len(am.get()) > 0 }, waitFor, 10*time.Millisecond)
	post := am.get()[0]
	require.Equal(t, "tenant-a", post.tenant)
	require.Equal(t, "/alertmanager/api/v2/alerts", post.path)
	require.Equal(t, "ruler", post.user)
	am.mtx.Lock()
	defer am.mtx.Unlock()
	require.Equal(t, "ruler-client", am.clientNames[0], "the ruler presented its client certificate")
	require.Equal(t, "s3cret", am.passwords[0])
}

func TestRuler_URLCredentialsWinOverTheBasicAuthFlags(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	serverCert, serverKey := ca.Issue(t, "alertmanager", "alertmanager")
	clientCert, clientKey := ca.Issue(t, "ruler", "ruler-client")
	am := startTLSAlertmanager(t, serverCert, serverKey, ca)

	cfg := testConfig(t)
	cfg.AlertmanagerURL = strings.Replace(am.srv.URL, "https://", "https://from-url:url-pass@", 1) + "/alertmanager"
	cfg.AlertmanagerClient.TLS = tlsconfig.ClientConfig{Enabled: true, CAPath: ca.CertPath, CertPath: clientCert, KeyPath: clientKey,
		Common: tlsconfig.Common{MinVersion: "VersionTLS12"}}
	cfg.AlertmanagerClient.BasicAuthUsername = "from-flag"
	cfg.AlertmanagerClient.BasicAuthPassword.Value = "flag-pass"
	alertingRuler(t, cfg)

	require.Eventually(t, func() bool { return len(am.get()) > 0 }, waitFor, 10*time.Millisecond)
	require.Equal(t, "from-url", am.get()[0].user)
	am.mtx.Lock()
	defer am.mtx.Unlock()
	require.Equal(t, "url-pass", am.passwords[0])
}

func TestRuler_RefusesAnAlertmanagerCertificateFromAnotherCA(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	other := tlstest.NewCA(t, dir, "other")
	serverCert, serverKey := other.Issue(t, "alertmanager", "alertmanager")
	clientCert, clientKey := ca.Issue(t, "ruler", "ruler-client")
	am := startTLSAlertmanager(t, serverCert, serverKey, ca)

	cfg := testConfig(t)
	cfg.AlertmanagerURL = am.srv.URL + "/alertmanager"
	cfg.AlertmanagerClient.TLS = tlsconfig.ClientConfig{Enabled: true, CAPath: ca.CertPath, CertPath: clientCert, KeyPath: clientKey,
		Common: tlsconfig.Common{MinVersion: "VersionTLS12"}}
	r := alertingRuler(t, cfg)

	require.Eventually(t, func() bool {
		return counterSum(t, r.reg, "prometheus_notifications_errors_total") >= 1
	}, waitFor, 10*time.Millisecond, "the send failed")
	require.Empty(t, am.get(), "nothing reached the Alertmanager with the untrusted certificate")
}

// counterSum adds up the samples of a counter family of reg, over all its label values.
func counterSum(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range families {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestAlertmanagerClientConfig_Validate(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"nothing": {},
		"https with TLS": {args: []string{"-ruler.alertmanager-url=https://am:9093/alertmanager",
			"-ruler.alertmanager-client.tls-enabled", "-ruler.alertmanager-client.tls-ca-path=/ca.crt"}},
		"basic auth flags": {args: []string{"-ruler.alertmanager-url=http://am:9093",
			"-ruler.alertmanager-client.basic-auth-username=u", "-ruler.alertmanager-client.basic-auth-password=p"}},
		"TLS to an http URL": {args: []string{"-ruler.alertmanager-url=http://am:9093", "-ruler.alertmanager-client.tls-enabled"},
			wantErr: "http://am:9093 is not https"},
		"TLS without URL": {args: []string{"-ruler.alertmanager-client.tls-enabled"},
			wantErr: "-ruler.alertmanager-url, which is empty"},
		"CA without TLS": {args: []string{"-ruler.alertmanager-url=https://am", "-ruler.alertmanager-client.tls-ca-path=/ca.crt"},
			wantErr: "-ruler.alertmanager-client.tls-enabled is false"},
		"password without user": {args: []string{"-ruler.alertmanager-client.basic-auth-password=p"},
			wantErr: "basic-auth-password is set without -ruler.alertmanager-client.basic-auth-username"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var cfg Config
			f := flag.NewFlagSet("test", flag.ContinueOnError)
			cfg.RegisterFlags(f)
			require.NoError(t, f.Parse(tc.args))
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
