package distributor

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// BenchmarkPushHA is BenchmarkPush for a tenant with accept_ha_samples whose series all carry the replica
// label: from the elected replica (every series loses the label, so is encoded again instead of
// forwarded as received) and from another replica (dropped with 202).
func BenchmarkPushHA(b *testing.B) {
	const seriesCount = 1000
	for _, bc := range []struct {
		name    string
		replica string
		status  int
	}{{"elected", "r1", http.StatusNoContent}, {"dropped", "r2", http.StatusAccepted}} {
		b.Run(bc.name, func(b *testing.B) {
			env := newTestEnv(b, withReplication(3, 3), withDefaultLimits(), withLimits(func(l *validation.Limits) {
				l.IngestionRate, l.IngestionBurstSize = 1e15, 1<<50
				l.AcceptHASamples = true
			}))
			env.d.clients = noopClients{}
			tracker, err := NewHATracker(testHAConfig, inmemory.New(HAClustersCodec{}), nil, env.d.logger)
			if err != nil {
				b.Fatal(err)
			}
			tracker.now = func() time.Time { return testNow }
			env.d.UseHATracker(tracker)
			ctx := tenant.NewContext(context.Background(), tenantA)
			if err := tracker.checkReplica(ctx, tenantA, "eu-west-1", "r1", 0); err != nil {
				b.Fatal(err)
			}
			req := benchmarkRequest(seriesCount, testNow.UnixMilli())
			for i := range req.Timeseries {
				req.Timeseries[i].Labels = slices.Insert(req.Timeseries[i].Labels, 1, prompb.Label{Name: "__replica__", Value: bc.replica})
			}
			body := encodeRequest(b, req)

			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/push", bytes.NewReader(body))
				r.Header.Set("Content-Encoding", "snappy")
				w := httptest.NewRecorder()
				env.d.ServeHTTP(w, r)
				if w.Code != bc.status {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(b.N*seriesCount)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
