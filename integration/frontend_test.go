package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// frontendCluster is one ingester, a distributor, a query-frontend and queriers that pull from it.
type frontendCluster struct {
	*cluster
	frontend *strataProcess
	queriers []*strataProcess
}

func startFrontendCluster(t *testing.T, queriers int, frontendArgs, querierArgs []string) *frontendCluster {
	t.Helper()
	c := startCluster(t, clusterOptions{ingesters: 1, args: []string{"-distributor.replication-factor=1"}})
	fc := &frontendCluster{cluster: c}
	fc.frontend = c.newProcess("frontend", 0, append([]string{"-target=query-frontend"}, frontendArgs...)...)
	fc.frontend.start()
	for i := range queriers {
		id := fmt.Sprintf("querier-%d", i+1)
		q := c.newProcess(id, 0, append([]string{"-target=querier", "-querier.id=" + id, "-querier.frontend-address=" + fc.frontend.grpcAddr}, querierArgs...)...)
		// Each querier stands for a machine of its own: one core, so that the queriers of this 2-core
		// machine do not take each other's CPU.
		q.env = []string{"GOMAXPROCS=1"}
		q.startNoWait()
		fc.queriers = append(fc.queriers, q)
	}
	for _, q := range fc.queriers {
		q.waitReady()
	}
	require.Eventually(t, func() bool {
		return strings.Contains(getText(t, fc.frontend.url("/metrics")), fmt.Sprintf("strata_query_frontend_connected_queriers %d", queriers))
	}, 30*time.Second, 20*time.Millisecond, "the queriers never connected to the frontend")
	return fc
}

// timedQuery runs an instant query and returns its latency and status.
func timedQuery(ctx context.Context, base, tenantID, query string) (time.Duration, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/prometheus/api/v1/query?"+url.Values{"query": {query}}.Encode(), nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("X-Scope-OrgID", tenantID)
	start := time.Now()
	code, _, err := doRequest(req)
	return time.Since(start), code, err
}

func p99(latencies []time.Duration) time.Duration {
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	return sorted[len(sorted)*99/100]
}

// TestFrontend_OneTenantsSlowQueriesDoNotDelayAnothers: tenant "slow" keeps the frontend's queue full of
// expensive queries; tenant "steady" queries throughout. The fair queue gives steady the next free
// querier whatever slow has queued, and max_queriers_per_tenant keeps slow on one of the two queriers.
func TestFrontend_OneTenantsSlowQueriesDoNotDelayAnothers(t *testing.T) {
	dir := t.TempDir()
	runtimeFile := writeFile(t, dir, "runtime.yaml", `
overrides:
  slow:
    max_queriers_per_tenant: 1
`)
	fc := startFrontendCluster(t, 2, []string{"-runtime-config.file=" + runtimeFile}, []string{"-querier.max-concurrent=4"})
	steady := &loadClient{pushURL: fc.distributor.url("/api/v1/push"), queryURL: fc.frontend.url("/prometheus/api/v1/query"), tenant: "steady", series: 10, acked: map[string]map[int64]float64{}}
	for seq := range 5 {
		steady.pushOnce(seq)
	}
	require.Empty(t, steady.pushFailures)

	steadyLatencies := func(d time.Duration) []time.Duration {
		var out []time.Duration
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		for ctx.Err() == nil {
			took, code, err := timedQuery(context.Background(), fc.frontend.url(""), "steady", "sum(load_test_value)")
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, code)
			out = append(out, took)
			time.Sleep(20 * time.Millisecond)
		}
		return out
	}
	alone := p99(steadyLatencies(5 * time.Second))

	// slow keeps twice as many queries in flight as its querier runs at once, so its queue never empties.
	const slowQuery = `count_over_time(vector(1)[2h:10ms])`
	took, code, err := timedQuery(context.Background(), fc.frontend.url(""), "slow", slowQuery)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	t.Logf("one slow query alone: %s", took)
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg       sync.WaitGroup
		slowMu   sync.Mutex
		statuses = map[int]int{}
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, code, err := timedQuery(ctx, fc.frontend.url(""), "slow", slowQuery)
				if ctx.Err() != nil {
					return
				}
				slowMu.Lock()
				if err != nil {
					code = -1
				}
				statuses[code]++
				slowMu.Unlock()
			}
		}()
	}
	require.Eventually(t, func() bool {
		return strings.Contains(getText(t, fc.frontend.url("/metrics")), `strata_query_frontend_queue_length{user="slow"}`)
	}, 10*time.Second, 10*time.Millisecond, "slow's queries never queued")
	beside := p99(steadyLatencies(10 * time.Second))
	cancel()
	wg.Wait()

	t.Logf("steady query p99: %s alone, %s beside slow; slow's statuses %v", alone, beside, statuses)
	require.Positive(t, statuses[http.StatusOK], "slow's queries run too, on their querier")
	require.LessOrEqual(t, beside, 2*alone, "steady's queries waited behind slow's")
}
