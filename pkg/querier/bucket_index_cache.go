package querier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// bucketIndexCache keeps each tenant's bucket index for a while, so that a query does not read it from
// object storage. The compactor rewrites the index every few minutes and ingesters keep recent data longer
// than -querier.query-store-after, so an index up to the TTL old misses nothing a query needs. A failed
// read is not kept: the next query tries again.
type bucketIndexCache struct {
	bucket objstore.Bucket
	ttl    time.Duration
	now    func() time.Time

	mtx       sync.Mutex
	entries   map[string]*indexEntry
	lastSweep time.Time

	reads *prometheus.CounterVec
}

// indexEntry is a tenant's index, or its loading: done is closed once idx and err are set.
type indexEntry struct {
	done     chan struct{}
	idx      *blockstore.Index // nil: the tenant has no index (no block yet)
	err      error
	loadedAt time.Time
}

func newBucketIndexCache(bkt objstore.Bucket, ttl time.Duration, reg prometheus.Registerer) *bucketIndexCache {
	return &bucketIndexCache{
		bucket:  bkt,
		ttl:     ttl,
		now:     time.Now,
		entries: map[string]*indexEntry{},
		reads: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_querier_bucket_index_reads_total",
			Help: "Bucket index lookups of queries, by outcome: cached (no object storage read), loaded (read from object storage), failed.",
		}, []string{"outcome"}),
	}
}

// get returns the tenant's bucket index, nil if it has none. Concurrent queries of a tenant whose index is
// not cached wait for one read.
func (c *bucketIndexCache) get(ctx context.Context, tenantID string) (*blockstore.Index, error) {
	now := c.now()
	c.mtx.Lock()
	c.sweepLocked(now)
	e, ok := c.entries[tenantID]
	loader := !ok || (isClosed(e.done) && now.Sub(e.loadedAt) >= c.ttl)
	if loader {
		e = &indexEntry{done: make(chan struct{})}
		c.entries[tenantID] = e
	}
	c.mtx.Unlock()

	if loader {
		e.idx, e.err = c.load(ctx, tenantID)
		e.loadedAt = c.now()
		close(e.done)
		if e.err != nil || c.ttl <= 0 {
			c.forget(tenantID, e)
		}
		if e.err != nil {
			c.reads.WithLabelValues("failed").Inc()
			return nil, e.err
		}
		c.reads.WithLabelValues("loaded").Inc()
		return e.idx, nil
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if e.err != nil {
		c.reads.WithLabelValues("failed").Inc()
		return nil, e.err
	}
	c.reads.WithLabelValues("cached").Inc()
	return e.idx, nil
}

func (c *bucketIndexCache) load(ctx context.Context, tenantID string) (*blockstore.Index, error) {
	idx, err := blockstore.ReadIndex(ctx, bucket.NewTenantBucket(c.bucket, tenantID))
	if errors.Is(err, blockstore.ErrIndexNotFound) {
		return nil, nil // no block was ever compacted for this tenant
	}
	if err != nil {
		return nil, fmt.Errorf("read bucket index: %w", err)
	}
	return idx, nil
}

// tenantDeleted reports whether the tenant's deletion mark is in the bucket.
func (c *bucketIndexCache) tenantDeleted(ctx context.Context, tenantID string) bool {
	_, err := blockstore.ReadTenantDeletionMark(ctx, bucket.NewTenantBucket(c.bucket, tenantID))
	return err == nil
}

func (c *bucketIndexCache) forget(tenantID string, e *indexEntry) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if c.entries[tenantID] == e {
		delete(c.entries, tenantID)
	}
}

// sweepLocked drops, at most once per TTL, the entries that are out of date, so tenants that stopped
// querying do not stay in memory.
func (c *bucketIndexCache) sweepLocked(now time.Time) {
	if now.Sub(c.lastSweep) < c.ttl {
		return
	}
	c.lastSweep = now
	for tenantID, e := range c.entries {
		if isClosed(e.done) && now.Sub(e.loadedAt) >= c.ttl {
			delete(c.entries, tenantID)
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
