package querier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/tombstones"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/thanos-io/objstore"
	"golang.org/x/sync/singleflight"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// Series deletion at read time: a tenant's pending tombstones (series deletion requests the compactor has
// not applied to every block yet) hide the deleted samples from everything read through the queryable,
// whichever ingester or store-gateway holds them. Ingesters delete the samples of their own TSDB too, and
// the compactor rewrites the blocks; until it marks a tombstone done, queries keep filtering.

// TombstoneCache keeps each tenant's pending tombstones for a TTL, so that a query does not list them in
// object storage. A deletion made through this process invalidates its tenant at once; other processes
// see it within the TTL.
type TombstoneCache struct {
	bkt objstore.Bucket
	ttl time.Duration
	now func() time.Time

	mtx     sync.Mutex
	entries map[string]tombstoneEntry
	// epoch counts invalidations: a read that started before one does not fill the cache.
	epoch     uint64
	lastSweep time.Time
	loads     singleflight.Group
}

type tombstoneEntry struct {
	pending []*blockstore.Tombstone
	// newest is the newest tombstone, pending or done, and deleted tells that the tenant is marked for
	// deletion: together, the generation of the tenant's data.
	newest   ulid.ULID
	deleted  bool
	loadedAt time.Time
}

// NewTombstoneCache returns a cache over bkt (the whole bucket); bkt nil means no tenant has tombstones.
func NewTombstoneCache(bkt objstore.Bucket, ttl time.Duration) *TombstoneCache {
	return &TombstoneCache{bkt: bkt, ttl: ttl, now: time.Now, entries: map[string]tombstoneEntry{}}
}

// Pending returns the tenant's tombstones that the compactor has not applied yet.
func (c *TombstoneCache) Pending(ctx context.Context, tenantID string) ([]*blockstore.Tombstone, error) {
	e, err := c.get(ctx, tenantID)
	return e.pending, err
}

// CacheGeneration names the tenant's newest series deletion and its deletion ("" when it has neither),
// so that the query-frontend's cached answers from before a deletion are not used after it.
func (c *TombstoneCache) CacheGeneration(ctx context.Context, tenantID string) (string, error) {
	e, err := c.get(ctx, tenantID)
	if err != nil {
		return "", err
	}
	gen := ""
	if e.newest != (ulid.ULID{}) {
		gen = e.newest.String()
	}
	if e.deleted {
		gen += "/deleted"
	}
	return gen, nil
}

func (c *TombstoneCache) get(ctx context.Context, tenantID string) (tombstoneEntry, error) {
	if c.bkt == nil {
		return tombstoneEntry{}, nil
	}
	now := c.now()
	c.mtx.Lock()
	e, ok := c.entries[tenantID]
	epoch := c.epoch
	c.mtx.Unlock()
	if ok && now.Sub(e.loadedAt) < c.ttl {
		return e, nil
	}
	// Concurrent queries share one read; a read started before an invalidation is not shared after it. It
	// runs without the first query's cancellation, which must not fail the others.
	v, err, _ := c.loads.Do(tenantID+"\x00"+strconv.FormatUint(epoch, 10), func() (any, error) {
		return c.load(context.WithoutCancel(ctx), tenantID, now)
	})
	if err != nil {
		// Object storage being out must not fail queries that ingesters can answer: the last tombstones
		// read stay in force, and are read again after another TTL.
		if ok {
			e.loadedAt = now
			c.mtx.Lock()
			if c.epoch == epoch {
				c.entries[tenantID] = e
			}
			c.mtx.Unlock()
			return e, nil
		}
		// Never read yet: the query goes on unfiltered, and the next one tries again. Ingesters have
		// deleted in their own TSDB what they could read of the tombstones.
		return tombstoneEntry{}, nil
	}
	e = v.(tombstoneEntry)
	c.mtx.Lock()
	defer c.mtx.Unlock()
	// Expired entries go, at most once per TTL, so that tenants that stopped querying do not stay in memory.
	if now.Sub(c.lastSweep) >= c.ttl {
		c.lastSweep = now
		for id, old := range c.entries {
			if now.Sub(old.loadedAt) >= c.ttl {
				delete(c.entries, id)
			}
		}
	}
	// What was read before an invalidation may miss the deletion that caused it.
	if c.ttl > 0 && c.epoch == epoch {
		c.entries[tenantID] = e
	}
	return e, nil
}

func (c *TombstoneCache) load(ctx context.Context, tenantID string, now time.Time) (tombstoneEntry, error) {
	tb := bucket.NewTenantBucket(c.bkt, tenantID)
	all, err := blockstore.ListTombstones(ctx, tb)
	if err != nil {
		return tombstoneEntry{}, fmt.Errorf("read the tenant's series deletions: %w", err)
	}
	_, err = blockstore.ReadTenantDeletionMark(ctx, tb)
	if err != nil && !errors.Is(err, blockstore.ErrTenantDeletionMarkNotFound) {
		return tombstoneEntry{}, fmt.Errorf("read the tenant's deletion mark: %w", err)
	}
	e := tombstoneEntry{pending: blockstore.PendingTombstones(all), deleted: err == nil, loadedAt: now}
	if len(all) > 0 {
		e.newest = all[len(all)-1].ID // sorted by ID, and IDs grow with time
	}
	return e, nil
}

// Invalidate forgets the tenant's tombstones, so that the next query reads them again.
func (c *TombstoneCache) Invalidate(tenantID string) {
	c.mtx.Lock()
	delete(c.entries, tenantID)
	c.epoch++
	c.mtx.Unlock()
}

// TombstoneSource gives a tenant's pending tombstones.
type TombstoneSource interface {
	Pending(ctx context.Context, tenantID string) ([]*blockstore.Tombstone, error)
}

// TombstoneQueryable hides the samples deleted by the tenant's pending tombstones from what it wraps.
type TombstoneQueryable struct {
	inner      storage.Queryable
	tombstones TombstoneSource
}

// NewTombstoneQueryable wraps inner so that its answers leave out deleted samples, and series left
// without samples.
func NewTombstoneQueryable(inner storage.Queryable, tombstones TombstoneSource) *TombstoneQueryable {
	return &TombstoneQueryable{inner: inner, tombstones: tombstones}
}

// Querier implements storage.Queryable.
func (q *TombstoneQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	inner, err := q.inner.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &tombstoneQuerier{Querier: inner, mint: mint, maxt: maxt, tombstones: q.tombstones}, nil
}

type tombstoneQuerier struct {
	storage.Querier
	mint, maxt int64
	tombstones TombstoneSource
}

// relevant returns the tenant's pending tombstones that overlap the querier's range.
func (q *tombstoneQuerier) relevant(ctx context.Context) ([]*blockstore.Tombstone, error) {
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, nil // The wrapped querier refuses the request.
	}
	pending, err := q.tombstones.Pending(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []*blockstore.Tombstone
	for _, t := range pending {
		if t.Overlaps(q.mint, q.maxt) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Select implements storage.Querier.
func (q *tombstoneQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	ts, err := q.relevant(ctx)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	if len(ts) == 0 {
		return q.Querier.Select(ctx, sortSeries, hints, ms...)
	}
	h := storage.SelectHints{Start: q.mint, End: q.maxt}
	if hints != nil {
		h = *hints
	}
	// Label sets alone cannot tell whether deletion left a series without samples.
	if h.Func == "series" {
		h.Func = ""
	}
	return &tombstoneSeriesSet{SeriesSet: q.Querier.Select(ctx, sortSeries, &h, ms...), tombstones: ts, mint: h.Start, maxt: h.End}
}

// allSeries selects every series when a label request gives no matcher.
var allSeries = labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+")

// LabelNames implements storage.Querier. While a tombstone overlaps the range, the names are those of the
// series that still have samples, which takes reading the series.
func (q *tombstoneQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ts, err := q.relevant(ctx)
	if err != nil || len(ts) == 0 {
		if err != nil {
			return nil, nil, err
		}
		return q.Querier.LabelNames(ctx, hints, ms...)
	}
	names := map[string]struct{}{}
	warns, err := q.eachSeries(ctx, ms, func(lset labels.Labels) {
		lset.Range(func(l labels.Label) { names[l.Name] = struct{}{} })
	})
	return sortedLabelStrings(names, hints), warns, err
}

// LabelValues implements storage.Querier, as LabelNames does.
func (q *tombstoneQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ts, err := q.relevant(ctx)
	if err != nil || len(ts) == 0 {
		if err != nil {
			return nil, nil, err
		}
		return q.Querier.LabelValues(ctx, name, hints, ms...)
	}
	values := map[string]struct{}{}
	warns, err := q.eachSeries(ctx, ms, func(lset labels.Labels) {
		if v := lset.Get(name); v != "" {
			values[v] = struct{}{}
		}
	})
	return sortedLabelStrings(values, hints), warns, err
}

func (q *tombstoneQuerier) eachSeries(ctx context.Context, ms []*labels.Matcher, f func(labels.Labels)) (annotations.Annotations, error) {
	if len(ms) == 0 {
		ms = []*labels.Matcher{allSeries}
	}
	set := q.Select(ctx, false, &storage.SelectHints{Start: q.mint, End: q.maxt}, ms...)
	for set.Next() {
		f(set.At().Labels())
	}
	return set.Warnings(), set.Err()
}

func sortedLabelStrings(m map[string]struct{}, hints *storage.LabelHints) []string {
	out := make([]string, 0, len(m))
	for v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	if hints != nil && hints.Limit > 0 && len(out) > hints.Limit {
		out = out[:hints.Limit]
	}
	return out
}

// tombstoneSeriesSet leaves out the deleted samples of its series, and the series left without samples.
type tombstoneSeriesSet struct {
	storage.SeriesSet
	tombstones []*blockstore.Tombstone
	// mint and maxt are the range asked for: a series is left out when none of its samples in it remains
	// (a store may return whole chunks, with samples outside the range).
	mint, maxt int64
	cur        storage.Series
}

func (s *tombstoneSeriesSet) Next() bool {
	for s.SeriesSet.Next() {
		series := s.SeriesSet.At()
		ivs := deletedIntervals(s.tombstones, series.Labels())
		if len(ivs) == 0 {
			s.cur = series
			return true
		}
		filtered := &deletedSamplesSeries{Series: series, intervals: ivs}
		if it := filtered.Iterator(nil); it.Seek(s.mint) == chunkenc.ValNone || it.AtT() > s.maxt {
			continue
		}
		s.cur = filtered
		return true
	}
	return false
}

func (s *tombstoneSeriesSet) At() storage.Series { return s.cur }

// deletedIntervals returns the merged ranges the tombstones delete from the series lset.
func deletedIntervals(ts []*blockstore.Tombstone, lset labels.Labels) tombstones.Intervals {
	var ivs tombstones.Intervals
	for _, t := range ts {
		if t.Matches(lset) {
			ivs = ivs.Add(tombstones.Interval{Mint: t.MinTime, Maxt: t.MaxTime})
		}
	}
	return ivs
}

// deletedSamplesSeries is a series without the samples inside intervals.
type deletedSamplesSeries struct {
	storage.Series
	intervals tombstones.Intervals
}

func (s *deletedSamplesSeries) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	if d, ok := it.(*tsdb.DeletedIterator); ok {
		d.Iter = s.Series.Iterator(d.Iter)
		d.Intervals = s.intervals
		return d
	}
	return &tsdb.DeletedIterator{Iter: s.Series.Iterator(nil), Intervals: s.intervals}
}
