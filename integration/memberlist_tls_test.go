package integration

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tlsconfig/tlstest"
)

// A cluster of separate processes gossips over TLS: the ring forms, writes and reads work, and a member
// without the cluster's certificate, or without TLS, never sees the ring.
func TestMemberlistTLS_ClusterGossipsOverTLSAndRefusesOutsiders(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "gossip-ca")
	cert, key := ca.Issue(t, "member", "member")
	tlsArgs := func(ca, cert, key string) []string {
		return []string{"-memberlist.tls-enabled", "-memberlist.tls-ca-path=" + ca,
			"-memberlist.tls-cert-path=" + cert, "-memberlist.tls-key-path=" + key}
	}
	c := startCluster(t, clusterOptions{ingesters: 3, args: tlsArgs(ca.CertPath, cert, key)})

	code, body := push(t, c.distributor.url("/api/v1/push"), "team", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "gossip_tls"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 7}},
	}}})
	require.Equal(t, http.StatusNoContent, code, body)
	var vector []vectorSample
	mustGetAPI(t, c.querier.url("/prometheus"), "/api/v1/query", "team", url.Values{"query": {"gossip_tls"}}, &queryResult{Result: &vector})
	require.Len(t, vector, 1)
	require.Equal(t, 7.0, vector[0].Value.float(t))

	// Outsiders: a certificate from another CA (trusting the cluster's CA), and no TLS at all.
	other := tlstest.NewCA(t, dir, "other-ca")
	otherCert, otherKey := other.Issue(t, "outsider", "outsider")
	outsiders := map[string][]string{
		"another CA": tlsArgs(ca.CertPath, otherCert, otherKey),
		"plain text": nil,
	}
	before := rejectedTLSConnections(t, c.ingesters[0])
	for name, args := range outsiders {
		p := c.newProcess("outsider-"+regexp.MustCompile(`\W`).ReplaceAllString(name, "-"), 0, "-target=querier")
		// Every process of the cluster gets its TLS flags: the outsider's replace them.
		p.args = slices.DeleteFunc(p.args, func(a string) bool { return strings.HasPrefix(a, "-memberlist.tls-") })
		p.args = append(p.args, args...)
		p.start() // ready without the ring: it joins in the background
		require.Eventually(t, func() bool { return rejectedTLSConnections(t, c.ingesters[0]) > before }, 30*time.Second,
			100*time.Millisecond, "%s: the ingester never refused a handshake; outsider's log:\n%s", name, p.log)
		before = rejectedTLSConnections(t, c.ingesters[0])
		require.Empty(t, ringView(t, p), "%s: the outsider sees the ring", name)
		page := memberlistPage(t, c.querier)
		require.Contains(t, page, "ingester-1")
		require.NotContains(t, page, "outsider-", "%s: the outsider is a member", name)
	}
}

var rejectedTLSRe = regexp.MustCompile(`strata_memberlist_tcp_transport_rejected_connections_total\{reason="tls"\} (\d+)`)

func rejectedTLSConnections(t *testing.T, p *strataProcess) int {
	t.Helper()
	resp, err := p.httpClient().Get(p.url("/metrics"))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := rejectedTLSRe.FindSubmatch(body)
	require.NotNil(t, m, "no rejected-connections metric on /metrics")
	n, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	return n
}

func memberlistPage(t *testing.T, p *strataProcess) string {
	t.Helper()
	resp, err := p.httpClient().Get(p.url("/memberlist"))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}
