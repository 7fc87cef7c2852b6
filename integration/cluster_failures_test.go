package integration

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// TestCluster_KillIngesterUnderLoad kills one of three ingesters with SIGKILL while a client pushes and
// queries, then restarts it.
func TestCluster_KillIngesterUnderLoad(t *testing.T) {
	c := startCluster(t, clusterOptions{ingesters: 3})
	testKillAndRestart(t, c)
}

func testKillAndRestart(t *testing.T, c *cluster) {
	load, stopLoad := startLoad(t, c)
	load.waitForPushes(t, 50)

	victim := c.ingesters[1]
	tokensBefore, err := os.ReadFile(filepath.Join(c.dir, "ingester-2", "tokens.json"))
	require.NoError(t, err)
	killedAt := time.Now()
	victim.kill()
	c.waitForInstance(c.distributor, "ingester-2", "unhealthy", func(inst ringInstance, ok bool) bool {
		return ok && !inst.Healthy
	})
	t.Logf("killed ingester marked unhealthy by the distributor after %s (heartbeat period %s, timeout %s)",
		time.Since(killedAt).Round(10*time.Millisecond), testHeartbeatPeriod, testHeartbeatTimeout)
	load.waitForPushes(t, 100)

	victim.restart()
	restartedAt := time.Now()
	c.waitForInstance(c.distributor, "ingester-2", "ACTIVE", func(inst ringInstance, ok bool) bool {
		return ok && inst.State == "ACTIVE" && inst.Healthy
	})
	t.Logf("restarted ingester ACTIVE in the distributor's ring after %s", time.Since(restartedAt).Round(10*time.Millisecond))
	tokensAfter, err := os.ReadFile(filepath.Join(c.dir, "ingester-2", "tokens.json"))
	require.NoError(t, err)
	require.Equal(t, string(tokensBefore), string(tokensAfter), "the restarted ingester took its tokens back")
	load.waitForPushes(t, 50)
	stopLoad()

	load.requireNoFailures(t)
	load.requireAllAckedSamplesQueryable(t, c.querier)
	// The restarted ingester replayed its WAL: it serves the samples acknowledged before the kill itself.
	require.NotEmpty(t, ingesterSamples(t, victim, load.tenant, killedAt), "the restarted ingester serves its data")
}

// ingesterSamples asks one ingester directly for load_test_value samples older than before.
func ingesterSamples(t *testing.T, p *strataProcess, tenantID string, before time.Time) []*seriespb.Series {
	t.Helper()
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(tenant.UnaryClientInterceptor), grpc.WithStreamInterceptor(tenant.StreamClientInterceptor))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(tenant.NewContext(context.Background(), tenantID), 10*time.Second)
	defer cancel()
	stream, err := ingesterpb.NewIngesterClient(conn).QueryStream(ctx, &ingesterpb.QueryRequest{
		StartMs:  before.Add(-time.Hour).UnixMilli(),
		EndMs:    before.UnixMilli(),
		Matchers: seriespb.FromLabelMatchers([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "load_test_value")}),
	})
	require.NoError(t, err)
	var out []*seriespb.Series
	for {
		resp, err := stream.Recv()
		if err != nil {
			break
		}
		out = append(out, resp.Series...)
	}
	return out
}

// TestCluster_RollingRestart restarts the three ingesters one at a time, gracefully, under load.
func TestCluster_RollingRestart(t *testing.T) {
	c := startCluster(t, clusterOptions{ingesters: 3})
	load, stopLoad := startLoad(t, c)
	load.waitForPushes(t, 30)
	for i, ing := range c.ingesters {
		id := ingesterID(i)
		ing.stop()
		load.waitForPushes(t, 10) // pushes and queries go on while the ingester is down
		ing.restart()
		c.waitForInstance(c.distributor, id, "ACTIVE again", func(inst ringInstance, ok bool) bool {
			return ok && inst.State == "ACTIVE" && inst.Healthy
		})
		c.waitForInstance(c.querier, id, "ACTIVE again", func(inst ringInstance, ok bool) bool {
			return ok && inst.State == "ACTIVE" && inst.Healthy
		})
		load.waitForPushes(t, 30)
	}
	stopLoad()
	t.Logf("push latency p99 during the rolling restart: %s (%d pushes)", load.p99().Round(time.Millisecond), load.pushes)
	load.requireNoFailures(t)
	load.requireAllAckedSamplesQueryable(t, c.querier)
}

// TestCluster_TwoIngestersDown checks that with two of three ingesters gone a push is never acknowledged,
// and that pushes succeed again once one of them is back.
func TestCluster_TwoIngestersDown(t *testing.T) {
	c := startCluster(t, clusterOptions{ingesters: 3})
	req := func() *prompb.WriteRequest {
		return &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "two_down"}},
			Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}},
		}}}
	}
	code, body := push(t, c.distributor.url("/api/v1/push"), "t", req())
	require.Equal(t, http.StatusNoContent, code, body)

	c.ingesters[0].kill()
	c.ingesters[2].kill()
	// Before and after the ring notices (heartbeat timeout), every push must fail with a retryable 5xx,
	// and every query with a 5xx that names the failed ingesters.
	deadline := time.Now().Add(testHeartbeatTimeout + 2*time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		code, body := push(t, c.distributor.url("/api/v1/push"), "t", req())
		require.GreaterOrEqual(t, code, 500, "push %d with two of three ingesters down: %d %s", n, code, body)
		code, resp := getAPI(t, c.querier.url("/prometheus"), "/api/v1/query", "t", url.Values{"query": {"two_down"}})
		require.GreaterOrEqual(t, code, 500, "query %d with two of three ingesters down: %d %s", n, code, resp.Error)
		require.Contains(t, resp.Error, "ingester-1")
		require.Contains(t, resp.Error, "ingester-3")
		time.Sleep(100 * time.Millisecond)
	}

	c.ingesters[2].restart()
	require.Eventually(t, func() bool {
		code, _ := push(t, c.distributor.url("/api/v1/push"), "t", req())
		return code == http.StatusNoContent
	}, 30*time.Second, 100*time.Millisecond, "pushes never succeeded again with two of three ingesters up")
}

// TestCluster_ZoneAwareness runs 3 zones of 2 ingesters and loses a whole zone under load.
func TestCluster_ZoneAwareness(t *testing.T) {
	c := startCluster(t, clusterOptions{ingesters: 6, zones: []string{"zone-a", "zone-b", "zone-c"}})
	load, stopLoad := startLoad(t, c)
	load.waitForPushes(t, 50)
	for i, ing := range c.ingesters {
		if i%3 == 1 { // zone-b
			ing.kill()
		}
	}
	c.waitForInstance(c.distributor, "ingester-2", "unhealthy", func(inst ringInstance, ok bool) bool { return ok && !inst.Healthy })
	c.waitForInstance(c.distributor, "ingester-5", "unhealthy", func(inst ringInstance, ok bool) bool { return ok && !inst.Healthy })
	load.waitForPushes(t, 50)
	stopLoad()
	load.requireNoFailures(t)
	load.requireAllAckedSamplesQueryable(t, c.querier)
}
