package ruler

import (
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-metrics/strata/pkg/ruler/rulerpb"
	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// grpcPeers are rulers reached over real gRPC, the tenant in metadata.
type grpcPeers struct {
	t     *testing.T
	local string
	addrs []string
}

func (p grpcPeers) Addresses() ([]string, error) { return p.addrs, nil }
func (p grpcPeers) IsLocal(addr string) bool     { return addr == p.local }
func (p grpcPeers) Client(addr string) (rulerpb.RulerClient, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(tenant.UnaryClientInterceptor))
	if err != nil {
		return nil, err
	}
	p.t.Cleanup(func() { _ = conn.Close() })
	return rulerpb.NewRulerClient(conn), nil
}

// serveRuler serves r's gRPC API on loopback and returns its address.
func serveRuler(t *testing.T, r rulerpb.RulerServer) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.UnaryInterceptor(tenant.UnaryServerInterceptor))
	rulerpb.RegisterRulerServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestPrometheusAPI_GathersTheGroupsOfEveryRuler(t *testing.T) {
	db := openTSDB(t, testSample{labels.FromStrings("__name__", "errors", "job", "api"), time.Now().Add(-5 * time.Second), 2})
	queryables := map[string]storage.Queryable{"tenant-a": db}
	store := rulestore.NewBucketStore(objstore.NewInMemBucket(), "rules", slog.New(slog.DiscardHandler))
	// Ruler b evaluates namespace "b", ruler a the rest.
	owns := func(self string) func(string, string, string) bool {
		return func(_, namespace, _ string) bool { return (namespace == "b") == (self == "b") }
	}
	rb := newTestRuler(t, testConfig(t), store, queryables, Dependencies{Owns: owns("b")})
	addrB := serveRuler(t, rb.Ruler)
	ra := newTestRuler(t, testConfig(t), store, queryables, Dependencies{Owns: owns("a"),
		Peers: grpcPeers{t: t, local: "a", addrs: []string{"a", addrB}}})

	ra.setGroup(t, "tenant-a", "b", rulefmt.RuleGroup{Name: "on-b", Rules: []rulefmt.Rule{
		{Alert: "Errors", Expr: "errors > 1"},
	}})
	ra.setGroup(t, "tenant-a", "a", recordingGroup("on-a", 0, recordRule("job:errors", "errors")))
	ra.setGroup(t, "tenant-a", "c", recordingGroup("also-on-a", 0, recordRule("other", "vector(1)")))
	ra.sync(t)
	rb.sync(t)
	require.Eventually(t, func() bool { return len(rb.alerts("tenant-a", "Errors")) == 1 }, waitFor, 10*time.Millisecond)

	code, body := apiGet(t, ra.ServeRules, "tenant-a", RulesPath, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []string{"a/on-a/job:errors recording", "b/on-b/Errors alerting", "c/also-on-a/other recording"}, ruleNames(t, body))

	code, body = apiGet(t, ra.ServeRules, "tenant-a", RulesPath, map[string][]string{"type": {"alert"}})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []string{"b/on-b/Errors alerting"}, ruleNames(t, body), "filters apply on the other ruler too")

	code, body = apiGet(t, ra.ServeAlerts, "tenant-a", AlertsPath, nil)
	require.Equal(t, http.StatusOK, code)
	alerts := body["data"].(map[string]any)["alerts"].([]any)
	require.Len(t, alerts, 1)
	require.Equal(t, "Errors", alerts[0].(map[string]any)["labels"].(map[string]any)["alertname"])

	_, body = apiGet(t, ra.ServeRules, "tenant-b", RulesPath, nil)
	require.Empty(t, ruleNames(t, body), "another tenant sees none of them")

	// A ruler that cannot answer fails the request rather than hide its groups.
	down := newTestRuler(t, testConfig(t), store, queryables, Dependencies{Owns: owns("a"),
		Peers: grpcPeers{t: t, local: "a", addrs: []string{"a", "127.0.0.1:1"}}})
	code, body = apiGet(t, down.ServeRules, "tenant-a", RulesPath, nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body["error"], "127.0.0.1:1")
}
