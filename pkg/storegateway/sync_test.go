package storegateway

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/querysharding"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

func TestStart_ReadyOnlyAfterFirstSync(t *testing.T) {
	tt := newTwoTenants(t, objstore.NewInMemBucket())
	sg, err := New(testConfig(t), tt.bkt, nil, "", nil, testLogger)
	require.NoError(t, err)
	require.False(t, sg.Ready())
	require.Empty(t, sg.Tenants())

	require.NoError(t, sg.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sg.Stop(context.Background())) })
	require.True(t, sg.Ready())
	require.ElementsMatch(t, idStrings(tt.blocks1), loadedIDs(sg, "tenant-1"))
	require.ElementsMatch(t, idStrings(tt.blocks2), loadedIDs(sg, "tenant-2"))
}

func TestStart_FailsWhenTheBucketCannotBeListed(t *testing.T) {
	sg, err := New(testConfig(t), &failingIterBucket{Bucket: objstore.NewInMemBucket()}, nil, "", nil, testLogger)
	require.NoError(t, err)
	require.ErrorContains(t, sg.Start(context.Background()), "bucket unavailable")
	require.False(t, sg.Ready())
}

func TestSync_FollowsTheBucketIndex(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	ctx := context.Background()
	hour := time.Hour.Milliseconds()
	series := labels.FromStrings("__name__", "up", "job", "a")

	// A tenant with blocks but no bucket index yet has nothing to serve.
	first := uploadBlocks(t, bkt, "tenant-1", createBlocks(t, makeSeries(0, 7*hour, series)))
	cfg := testConfig(t)
	sg := startStoreGateway(t, cfg, bkt)
	require.Empty(t, loadedIDs(sg, "tenant-1"))

	writeBucketIndex(t, bkt, "tenant-1")
	require.NoError(t, sg.sync(ctx))
	require.ElementsMatch(t, idStrings(first), loadedIDs(sg, "tenant-1"))

	// A new block is picked up by the next sync.
	added := uploadBlocks(t, bkt, "tenant-1", createBlocks(t, makeSeries(10*hour, 15*hour, series)))
	writeBucketIndex(t, bkt, "tenant-1")
	require.NoError(t, sg.sync(ctx))
	require.ElementsMatch(t, idStrings(append(first, added...)), loadedIDs(sg, "tenant-1"))
	for _, id := range added {
		require.FileExists(t, filepath.Join(cfg.SyncDir, "tenant-1", id.String(), "index"))
	}

	// A block marked for deletion is dropped, and so are its local files.
	tb := bucket.NewTenantBucket(bkt, "tenant-1")
	require.NoError(t, blockstore.MarkForDeletion(ctx, tb, first[0], "test", time.Now()))
	writeBucketIndex(t, bkt, "tenant-1")
	require.NoError(t, sg.sync(ctx))
	require.NotContains(t, loadedIDs(sg, "tenant-1"), first[0].String())
	require.NoDirExists(t, filepath.Join(cfg.SyncDir, "tenant-1", first[0].String()))

	// A block gone from the bucket index is dropped.
	require.NoError(t, blockstore.DeleteBlock(ctx, tb, added[0]))
	writeBucketIndex(t, bkt, "tenant-1")
	require.NoError(t, sg.sync(ctx))
	require.NotContains(t, loadedIDs(sg, "tenant-1"), added[0].String())
	require.NoDirExists(t, filepath.Join(cfg.SyncDir, "tenant-1", added[0].String()))

	// A tenant gone from the bucket loses every block.
	require.NoError(t, bkt.Iter(ctx, "tenant-1/", func(name string) error {
		return deleteAll(ctx, bkt, name)
	}))
	require.NoError(t, sg.sync(ctx))
	require.Empty(t, sg.Tenants())
	require.NoDirExists(t, filepath.Join(cfg.SyncDir, "tenant-1"))
}

func TestSync_KeepsBlocksWhenTheIndexCannotBeRead(t *testing.T) {
	tt := newTwoTenants(t, objstore.NewInMemBucket())
	sg := startStoreGateway(t, testConfig(t), tt.bkt)
	require.NoError(t, tt.bkt.Upload(context.Background(), "tenant-1/"+blockstore.BucketIndexFilename, strings.NewReader("garbage")))
	err := sg.sync(context.Background())
	require.ErrorIs(t, err, blockstore.ErrIndexCorrupted)
	require.ElementsMatch(t, idStrings(tt.blocks1), loadedIDs(sg, "tenant-1"))
	require.ElementsMatch(t, idStrings(tt.blocks2), loadedIDs(sg, "tenant-2"))
}

func TestStart_ReusesDownloadedIndexes(t *testing.T) {
	tt := newTwoTenants(t, objstore.NewInMemBucket())
	cfg := testConfig(t)
	counting := &getCountingBucket{Bucket: tt.bkt, gets: map[string]int{}}

	sg, err := New(cfg, counting, nil, "", nil, testLogger)
	require.NoError(t, err)
	require.NoError(t, sg.Start(context.Background()))
	require.NoError(t, sg.Stop(context.Background()))
	indexGets := counting.count(func(name string) bool { return strings.HasSuffix(name, "/index") })
	require.Equal(t, len(tt.blocks1)+len(tt.blocks2), indexGets)

	// A stale directory of a block that is not in the index is cleaned up on restart.
	stale := filepath.Join(cfg.SyncDir, "tenant-1", ulid.MustNew(1, nil).String())
	require.NoError(t, os.MkdirAll(stale, 0o755))

	sg, err = New(cfg, counting, nil, "", nil, testLogger)
	require.NoError(t, err)
	require.NoError(t, sg.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sg.Stop(context.Background())) })
	require.Equal(t, indexGets, counting.count(func(name string) bool { return strings.HasSuffix(name, "/index") }))
	require.ElementsMatch(t, idStrings(tt.blocks1), loadedIDs(sg, "tenant-1"))
	require.NoDirExists(t, stale)
}

func TestNew_RejectsBadSetup(t *testing.T) {
	cfg := testConfig(t)
	cfg.SyncDir = ""
	_, err := New(cfg, objstore.NewInMemBucket(), nil, "", nil, nil)
	require.ErrorContains(t, err, "-blocks-storage.bucket-store.sync-dir")

	cfg = testConfig(t)
	cfg.SyncInterval = 0
	_, err = New(cfg, objstore.NewInMemBucket(), nil, "", nil, nil)
	require.ErrorContains(t, err, "sync-interval")
}

func deleteAll(ctx context.Context, bkt objstore.Bucket, name string) error {
	if !strings.HasSuffix(name, "/") {
		return bkt.Delete(ctx, name)
	}
	return bkt.Iter(ctx, name, func(n string) error { return deleteAll(ctx, bkt, n) })
}

type failingIterBucket struct{ objstore.Bucket }

func (b *failingIterBucket) Iter(context.Context, string, func(string) error, ...objstore.IterOption) error {
	return errors.New("bucket unavailable")
}

type getCountingBucket struct {
	objstore.Bucket
	mu   sync.Mutex
	gets map[string]int
}

func (b *getCountingBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	b.mu.Lock()
	b.gets[name]++
	b.mu.Unlock()
	return b.Bucket.Get(ctx, name)
}

func (b *getCountingBucket) count(match func(string) bool) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for name, c := range b.gets {
		if match(name) {
			n += c
		}
	}
	return n
}

func TestSync_ClosesDroppedBlocksOnlyAfterTheirRequests(t *testing.T) {
	tt := newTwoTenants(t, objstore.NewInMemBucket())
	sg := startStoreGateway(t, testConfig(t), tt.bkt)
	ctx := context.Background()
	q := queryParams{tenant: "tenant-1", blockIDs: idStrings(tt.blocks1)}
	held, _ := sg.acquireBlocks(q)
	require.Len(t, held, len(tt.blocks1))

	tb := bucket.NewTenantBucket(tt.bkt, "tenant-1")
	for _, id := range tt.blocks1 {
		require.NoError(t, blockstore.MarkForDeletion(ctx, tb, id, "test", time.Now()))
	}
	writeBucketIndex(t, tt.bkt, "tenant-1")
	done := make(chan error)
	go func() { done <- sg.sync(ctx) }()

	// New requests no longer see the blocks...
	require.Eventually(t, func() bool { return len(loadedIDs(sg, "tenant-1")) == 0 }, 10*time.Second, time.Millisecond)
	again, ids := sg.acquireBlocks(q)
	require.Empty(t, again)
	require.Empty(t, ids)
	// ...while the request holding them can still read their index.
	select {
	case err := <-done:
		t.Fatalf("sync finished (%v) while a request held its blocks", err)
	default:
	}
	ss, err := held[0].selectSeries(ctx, nil, querysharding.Shard{}, 0, time.Hour.Milliseconds(), 0, sg.postingsCache)
	require.NoError(t, err)
	require.NotEmpty(t, ss)

	releaseBlocks(held)
	require.NoError(t, <-done)
}
