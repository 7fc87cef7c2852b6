package querier

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// tombstoneTestDB is a TSDB holding up{job="a"}, up{job="b"} and other{job="a"}, one sample a second
// from 1s to 10s (values are the timestamps in seconds).
func tombstoneTestDB(t *testing.T) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	app := db.Appender(context.Background())
	for _, lset := range []labels.Labels{
		labels.FromStrings("__name__", "up", "job", "a"),
		labels.FromStrings("__name__", "up", "job", "b"),
		labels.FromStrings("__name__", "other", "job", "a", "only_other", "x"),
	} {
		for s := int64(1); s <= 10; s++ {
			_, err := app.Append(0, lset, s*1000, float64(s))
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	return db
}

type staticTombstones []*blockstore.Tombstone

func (s staticTombstones) Pending(context.Context, string) ([]*blockstore.Tombstone, error) {
	return s, nil
}

func mustTombstone(t testing.TB, minT, maxT int64, selectors ...string) *blockstore.Tombstone {
	t.Helper()
	ts, err := blockstore.NewTombstone(ulid.Make(), selectors, minT, maxT, 0)
	require.NoError(t, err)
	return ts
}

// sampleSeconds returns each series' sample timestamps in seconds.
func sampleSeconds(t *testing.T, set storage.SeriesSet) map[string][]int64 {
	t.Helper()
	out := map[string][]int64{}
	for set.Next() {
		s := set.At()
		it := s.Iterator(nil)
		out[s.Labels().String()] = []int64{}
		for it.Next() != chunkenc.ValNone {
			out[s.Labels().String()] = append(out[s.Labels().String()], it.AtT()/1000)
		}
		require.NoError(t, it.Err())
	}
	require.NoError(t, set.Err())
	return out
}

func TestTombstoneQueryable_HidesDeletedSamplesAndEmptiedSeries(t *testing.T) {
	db := tombstoneTestDB(t)
	q := NewTombstoneQueryable(db, staticTombstones{
		mustTombstone(t, 3000, 5000, `up{job="a"}`),
		mustTombstone(t, 0, 20000, `other`),
	})
	ctx := tenant.NewContext(context.Background(), "t1")
	querier, err := q.Querier(0, 20000)
	require.NoError(t, err)
	defer querier.Close()

	got := sampleSeconds(t, querier.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchRegexp, "job", ".+")))
	require.Equal(t, map[string][]int64{
		`{__name__="up", job="a"}`: {1, 2, 6, 7, 8, 9, 10},
		`{__name__="up", job="b"}`: {1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
	}, got, "deleted samples and the fully deleted series are gone, the neighbour is untouched")

	// /api/v1/series asks for label sets only; a series whose samples are all deleted is still left out.
	set := querier.Select(ctx, true, &storage.SelectHints{Start: 0, End: 20000, Func: "series"}, labels.MustNewMatcher(labels.MatchEqual, "job", "a"))
	var series []string
	for set.Next() {
		series = append(series, set.At().Labels().String())
	}
	require.NoError(t, set.Err())
	require.Equal(t, []string{`{__name__="up", job="a"}`}, series)

	names, _, err := querier.LabelNames(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "job"}, names, "only_other belonged to the deleted series only")
	values, _, err := querier.LabelValues(ctx, "__name__", nil)
	require.NoError(t, err)
	require.Equal(t, []string{"up"}, values)
	values, _, err = querier.LabelValues(ctx, "job", &storage.LabelHints{Limit: 1}, labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"))
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, values)
}

func TestTombstoneQueryable_RangesOutsideTombstonesReadAsBefore(t *testing.T) {
	db := tombstoneTestDB(t)
	q := NewTombstoneQueryable(db, staticTombstones{mustTombstone(t, 50000, 60000, `other`)})
	ctx := tenant.NewContext(context.Background(), "t1")
	querier, err := q.Querier(0, 20000)
	require.NoError(t, err)
	defer querier.Close()
	names, _, err := querier.LabelNames(ctx, nil)
	require.NoError(t, err)
	require.Contains(t, names, "only_other", "the tombstone deletes nothing in the range read")
	got := sampleSeconds(t, querier.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "other")))
	require.Len(t, got[`{__name__="other", job="a", only_other="x"}`], 10)
}

func TestTombstoneCache_ReadsPendingOnlyAndInvalidates(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	tb := bucket.NewTenantBucket(bkt, "t1")
	done := mustTombstone(t, 0, 1, "a")
	done.DoneAt = 5
	require.NoError(t, blockstore.WriteTombstone(ctx, tb, done))

	c := NewTombstoneCache(bkt, time.Hour)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	got, err := c.Pending(ctx, "t1")
	require.NoError(t, err)
	require.Empty(t, got, "a done tombstone is not applied at read time")

	pending := mustTombstone(t, 0, 1, "b")
	require.NoError(t, blockstore.WriteTombstone(ctx, tb, pending))
	got, err = c.Pending(ctx, "t1")
	require.NoError(t, err)
	require.Empty(t, got, "cached for the TTL")

	c.Invalidate("t1")
	got, err = c.Pending(ctx, "t1")
	require.NoError(t, err)
	require.Len(t, got, 1)

	require.NoError(t, blockstore.WriteTombstone(ctx, tb, mustTombstone(t, 0, 1, "c")))
	now = now.Add(time.Hour)
	got, err = c.Pending(ctx, "t1")
	require.NoError(t, err)
	require.Len(t, got, 2, "read again after the TTL")

	gen, err := c.CacheGeneration(ctx, "t1")
	require.NoError(t, err)
	require.NotEmpty(t, gen, "the newest tombstone, done or not, names the generation")
	newer := mustTombstone(t, 0, 1, "d")
	require.NoError(t, blockstore.WriteTombstone(ctx, tb, newer))
	c.Invalidate("t1")
	gen2, err := c.CacheGeneration(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, newer.ID.String(), gen2)
	require.NotEqual(t, gen, gen2)
	gen, err = c.CacheGeneration(ctx, "no-deletions")
	require.NoError(t, err)
	require.Empty(t, gen)
	require.NoError(t, blockstore.WriteTenantDeletionMark(ctx, tb, &blockstore.TenantDeletionMark{DeletionTime: 1}))
	c.Invalidate("t1")
	gen, err = c.CacheGeneration(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, newer.ID.String()+"/deleted", gen, "deleting the tenant starts a generation too")

	got, err = NewTombstoneCache(nil, time.Hour).Pending(ctx, "t1")
	require.NoError(t, err)
	require.Empty(t, got, "no bucket, no tombstones")
}

// sliceSeriesSet is a SeriesSet over a slice.
type sliceSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *sliceSeriesSet) Next() bool                        { s.i++; return s.i <= len(s.series) }
func (s *sliceSeriesSet) At() storage.Series                { return s.series[s.i-1] }
func (s *sliceSeriesSet) Err() error                        { return nil }
func (s *sliceSeriesSet) Warnings() annotations.Annotations { return nil }

// Stores may answer whole chunks, with samples outside the range asked for: a series whose samples in the
// range are all deleted is left out even though samples outside it remain.
func TestTombstoneQueryable_LeavesOutSeriesDeletedInTheRangeAskedFor(t *testing.T) {
	db := tombstoneTestDB(t)
	full, err := db.Querier(0, 20000)
	require.NoError(t, err)
	defer full.Close()
	var untrimmed []storage.Series // every sample, 1s to 10s, whatever range is asked for
	set := full.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, "job", "a"))
	for set.Next() {
		untrimmed = append(untrimmed, set.At())
	}
	require.NoError(t, set.Err())
	inner := &storage.MockQueryable{MockQuerier: &storage.MockQuerier{SelectMockFunction: func(bool, *storage.SelectHints, ...*labels.Matcher) storage.SeriesSet {
		return &sliceSeriesSet{series: untrimmed}
	}}}

	q := NewTombstoneQueryable(inner, staticTombstones{mustTombstone(t, 4000, 7000, "up")})
	querier, err := q.Querier(5000, 6000)
	require.NoError(t, err)
	set = querier.Select(tenant.NewContext(context.Background(), "t1"), false, &storage.SelectHints{Start: 5000, End: 6000, Func: "series"}, labels.MustNewMatcher(labels.MatchEqual, "job", "a"))
	var got []string
	for set.Next() {
		got = append(got, set.At().Labels().Get("__name__"))
	}
	require.NoError(t, set.Err())
	require.Equal(t, []string{"other"}, got, "up has samples left only outside the range")
}

// blockingBucket counts listings and holds each, once listed, until release is closed.
type blockingBucket struct {
	objstore.Bucket
	listings atomic.Int32
	release  chan struct{}
}

func (b *blockingBucket) Iter(ctx context.Context, dir string, f func(string) error, opts ...objstore.IterOption) error {
	var names []string
	if err := b.Bucket.Iter(ctx, dir, func(name string) error { names = append(names, name); return nil }, opts...); err != nil {
		return err
	}
	b.listings.Add(1)
	<-b.release
	for _, name := range names {
		if err := f(name); err != nil {
			return err
		}
	}
	return nil
}

func TestTombstoneCache_ConcurrentQueriesShareOneReadButNotAcrossAnInvalidation(t *testing.T) {
	bkt := &blockingBucket{Bucket: objstore.NewInMemBucket(), release: make(chan struct{})}
	c := NewTombstoneCache(bkt, time.Hour)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := c.Pending(context.Background(), "t1")
			require.NoError(t, err)
		})
	}
	require.Eventually(t, func() bool { return bkt.listings.Load() == 1 }, 5*time.Second, time.Millisecond)

	// A deletion arrives while the read is under way: later queries read again and see it.
	require.NoError(t, blockstore.WriteTombstone(context.Background(), bucket.NewTenantBucket(bkt.Bucket, "t1"), mustTombstone(t, 0, 1, "up")))
	c.Invalidate("t1")
	var after []*blockstore.Tombstone
	wg.Go(func() {
		var err error
		after, err = c.Pending(context.Background(), "t1")
		require.NoError(t, err)
	})
	require.Eventually(t, func() bool { return bkt.listings.Load() == 2 }, 5*time.Second, time.Millisecond)
	close(bkt.release)
	wg.Wait()
	require.Len(t, after, 1)
	got, err := c.Pending(context.Background(), "t1")
	require.NoError(t, err)
	require.Len(t, got, 1, "the read from before the invalidation was not cached")
}

// failingIterBucket fails listings while fail is set, as object storage does during an outage.
type failingIterBucket struct {
	objstore.Bucket
	fail atomic.Bool
}

func (b *failingIterBucket) Iter(ctx context.Context, dir string, f func(string) error, options ...objstore.IterOption) error {
	if b.fail.Load() {
		return errors.New("object storage is out")
	}
	return b.Bucket.Iter(ctx, dir, f, options...)
}

// An object storage outage does not fail queries: the tombstones last read stay in force, and a tenant
// never read goes unfiltered until the bucket answers again.
func TestTombstoneCache_ObjectStorageOutageKeepsTheLastTombstones(t *testing.T) {
	ctx := context.Background()
	bkt := &failingIterBucket{Bucket: objstore.NewInMemBucket()}
	require.NoError(t, blockstore.WriteTombstone(ctx, bucket.NewTenantBucket(bkt, "t1"), mustTombstone(t, 0, 1, "a")))
	c := NewTombstoneCache(bkt, time.Minute)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	got, err := c.Pending(ctx, "t1")
	require.NoError(t, err)
	require.Len(t, got, 1)

	bkt.fail.Store(true)
	now = now.Add(time.Hour)
	got, err = c.Pending(ctx, "t1")
	require.NoError(t, err)
	require.Len(t, got, 1, "the last tombstones read stay in force")
	got, err = c.Pending(ctx, "t2")
	require.NoError(t, err)
	require.Empty(t, got)

	bkt.fail.Store(false)
	require.NoError(t, blockstore.WriteTombstone(ctx, bucket.NewTenantBucket(bkt, "t2"), mustTombstone(t, 0, 1, "b")))
	got, err = c.Pending(ctx, "t2")
	require.NoError(t, err)
	require.Len(t, got, 1, "a tenant not read during the outage is read at the next query")
}
