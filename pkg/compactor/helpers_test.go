package compactor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

var testLogger = slog.New(slog.DiscardHandler)

const (
	hourMs     = int64(time.Hour / time.Millisecond)
	sampleStep = int64(30 * time.Second / time.Millisecond)
)

// blockSpec describes a test block: series up{job="0".."series-1"} with a sample every sampleStep in
// [minT, maxT), except where skip says so.
type blockSpec struct {
	minT, maxT int64
	series     int
	ingester   string
	skip       func(series int, t int64) bool
	// exemplars are offsets from minT at which every series gets an exemplar (trace_id "<series>-<ts>"),
	// the same in every replica's block.
	exemplars []int64
}

// buildBlock writes the block spec describes as an ingester cuts it: a TSDB with 2h blocks whose head is
// compacted over exactly [minT, maxT). It returns the block's directory and meta.
func buildBlock(t *testing.T, tenant string, spec blockSpec) (string, *blockstore.Meta) {
	t.Helper()
	dir := t.TempDir()
	opts := promtsdb.DefaultOptions()
	opts.MinBlockDuration = 2 * hourMs
	opts.MaxBlockDuration = 2 * hourMs
	db, err := promtsdb.Open(dir, testLogger, nil, opts, nil)
	require.NoError(t, err)
	db.DisableCompactions()
	app := db.Appender(context.Background())
	for s := range spec.series {
		lbls := labels.FromStrings("__name__", "up", "job", fmt.Sprint(s))
		for ts := spec.minT; ts < spec.maxT; ts += sampleStep {
			if spec.skip != nil && spec.skip(s, ts) {
				continue
			}
			_, err := app.Append(0, lbls, ts, float64(ts/sampleStep+int64(s)))
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	require.NoError(t, db.CompactHead(promtsdb.NewRangeHead(db.Head(), spec.minT, spec.maxT-1)))
	blocks := db.Blocks()
	require.Len(t, blocks, 1)
	id := blocks[0].Meta().ULID
	require.NoError(t, db.Close())

	bdir := filepath.Join(dir, id.String())
	meta, err := blockstore.ReadMetaFromDir(bdir)
	require.NoError(t, err)
	require.Equal(t, spec.minT, meta.MinTime)
	require.Equal(t, spec.maxT, meta.MaxTime)
	meta.Strata = blockstore.StrataMeta{TenantID: tenant, IngesterID: spec.ingester, Source: blockstore.SourceIngester}
	if len(spec.exemplars) > 0 {
		w, err := blockstore.NewExemplarWriter(bdir)
		require.NoError(t, err)
		for s := range spec.series {
			var es []exemplar.Exemplar
			for _, off := range spec.exemplars {
				ts := spec.minT + off
				es = append(es, exemplar.Exemplar{Labels: labels.FromStrings("trace_id", fmt.Sprintf("%d-%d", s, ts)), Value: float64(ts), Ts: ts, HasTs: true})
			}
			// Series in label order: job="0", "1", ... as long as there are at most 10.
			require.NoError(t, w.Append(labels.FromStrings("__name__", "up", "job", fmt.Sprint(s)), es))
		}
		require.NoError(t, w.Close())
		meta.Strata.Exemplars = w.Count()
	}
	require.NoError(t, meta.WriteToDir(bdir))
	return bdir, meta
}

// readExemplars downloads a block's exemplar file and returns its exemplars as "series trace_id" lines.
func readExemplars(t *testing.T, bkt objstore.Bucket, tenant string, id ulid.ULID) []string {
	t.Helper()
	rc, err := bucket.NewTenantBucket(bkt, tenant).Get(context.Background(), id.String()+"/"+blockstore.ExemplarsFilename)
	if bkt.IsObjNotFoundErr(err) {
		return nil
	}
	require.NoError(t, err)
	defer rc.Close()
	r, err := blockstore.NewExemplarReader(rc)
	require.NoError(t, err)
	var out []string
	for {
		lset, es, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		for _, e := range es {
			out = append(out, lset.Get("job")+" "+e.Labels.Get("trace_id"))
		}
	}
}

// shipBlock builds the block spec describes and uploads it to tenant's directory of bkt, like a shipper.
func shipBlock(t *testing.T, bkt objstore.Bucket, tenant string, spec blockSpec) *blockstore.Meta {
	t.Helper()
	dir, meta := buildBlock(t, tenant, spec)
	require.NoError(t, uploadBlock(context.Background(), bucket.NewTenantBucket(bkt, tenant), meta, dir))
	return meta
}

// sampleKey is one sample of one series, for comparing block contents.
type sampleKey struct {
	series string
	t      int64
	v      float64
}

// readBlock downloads a block of tenant and returns its samples.
func readBlock(t *testing.T, bkt objstore.Bucket, tenant string, id ulid.ULID) map[sampleKey]struct{} {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id.String())
	require.NoError(t, downloadBlock(context.Background(), bucket.NewTenantBucket(bkt, tenant), id, dir))
	b, err := promtsdb.OpenBlock(testLogger, dir, nil, nil)
	require.NoError(t, err)
	defer b.Close()
	q, err := promtsdb.NewBlockQuerier(b, b.MinTime(), b.MaxTime())
	require.NoError(t, err)
	defer q.Close()
	out := map[sampleKey]struct{}{}
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	var it chunkenc.Iterator
	for set.Next() {
		s := set.At()
		it = s.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			k := sampleKey{series: s.Labels().String(), t: ts, v: v}
			_, dup := out[k]
			require.False(t, dup, "sample %v read twice", k)
			out[k] = struct{}{}
		}
		require.NoError(t, it.Err())
	}
	require.NoError(t, set.Err())
	return out
}

// union merges sample sets.
func union(sets ...map[sampleKey]struct{}) map[sampleKey]struct{} {
	out := map[sampleKey]struct{}{}
	for _, s := range sets {
		for k := range s {
			out[k] = struct{}{}
		}
	}
	return out
}

// testClock is a settable clock.
type testClock struct {
	mtx sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	c.now = c.now.Add(d)
}

// testBase is the start of the day three days ago: test blocks live in that day and the next, and the clock
// starts now, since the bucket stamps objects with the real time.
func testBase() int64 {
	day := 24 * hourMs
	return time.Now().UnixMilli()/day*day - 3*day
}

func testConfig(t *testing.T) Config {
	return Config{
		BlockRanges:        DurationList{2 * time.Hour, 12 * time.Hour, 24 * time.Hour},
		CompactionInterval: time.Hour,
		DataDir:            t.TempDir(),
		DeletionDelay:      12 * time.Hour,
		CleanupInterval:    15 * time.Minute,
	}
}

func newTestCompactor(t *testing.T, cfg Config, bkt objstore.Bucket) (*Compactor, *testClock) {
	t.Helper()
	c, err := New(cfg, nil, bkt, nil, "compactor-1", prometheus.NewRegistry(), testLogger)
	require.NoError(t, err)
	clock := &testClock{now: time.Now()}
	c.now = clock.Now
	return c, clock
}

// tenantIndex reads the bucket index the compactor wrote for tenant.
func tenantIndex(t *testing.T, bkt objstore.Bucket, tenant string) *blockstore.Index {
	t.Helper()
	idx, err := blockstore.ReadIndex(context.Background(), bucket.NewTenantBucket(bkt, tenant))
	require.NoError(t, err)
	return idx
}

// blockDirs lists the block directories of tenant in bkt, complete or partial.
func blockDirs(t *testing.T, bkt objstore.Bucket, tenant string) []ulid.ULID {
	t.Helper()
	var ids []ulid.ULID
	require.NoError(t, bkt.Iter(context.Background(), tenant+"/", func(name string) error {
		name = strings.TrimSuffix(strings.TrimPrefix(name, tenant+"/"), "/")
		if id, err := ulid.ParseStrict(name); err == nil {
			ids = append(ids, id)
		}
		return nil
	}))
	return ids
}

// failingBucket fails the uploads fail returns an error for.
type failingBucket struct {
	objstore.Bucket
	mtx  sync.Mutex
	fail func(name string) error
}

func (b *failingBucket) setFail(f func(name string) error) {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	b.fail = f
}

func (b *failingBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	b.mtx.Lock()
	f := b.fail
	b.mtx.Unlock()
	if f != nil {
		if err := f(name); err != nil {
			return err
		}
	}
	return b.Bucket.Upload(ctx, name, r, opts...)
}
