package compactor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/validation"
)

// shipReplicas ships three replica copies of [minT, maxT) from three ingesters; the second misses every
// tenth sample of series 0 and the third the last samples of series 1, as ingesters that missed writes do.
// It returns the copies' metas; the first copy is complete.
func shipReplicas(t *testing.T, bkt objstore.Bucket, tenant string, minT, maxT int64) []*blockstore.Meta {
	skips := []func(int, int64) bool{
		nil,
		func(s int, ts int64) bool { return s == 0 && (ts/sampleStep)%10 == 3 },
		func(s int, ts int64) bool { return s == 1 && ts > maxT-10*sampleStep },
	}
	var metas []*blockstore.Meta
	for i, skip := range skips {
		metas = append(metas, shipBlock(t, bkt, tenant, blockSpec{
			minT: minT, maxT: maxT, series: 3, ingester: "ingester-" + string(rune('a'+i)), skip: skip,
		}))
	}
	return metas
}

// queriedBlocks returns the blocks of tenant's written index that queriers would read.
func queriedBlocks(t *testing.T, bkt objstore.Bucket, tenant string) []*blockstore.BlockEntry {
	return blockstore.BlocksToQuery(tenantIndex(t, bkt, tenant), nil)
}

func TestCompactor_MergesReplicaCopiesAndDeletesThemAfterTheDelay(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	base := testBase()
	copies := shipReplicas(t, bkt, "t1", base, base+2*hourMs)
	c, clock := newTestCompactor(t, testConfig(t), bkt)

	require.NoError(t, c.CompactAll(ctx))

	blocks := queriedBlocks(t, bkt, "t1")
	require.Len(t, blocks, 1)
	out := blocks[0]
	meta, err := blockstore.DownloadMeta(ctx, bucket.NewTenantBucket(bkt, "t1"), out.ID)
	require.NoError(t, err)
	require.Equal(t, blockstore.StrataMeta{TenantID: "t1", Source: blockstore.SourceCompactor, ReplicasDeduplicated: true}, meta.Strata)
	require.Equal(t, base, meta.MinTime)
	require.Equal(t, base+2*hourMs, meta.MaxTime)
	require.Equal(t, 2, meta.Compaction.Level)
	require.ElementsMatch(t, []ulid.ULID{copies[0].ULID, copies[1].ULID, copies[2].ULID}, meta.Compaction.Sources)

	// The result holds each distinct sample once: exactly the complete copy.
	full := readBlock(t, bkt, "t1", copies[0].ULID)
	all := union(full, readBlock(t, bkt, "t1", copies[1].ULID), readBlock(t, bkt, "t1", copies[2].ULID))
	require.Equal(t, full, all)
	require.Equal(t, all, readBlock(t, bkt, "t1", out.ID))
	require.Equal(t, copies[0].Stats.NumSamples, meta.Stats.NumSamples)
	require.Equal(t, copies[0].Stats.NumSeries, meta.Stats.NumSeries)

	idx := tenantIndex(t, bkt, "t1")
	require.Len(t, idx.Blocks, 4)
	for _, m := range copies {
		mark := idx.DeletionMark(m.ULID)
		require.NotNil(t, mark, "copy %s not marked", m.ULID)
		require.Equal(t, reasonCompacted, mark.Reason)
	}
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.compactions))
	require.Equal(t, 3.0, testutil.ToFloat64(c.metrics.compacted))
	require.Equal(t, 3.0, testutil.ToFloat64(c.metrics.markedDeleted.WithLabelValues(reasonCompacted)))

	// Before the delay nothing is deleted; after it the copies are gone.
	clock.Add(11 * time.Hour)
	require.NoError(t, c.CleanupAll(ctx))
	require.Len(t, blockDirs(t, bkt, "t1"), 4)
	clock.Add(time.Hour)
	require.NoError(t, c.CompactAll(ctx))
	require.Equal(t, []ulid.ULID{out.ID}, blockDirs(t, bkt, "t1"))
	idx = tenantIndex(t, bkt, "t1")
	require.Equal(t, []ulid.ULID{out.ID}, ids(idx.Blocks))
	require.Empty(t, idx.DeletionMarks)
	require.Equal(t, 3.0, testutil.ToFloat64(c.metrics.deleted))
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.compactions), "nothing compacted twice")
	require.Equal(t, float64(clock.Now().Unix()), testutil.ToFloat64(c.metrics.lastSuccess.WithLabelValues("compaction")))
}

func TestCompactor_MergesCompleteRangesUpward(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	base := testBase()
	var day1 []*blockstore.Meta
	for i := range int64(12) {
		day1 = append(day1, shipBlock(t, bkt, "t1", blockSpec{minT: base + 2*i*hourMs, maxT: base + 2*(i+1)*hourMs, series: 2}))
	}
	// The next day's first block, so the first day is complete; its own 12h range is not.
	next := shipBlock(t, bkt, "t1", blockSpec{minT: base + 24*hourMs, maxT: base + 26*hourMs, series: 2})
	cfg := testConfig(t)
	cfg.DeletionDelay = 0
	c, _ := newTestCompactor(t, cfg, bkt)
	var want []map[sampleKey]struct{}
	for _, m := range day1 {
		want = append(want, readBlock(t, bkt, "t1", m.ULID))
	}

	require.NoError(t, c.CompactAll(ctx))

	blocks := queriedBlocks(t, bkt, "t1")
	require.Len(t, blocks, 2)
	require.Equal(t, next.ULID, blocks[1].ID)
	dayBlock := blocks[0]
	require.Equal(t, base, dayBlock.MinTime)
	require.Equal(t, base+24*hourMs, dayBlock.MaxTime)
	require.Equal(t, 3, dayBlock.CompactionLevel, "2h → 12h → 24h")
	require.Equal(t, union(want...), readBlock(t, bkt, "t1", dayBlock.ID))
	// Sources and the intermediate 12h blocks were deleted at once (no delay).
	require.ElementsMatch(t, []ulid.ULID{dayBlock.ID, next.ULID}, blockDirs(t, bkt, "t1"))
	require.Equal(t, 3.0, testutil.ToFloat64(c.metrics.compactions))
	require.Equal(t, 14.0, testutil.ToFloat64(c.metrics.compacted))
}

func TestCompactor_CrashAfterUploadIsFinishedByTheNextPass(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	tbkt := bucket.NewTenantBucket(bkt, "t1")
	base := testBase()
	copies := shipReplicas(t, bkt, "t1", base, base+2*hourMs)
	c, _ := newTestCompactor(t, testConfig(t), bkt)
	errCrash := errors.New("crash")
	var uploaded ulid.ULID
	c.afterUpload = func(_ string, id ulid.ULID) error { uploaded = id; return errCrash }

	require.ErrorIs(t, c.CompactAll(ctx), errCrash)

	// The compacted block is complete and its sources are not marked: an index built now lists all four,
	// and BlocksToQuery with the blocks' sources still returns only the compacted one.
	idx, err := blockstore.NewUpdater(tbkt, testLogger).UpdateIndex(ctx, nil)
	require.NoError(t, err)
	require.Len(t, idx.Blocks, 4)
	require.Empty(t, idx.DeletionMarks)
	sources := blockstore.BlockSources{}
	for _, b := range idx.Blocks {
		m, err := blockstore.DownloadMeta(ctx, tbkt, b.ID)
		require.NoError(t, err)
		sources[b.ID] = m.Compaction.Sources
	}
	require.Equal(t, []ulid.ULID{uploaded}, ids(blockstore.BlocksToQuery(idx, sources)))

	c.afterUpload = nil
	require.NoError(t, c.CompactAll(ctx))

	require.Equal(t, []ulid.ULID{uploaded}, ids(queriedBlocks(t, bkt, "t1")))
	require.Len(t, blockDirs(t, bkt, "t1"), 4, "no second compacted block")
	idx = tenantIndex(t, bkt, "t1")
	for _, m := range copies {
		require.True(t, idx.IsMarkedForDeletion(m.ULID))
	}
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.compactions))
}

func TestCompactor_MarkingFailureNeverPublishesBothCopies(t *testing.T) {
	ctx := context.Background()
	fb := &failingBucket{Bucket: objstore.NewInMemBucket()}
	base := testBase()
	shipReplicas(t, fb, "t1", base, base+2*hourMs)
	c, _ := newTestCompactor(t, testConfig(t), fb)
	errDown := errors.New("object store down")
	failMarks := func(name string) error {
		if strings.HasSuffix(name, blockstore.DeletionMarkFilename) {
			return errDown
		}
		return nil
	}
	fb.setFail(failMarks)
	require.ErrorIs(t, c.CompactAll(ctx), errDown)

	// Marking keeps failing: cleanup must not publish the compacted block beside its unmarked sources.
	require.ErrorIs(t, c.CleanupAll(ctx), errDown)
	_, err := blockstore.ReadIndex(ctx, bucket.NewTenantBucket(fb, "t1"))
	require.ErrorIs(t, err, blockstore.ErrIndexNotFound, "no index is written while sources cannot be marked")

	fb.setFail(nil)
	require.NoError(t, c.CompactAll(ctx))
	require.Len(t, queriedBlocks(t, fb, "t1"), 1)
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.compactions))
}

func TestCompactor_PartialUploadIsIgnoredThenDeleted(t *testing.T) {
	ctx := context.Background()
	fb := &failingBucket{Bucket: objstore.NewInMemBucket()}
	base := testBase()
	copies := shipReplicas(t, fb, "t1", base, base+2*hourMs)
	cfg := testConfig(t)
	c, clock := newTestCompactor(t, cfg, fb)
	errDown := errors.New("object store down")
	isOld := map[string]bool{}
	for _, m := range copies {
		isOld[m.ULID.String()] = true
	}
	// The compacted block's meta.json fails to upload: its other files stay behind as a partial block.
	fb.setFail(func(name string) error {
		if strings.HasSuffix(name, "/"+blockstore.MetaFilename) && !isOld[strings.Split(name, "/")[1]] {
			return errDown
		}
		return nil
	})
	require.ErrorIs(t, c.CompactAll(ctx), errDown)
	require.Len(t, blockDirs(t, fb, "t1"), 4)

	fb.setFail(nil)
	require.NoError(t, c.CompactAll(ctx))
	blocks := queriedBlocks(t, fb, "t1")
	require.Len(t, blocks, 1)
	require.Len(t, blockDirs(t, fb, "t1"), 5, "copies, the partial block and the compacted block")

	clock.Add(cfg.DeletionDelay + time.Minute)
	require.NoError(t, c.CompactAll(ctx))
	require.Equal(t, ids(blocks), blockDirs(t, fb, "t1"))
	require.Equal(t, 4.0, testutil.ToFloat64(c.metrics.deleted))
}

func TestCompactor_RetentionMarksOldBlocks(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	base := testBase()
	old := shipBlock(t, bkt, "t1", blockSpec{minT: base, maxT: base + 2*hourMs, series: 1})
	recent := shipBlock(t, bkt, "t1", blockSpec{minT: base + 48*hourMs, maxT: base + 50*hourMs, series: 1})
	// t2's blocks are as old, but its retention, a runtime override, is longer.
	old2 := shipBlock(t, bkt, "t2", blockSpec{minT: base, maxT: base + 2*hourMs, series: 1})
	defaults := validation.DefaultLimits()
	defaults.CompactorBlocksRetentionPeriod = model.Duration(36 * time.Hour)
	longer := defaults
	longer.CompactorBlocksRetentionPeriod = model.Duration(100 * time.Hour)
	c, clock := newTestCompactor(t, testConfig(t), bkt)
	c.limits = validation.NewOverrides(defaults, staticOverrides{"t2": &longer})
	// The old block ends 46h before the recent one; put the clock 10h after the recent block's end.
	clock.now = time.UnixMilli(base + 60*hourMs)

	require.NoError(t, c.CompactAll(ctx))

	idx := tenantIndex(t, bkt, "t1")
	mark := idx.DeletionMark(old.ULID)
	require.NotNil(t, mark)
	require.Equal(t, reasonRetention, mark.Reason)
	require.False(t, idx.IsMarkedForDeletion(recent.ULID))
	require.Equal(t, []ulid.ULID{recent.ULID}, ids(blockstore.BlocksToQuery(idx, nil)))
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.markedDeleted.WithLabelValues(reasonRetention)))
	require.False(t, tenantIndex(t, bkt, "t2").IsMarkedForDeletion(old2.ULID))
}

// staticOverrides are fixed per-tenant limits.
type staticOverrides map[string]*validation.Limits

func (s staticOverrides) ByTenant(id string) *validation.Limits      { return s[id] }
func (s staticOverrides) AllByTenant() map[string]*validation.Limits { return s }

// fakeRing assigns each tenant token to the instance owners names.
type fakeRing struct {
	ring.ReadRing
	owners map[uint32]string
}

func (r *fakeRing) Get(key uint32, _ ring.Operation, buf []ring.InstanceDesc) (ring.ReplicationSet, error) {
	owner, ok := r.owners[key]
	if !ok {
		return ring.ReplicationSet{}, ring.ErrEmptyRing
	}
	return ring.ReplicationSet{Instances: append(buf[:0], ring.InstanceDesc{ID: owner, State: ring.ACTIVE})}, nil
}

func TestCompactor_SkipsTenantsItDoesNotOwn(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	base := testBase()
	for _, tenant := range []string{"mine", "theirs", "unknown"} {
		shipReplicas(t, bkt, tenant, base, base+2*hourMs)
	}
	r := &fakeRing{owners: map[uint32]string{ring.TenantToken("mine"): "compactor-1", ring.TenantToken("theirs"): "compactor-2"}}
	c, err := New(testConfig(t), nil, bkt, r, "compactor-1", nil, testLogger)
	require.NoError(t, err)

	require.NoError(t, c.CompactAll(ctx))

	require.Len(t, queriedBlocks(t, bkt, "mine"), 1)
	for _, tenant := range []string{"theirs", "unknown"} {
		_, err := blockstore.ReadIndex(ctx, bucket.NewTenantBucket(bkt, tenant))
		require.ErrorIs(t, err, blockstore.ErrIndexNotFound, tenant)
		require.Len(t, blockDirs(t, bkt, tenant), 3, tenant)
	}
}

func TestCompactor_ServiceCompactsAtStart(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	base := testBase()
	shipReplicas(t, bkt, "t1", base, base+2*hourMs)
	c, _ := newTestCompactor(t, testConfig(t), bkt)
	require.NoError(t, c.Start(context.Background()))
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(c.metrics.lastSuccess.WithLabelValues("compaction")) > 0
	}, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, c.Stop(context.Background()))
	require.Len(t, queriedBlocks(t, bkt, "t1"), 1)
}

// TestCompactor_RealRingGivesEachTenantOneOwner registers two compactors in a ring under RingKey and checks
// that every tenant is compacted by exactly one of them.
func TestCompactor_RealRingGivesEachTenantOneOwner(t *testing.T) {
	ctx := context.Background()
	kvClient := inmemory.New(ring.DescCodec{})
	for _, id := range []string{"compactor-1", "compactor-2"} {
		l, err := ring.NewLifecycler(ring.LifecyclerConfig{ID: id, Addr: "127.0.0.1", NumTokens: 64, HeartbeatPeriod: time.Minute},
			RingName, RingKey, kvClient, nil, testLogger)
		require.NoError(t, err)
		require.NoError(t, l.Start(ctx))
		require.NoError(t, l.ChangeState(ctx, ring.ACTIVE))
		t.Cleanup(func() { require.NoError(t, l.Stop(context.Background())) })
	}
	r, err := ring.New(ring.Config{HeartbeatTimeout: time.Minute, ReplicationFactor: 1}, RingName, RingKey, kvClient, nil, testLogger)
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { require.NoError(t, r.Stop(context.Background())) })
	require.Eventually(t, func() bool { return r.HealthyInstancesCount(ring.Write) == 2 }, 10*time.Second, 10*time.Millisecond)

	c1, err := New(testConfig(t), nil, objstore.NewInMemBucket(), r, "compactor-1", nil, testLogger)
	require.NoError(t, err)
	c2, err := New(testConfig(t), nil, objstore.NewInMemBucket(), r, "compactor-2", nil, testLogger)
	require.NoError(t, err)
	owned := 0
	for i := range 200 {
		tenant := "tenant-" + strconv.Itoa(i)
		o1, o2 := c1.ownsTenant(tenant), c2.ownsTenant(tenant)
		require.NotEqual(t, o1, o2, tenant)
		if o1 {
			owned++
		}
	}
	require.Greater(t, owned, 0)
	require.Less(t, owned, 200)
}

func TestCompactor_StartRemovesOnlyLeftoverWorkDirs(t *testing.T) {
	cfg := testConfig(t)
	require.NoError(t, os.MkdirAll(filepath.Join(cfg.DataDir, workDirPrefix+"123", "block"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(cfg.DataDir, "operator-file"), nil, 0o644))
	c, _ := newTestCompactor(t, cfg, objstore.NewInMemBucket())
	require.NoError(t, c.Start(context.Background()))
	require.NoError(t, c.Stop(context.Background()))
	_, err := os.Stat(filepath.Join(cfg.DataDir, workDirPrefix+"123"))
	require.True(t, os.IsNotExist(err))
	require.FileExists(t, filepath.Join(cfg.DataDir, "operator-file"))
}
