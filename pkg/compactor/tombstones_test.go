package compactor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// writeTombstone stores a series deletion of tenant made at now.
func writeTombstone(t *testing.T, bkt objstore.Bucket, tenant string, now time.Time, minT, maxT int64, selectors ...string) *blockstore.Tombstone {
	t.Helper()
	ts, err := blockstore.NewTombstone(ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()), selectors, minT, maxT, now.UnixMilli())
	require.NoError(t, err)
	require.NoError(t, blockstore.WriteTombstone(context.Background(), bucket.NewTenantBucket(bkt, tenant), ts))
	return ts
}

func readTombstones(t *testing.T, bkt objstore.Bucket, tenant string) []*blockstore.Tombstone {
	t.Helper()
	ts, err := blockstore.ListTombstones(context.Background(), bucket.NewTenantBucket(bkt, tenant))
	require.NoError(t, err)
	return ts
}

// liveBlockIDs returns the blocks of the tenant's bucket index not marked for deletion.
func liveBlockIDs(t *testing.T, bkt objstore.Bucket, tenant string) []ulid.ULID {
	t.Helper()
	idx := tenantIndex(t, bkt, tenant)
	var ids []ulid.ULID
	for _, b := range idx.Blocks {
		if !idx.IsMarkedForDeletion(b.ID) {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

// withoutSamples returns the samples of series outside [minT, maxT].
func withoutSamples(samples map[sampleKey]struct{}, series string, minT, maxT int64) map[sampleKey]struct{} {
	out := map[sampleKey]struct{}{}
	for k := range samples {
		if k.series == series && k.t >= minT && k.t <= maxT {
			continue
		}
		out[k] = struct{}{}
	}
	return out
}

func TestCompactor_RewritesBlocksHoldingDeletedSamples(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	base := testBase()
	hit := shipBlock(t, bkt, "t1", blockSpec{minT: base, maxT: base + 2*hourMs, series: 3, ingester: "i1", exemplars: []int64{40 * 60_000, 70 * 60_000}})
	missed := shipBlock(t, bkt, "t1", blockSpec{minT: base + 4*hourMs, maxT: base + 6*hourMs, series: 3, ingester: "i1"})
	other := shipBlock(t, bkt, "t2", blockSpec{minT: base, maxT: base + 2*hourMs, series: 3, ingester: "i1"})
	before := readBlock(t, bkt, "t1", hit.ULID)

	c, clock := newTestCompactor(t, testConfig(t), bkt)
	ts := writeTombstone(t, bkt, "t1", clock.Now(), base+30*60_000, base+60*60_000, `up{job="1"}`)
	// Another tenant's series of the same name is not deleted.
	require.NoError(t, c.CleanupAll(ctx))

	idx := tenantIndex(t, bkt, "t1")
	require.NotNil(t, idx.DeletionMark(hit.ULID), "the block holding deleted samples is replaced")
	require.Equal(t, reasonSeriesDeletion, idx.DeletionMark(hit.ULID).Reason)
	live := liveBlockIDs(t, bkt, "t1")
	require.Len(t, live, 2)
	require.Contains(t, live, missed.ULID, "a block outside the deleted range is not rewritten")
	var rewritten ulid.ULID
	for _, id := range live {
		if id != missed.ULID {
			rewritten = id
		}
	}
	want := withoutSamples(before, `{__name__="up", job="1"}`, ts.MinTime, ts.MaxTime)
	require.Len(t, want, len(before)-61, "61 samples every 30s over 30 minutes, both ends included")
	require.Equal(t, want, readBlock(t, bkt, "t1", rewritten))
	m, err := blockstore.DownloadMeta(ctx, bucket.NewTenantBucket(bkt, "t1"), rewritten)
	require.NoError(t, err)
	// The exemplars of the deleted samples go too.
	at := func(min int64) int64 { return base + min*60_000 }
	require.Equal(t, []string{
		fmt.Sprintf("0 0-%d", at(40)), fmt.Sprintf("0 0-%d", at(70)),
		fmt.Sprintf("1 1-%d", at(70)),
		fmt.Sprintf("2 2-%d", at(40)), fmt.Sprintf("2 2-%d", at(70)),
	}, readExemplars(t, bkt, "t1", rewritten))
	require.EqualValues(t, 5, m.Strata.Exemplars)
	m.Strata.Exemplars = hit.Strata.Exemplars
	require.Equal(t, hit.Strata, m.Strata, "the rewrite is the same block to the planner")
	require.Equal(t, hit.Compaction.Level, m.Compaction.Level)
	require.Equal(t, []ulid.ULID{other.ULID}, liveBlockIDs(t, bkt, "t2"))

	require.Zero(t, readTombstones(t, bkt, "t1")[0].DoneAt, "pending until it settled")
	clock.Add(tombstoneSettleTime)
	require.NoError(t, c.CleanupAll(ctx))
	require.NotZero(t, readTombstones(t, bkt, "t1")[0].DoneAt, "done: no block holds deleted samples")
	require.ElementsMatch(t, live, liveBlockIDs(t, bkt, "t1"), "no further rewrite")

	// Done tombstones go after their retention.
	clock.Add(doneTombstoneRetention)
	require.NoError(t, c.CleanupAll(ctx))
	require.Empty(t, readTombstones(t, bkt, "t1"))
}

func TestCompactor_CompactionLeavesOutDeletedSamples(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	base := testBase()
	// Two replica copies of a range: a vertical compaction merges them.
	a := shipBlock(t, bkt, "t1", blockSpec{minT: base, maxT: base + 2*hourMs, series: 2, ingester: "i1", exemplars: []int64{10 * 60_000, 90 * 60_000}})
	shipBlock(t, bkt, "t1", blockSpec{minT: base, maxT: base + 2*hourMs, series: 2, ingester: "i2", exemplars: []int64{10 * 60_000, 90 * 60_000}})
	before := readBlock(t, bkt, "t1", a.ULID)

	c, clock := newTestCompactor(t, testConfig(t), bkt)
	ts := writeTombstone(t, bkt, "t1", clock.Now(), 0, base+hourMs, `up{job="0"}`)
	require.NoError(t, c.CompactAll(ctx))

	live := liveBlockIDs(t, bkt, "t1")
	require.Len(t, live, 1)
	require.Equal(t, withoutSamples(before, `{__name__="up", job="0"}`, ts.MinTime, ts.MaxTime), readBlock(t, bkt, "t1", live[0]))
	// The replicas' exemplars are merged, each once, without the deleted series' ones in the deleted range.
	at := func(min int64) int64 { return base + min*60_000 }
	require.Equal(t, []string{fmt.Sprintf("0 0-%d", at(90)), fmt.Sprintf("1 1-%d", at(10)), fmt.Sprintf("1 1-%d", at(90))}, readExemplars(t, bkt, "t1", live[0]))
	m, err := blockstore.DownloadMeta(ctx, bucket.NewTenantBucket(bkt, "t1"), live[0])
	require.NoError(t, err)
	require.EqualValues(t, 3, m.Strata.Exemplars)
	for _, b := range tenantIndex(t, bkt, "t1").Blocks {
		require.True(t, b.HasExemplars, "the bucket index says which blocks have exemplars")
	}
	for _, m := range tenantIndex(t, bkt, "t1").DeletionMarks {
		require.Equal(t, reasonCompacted, m.Reason, "the compacted block needed no rewrite")
	}
}

func TestCompactor_ABlockWhoseSamplesAreAllDeletedIsDeleted(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	base := testBase()
	b := shipBlock(t, bkt, "t1", blockSpec{minT: base, maxT: base + 2*hourMs, series: 2, ingester: "i1"})
	c, clock := newTestCompactor(t, testConfig(t), bkt)
	writeTombstone(t, bkt, "t1", clock.Now(), 0, base+3*hourMs, `{__name__=~".+"}`)
	require.NoError(t, c.CleanupAll(ctx))
	require.Empty(t, liveBlockIDs(t, bkt, "t1"))
	require.NotNil(t, tenantIndex(t, bkt, "t1").DeletionMark(b.ULID))
}
