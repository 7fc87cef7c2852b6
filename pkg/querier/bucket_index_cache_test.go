package querier

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

// countingBucket counts reads of bucket-index files and fails them while failing is set.
type countingBucket struct {
	objstore.Bucket
	reads   atomic.Int32
	failing atomic.Bool
}

func (b *countingBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if strings.HasSuffix(name, "bucket-index.json.gz") {
		b.reads.Add(1)
		if b.failing.Load() {
			return nil, errors.New("object storage unreachable")
		}
	}
	return b.Bucket.Get(ctx, name)
}

func TestBucketIndexCache_ReadsObjectStorageOncePerTTL(t *testing.T) {
	bkt, _, _ := blocksFixture(t)
	counting := &countingBucket{Bucket: bkt}
	c := newBucketIndexCache(counting, time.Minute, prometheus.NewRegistry())
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx, err := c.get(ctx, "t")
			require.NoError(t, err)
			require.Len(t, idx.Blocks, 2)
		}()
	}
	wg.Wait()
	require.EqualValues(t, 1, counting.reads.Load(), "concurrent queries wait for one read")

	now = now.Add(59 * time.Second)
	_, err := c.get(ctx, "t")
	require.NoError(t, err)
	require.EqualValues(t, 1, counting.reads.Load())

	now = now.Add(time.Second)
	_, err = c.get(ctx, "t")
	require.NoError(t, err)
	require.EqualValues(t, 2, counting.reads.Load(), "read again once the TTL has passed")

	idx, err := c.get(ctx, "no-blocks")
	require.NoError(t, err)
	require.Nil(t, idx, "a tenant without an index has no blocks")
	_, _ = c.get(ctx, "no-blocks")
	require.EqualValues(t, 3, counting.reads.Load(), "that a tenant has no index is kept too")

	require.Equal(t, 3.0, testutil.ToFloat64(c.reads.WithLabelValues("loaded")), "t twice, no-blocks once")
	require.Equal(t, 11.0, testutil.ToFloat64(c.reads.WithLabelValues("cached")))
}

func TestBucketIndexCache_FailedReadsAreNotKept(t *testing.T) {
	bkt, _, _ := blocksFixture(t)
	counting := &countingBucket{Bucket: bkt}
	c := newBucketIndexCache(counting, time.Minute, prometheus.NewRegistry())
	counting.failing.Store(true)
	_, err := c.get(context.Background(), "t")
	require.ErrorContains(t, err, "object storage unreachable")
	counting.failing.Store(false)
	idx, err := c.get(context.Background(), "t")
	require.NoError(t, err, "the next query reads again")
	require.Len(t, idx.Blocks, 2)
	require.Equal(t, 1.0, testutil.ToFloat64(c.reads.WithLabelValues("failed")))
}

func TestBucketIndexCache_ForgetsTenantsThatStoppedQuerying(t *testing.T) {
	bkt, _, _ := blocksFixture(t)
	c := newBucketIndexCache(bkt, time.Minute, prometheus.NewRegistry())
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }
	for _, tenantID := range []string{"a", "b", "t"} {
		_, err := c.get(context.Background(), tenantID)
		require.NoError(t, err)
	}
	require.Len(t, c.entries, 3)
	now = now.Add(2 * time.Minute)
	_, err := c.get(context.Background(), "t")
	require.NoError(t, err)
	require.Len(t, c.entries, 1, "only the tenant still querying")
}
