package ingester

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// What shipping a block adds for its exemplars: the scan of a tenant's buffer of 100,000 exemplars (10,000
// series of 10) and the write of the block's exemplar file, while the buffer's lock keeps appends of
// exemplars waiting for the scan.
func BenchmarkWriteBlockExemplars(b *testing.B) {
	limits := defaultLimits(b)
	limits.MaxGlobalExemplarsPerUser = 100_000
	ing := startIngesterWith(b, testConfig(b.TempDir()), nil, limits)
	for batch := range 10 {
		var req []prompb.TimeSeries
		for s := range 1000 {
			ts := floatSeries(lbls("__name__", "http_request_duration_seconds_bucket", "le", fmt.Sprint(batch*1000+s)), sample{t: baseTs, v: 1})
			for i := range 10 {
				t := baseTs + int64(i)*15_000
				ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: fmt.Sprintf("4bf92f3577b34da6a3ce929d0e0e%d-%d", s, i)}}, Value: 0.25, Timestamp: t})
			}
			req = append(req, ts)
		}
		require.NoError(b, ing.push(b, "t", req))
	}
	t := ing.tenantDB("t")
	dir := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		meta := &blockstore.Meta{}
		meta.MinTime, meta.MaxTime = baseTs, baseTs+7_200_000
		require.NoError(b, t.writeBlockExemplars(context.Background(), dir, meta))
		require.EqualValues(b, 100_000, meta.Strata.Exemplars)
	}
}
