package alertmanager

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
)

// BenchmarkIdleTenant measures what one tenant whose Alertmanager has a configuration but no alerts
// and no silences costs: heap after GC and goroutines, per tenant, over idleTenants tenants; then the
// heap once each tenant's API is built too.
//
//	go test ./pkg/alertmanager -run '^$' -bench IdleTenant -benchtime 1x
func BenchmarkIdleTenant(b *testing.B) {
	const idleTenants = 200
	for range b.N {
		bkt := objstore.NewInMemBucket()
		store, err := alertstore.New(alertstore.Config{Prefix: "alertmanager"}, bkt)
		require.NoError(b, err)
		cfg := Config{}
		cfg.RegisterFlags(newFlagSet())
		cfg.DataDir = b.TempDir()
		ctx := context.Background()
		for i := range idleTenants {
			require.NoError(b, store.SetConfig(ctx, fmt.Sprintf("tenant-%d", i), webhookConfig("http://127.0.0.1:1/")))
		}
		am, err := New(cfg, store, nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		require.NoError(b, err)

		before, goroutinesBefore := heapAfterGC(), runtime.NumGoroutine()
		require.NoError(b, am.Start(ctx))
		require.Len(b, am.Tenants(), idleTenants)
		after, goroutinesAfter := heapAfterGC(), runtime.NumGoroutine()

		b.ReportMetric(float64(after-before)/idleTenants, "heap-B/tenant")
		b.ReportMetric(float64(goroutinesAfter-goroutinesBefore)/idleTenants, "goroutines/tenant")

		// A tenant that has used its API (a ruler posting alerts, a user listing silences) also
		// holds the API's objects.
		for _, inst := range am.instancesSnapshot() {
			_, err := inst.handler()
			require.NoError(b, err)
		}
		b.ReportMetric(float64(heapAfterGC()-before)/idleTenants, "heap-B/tenant-with-API")
		require.NoError(b, am.Stop(ctx))
	}
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
