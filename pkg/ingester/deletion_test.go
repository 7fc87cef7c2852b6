package ingester

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/validation"
)

func TestIngester_AppliesSeriesDeletionsToHeadAndLocalBlocks(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	ing := startIngesterWithBucket(t, testConfig(t.TempDir()), bkt)
	// Three samples of two series in a block, three more in the head.
	for _, ts := range []int64{baseTs, baseTs + minute, baseTs + 2*minute} {
		require.NoError(t, ing.push(t, "t1", []prompb.TimeSeries{
			floatSeries(lbls("__name__", "doomed"), sample{t: ts, v: 1}),
			floatSeries(lbls("__name__", "neighbour"), sample{t: ts, v: 1}),
		}))
	}
	require.NoError(t, ing.Flush(ctx))
	for _, ts := range []int64{baseTs + 3*minute, baseTs + 4*minute, baseTs + 5*minute} {
		require.NoError(t, ing.push(t, "t1", []prompb.TimeSeries{
			floatSeries(lbls("__name__", "doomed"), sample{t: ts, v: 1}),
			floatSeries(lbls("__name__", "neighbour"), sample{t: ts, v: 1}),
		}))
	}

	ts, err := blockstore.NewTombstone(ulid.Make(), []string{"doomed"}, baseTs+minute, baseTs+4*minute, 0)
	require.NoError(t, err)
	require.NoError(t, blockstore.WriteTombstone(ctx, bucket.NewTenantBucket(bkt, "t1"), ts))
	ing.applyDeletions(ctx)

	got := ing.queryStream(t, "t1", everything, forever)
	require.Equal(t, []int64{baseTs, baseTs + 5*minute}, sampleTimes(got[`{__name__="doomed"}`]), "deleted in the block and in the head")
	require.Len(t, got[`{__name__="neighbour"}`], 6)
	require.True(t, ing.tenantDB("t1").tombstones.has(ts.ID))

	// A head cut after the deletion ships without the deleted samples.
	require.NoError(t, ing.Flush(ctx))
	var samples uint64
	for _, m := range shippedBlocks(t, bkt, "t1") {
		samples += m.Stats.NumSamples
	}
	require.EqualValues(t, 6+3+1, samples, "the first block as shipped before the deletion (6), then the head without the deleted samples (3 + 1)")
}

func sampleTimes(samples []sample) []int64 {
	out := []int64{}
	for _, s := range samples {
		out = append(out, s.t)
	}
	return out
}

func TestIngester_DropsTheTSDBOfADeletedTenant(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	cfg := testConfig(t.TempDir())
	ing := startIngesterWithBucket(t, cfg, bkt)
	require.NoError(t, ing.push(t, "gone", floatSeriesList(5)))
	require.NoError(t, ing.push(t, "kept", floatSeriesList(5)))
	require.NoError(t, blockstore.WriteTenantDeletionMark(ctx, bucket.NewTenantBucket(bkt, "gone"), &blockstore.TenantDeletionMark{DeletionTime: 1}))

	ing.applyDeletions(ctx)
	require.Nil(t, ing.tenantDB("gone"))
	_, err := os.Stat(filepath.Join(cfg.TSDBDir, "gone"))
	require.True(t, os.IsNotExist(err), "its local files are removed")
	require.Empty(t, shippedBlocks(t, bkt, "gone"), "and nothing of it was shipped")
	require.Len(t, ing.queryStream(t, "kept", everything, forever), 5, "the other tenant is untouched")

	// Writes after the mark are accepted, and dropped again at the next round.
	require.NoError(t, ing.push(t, "gone", floatSeriesList(1)))
	require.Len(t, ing.queryStream(t, "gone", everything, forever), 1)
	ing.applyDeletions(ctx)
	require.Empty(t, ing.queryStream(t, "gone", everything, forever))
}

// With shipping off, deletions in the bucket still reach the head: once the tombstone is done and gone,
// the deleted samples would otherwise be answered again.
func TestIngester_AppliesDeletionsWithShippingOff(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	reg := prometheus.NewRegistry()
	ing, err := New(testConfig(t.TempDir()), validation.NewOverrides(defaultLimits(t), nil), nil, nil, bkt, validation.NewDiscardedSamples(reg), reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ing.deletionsInterval = 10 * time.Millisecond
	require.NoError(t, ing.Start(ctx))
	t.Cleanup(func() { _ = ing.Stop(context.Background()) })
	ti := &testIngester{Ingester: ing, reg: reg}
	require.NoError(t, ti.push(t, "t1", []prompb.TimeSeries{
		floatSeries(lbls("__name__", "doomed"), sample{t: baseTs, v: 1}),
		floatSeries(lbls("__name__", "neighbour"), sample{t: baseTs, v: 1}),
	}))
	ts, err := blockstore.NewTombstone(ulid.Make(), []string{"doomed"}, baseTs, baseTs, 0)
	require.NoError(t, err)
	require.NoError(t, blockstore.WriteTombstone(ctx, bucket.NewTenantBucket(bkt, "t1"), ts))
	require.Eventually(t, func() bool {
		got := ti.queryStream(t, "t1", everything, forever)
		return len(got[`{__name__="doomed"}`]) == 0
	}, 10*time.Second, 10*time.Millisecond)
	require.Len(t, ti.queryStream(t, "t1", everything, forever)[`{__name__="neighbour"}`], 1)
	require.Empty(t, shippedBlocks(t, bkt, "t1"), "nothing is shipped")
}
