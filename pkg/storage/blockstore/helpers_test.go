package blockstore

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

var testLogger = slog.New(slog.DiscardHandler)

const testBlockRange = int64(2 * time.Hour / time.Millisecond)

// createTSDBBlocks opens a TSDB in a temporary directory configured like an ingester's (one block range),
// appends 7h of samples and compacts its head, which cuts two 2h blocks. The TSDB stays open until the test
// ends, so its wal, chunks_head and lock are there too.
func createTSDBBlocks(t *testing.T) (string, []ulid.ULID) {
	t.Helper()
	dir := t.TempDir()
	opts := promtsdb.DefaultOptions()
	opts.MinBlockDuration = testBlockRange
	opts.MaxBlockDuration = testBlockRange
	db, err := promtsdb.Open(dir, testLogger, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	db.DisableCompactions() // Only the explicit Compact below cuts blocks.

	app := db.Appender(context.Background())
	for _, job := range []string{"a", "b", "c"} {
		lbls := labels.FromStrings("__name__", "up", "job", job)
		for ts := int64(0); ts <= 7*time.Hour.Milliseconds(); ts += time.Minute.Milliseconds() {
			_, err := app.Append(0, lbls, ts, float64(ts)/1000)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	require.NoError(t, db.Compact(context.Background()))

	var ids []ulid.ULID
	for _, b := range db.Blocks() {
		ids = append(ids, b.Meta().ULID)
	}
	require.Len(t, ids, 2)
	return dir, ids
}

// testBucket wraps a bucket to record uploads, count reads and inject upload failures.
type testBucket struct {
	objstore.Bucket

	mtx        sync.Mutex
	uploads    []string
	deletes    []string
	gets       map[string]int
	attributes int
	// failUpload, when set, is called before every upload; a non-nil error fails the upload.
	failUpload func(name string) error
}

func newTestBucket() *testBucket {
	return &testBucket{Bucket: objstore.NewInMemBucket(), gets: map[string]int{}}
}

func (b *testBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	b.mtx.Lock()
	fail := b.failUpload
	b.mtx.Unlock()
	if fail != nil {
		if err := fail(name); err != nil {
			return err
		}
	}
	if err := b.Bucket.Upload(ctx, name, r, opts...); err != nil {
		return err
	}
	b.mtx.Lock()
	b.uploads = append(b.uploads, name)
	b.mtx.Unlock()
	return nil
}

func (b *testBucket) Delete(ctx context.Context, name string) error {
	if err := b.Bucket.Delete(ctx, name); err != nil {
		return err
	}
	b.mtx.Lock()
	b.deletes = append(b.deletes, name)
	b.mtx.Unlock()
	return nil
}

func (b *testBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	b.mtx.Lock()
	b.gets[name]++
	b.mtx.Unlock()
	return b.Bucket.Get(ctx, name)
}

func (b *testBucket) Attributes(ctx context.Context, name string) (objstore.ObjectAttributes, error) {
	b.mtx.Lock()
	b.attributes++
	b.mtx.Unlock()
	return b.Bucket.Attributes(ctx, name)
}

func (b *testBucket) setFailUpload(f func(name string) error) {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	b.failUpload = f
}

// takeUploads returns the names uploaded since the last call.
func (b *testBucket) takeUploads() []string {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	u := b.uploads
	b.uploads = nil
	return u
}

// takeReads returns the Get calls by object name and the number of Attributes calls since the last call.
func (b *testBucket) takeReads() (gets map[string]int, attributes int) {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	gets, attributes = b.gets, b.attributes
	b.gets = map[string]int{}
	b.attributes = 0
	return gets, attributes
}

// downloadBlock copies block id from bkt into dir/<id> and returns that directory.
func downloadBlock(t *testing.T, bkt objstore.BucketReader, id ulid.ULID, dir string) string {
	t.Helper()
	ctx := context.Background()
	blockDir := filepath.Join(dir, id.String())
	err := bkt.Iter(ctx, id.String()+"/", func(name string) error {
		r, err := bkt.Get(ctx, name)
		if err != nil {
			return err
		}
		defer r.Close()
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.Create(dst)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	}, objstore.WithRecursiveIter())
	require.NoError(t, err)
	return blockDir
}

type sample struct {
	t int64
	v float64
}

// readBlockSamples opens the block in dir and returns its float samples by series.
func readBlockSamples(t *testing.T, dir string) map[string][]sample {
	t.Helper()
	b, err := promtsdb.OpenBlock(testLogger, dir, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	q, err := promtsdb.NewBlockQuerier(b, math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()

	out := map[string][]sample{}
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for ss.Next() {
		s := ss.At()
		it := s.Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[s.Labels().String()] = append(out[s.Labels().String()], sample{ts, v})
		}
		require.NoError(t, it.Err())
	}
	require.NoError(t, ss.Err())
	return out
}

// blockOf returns the block ULID a bucket path belongs to, or "" for other paths.
func blockOf(name string) string {
	dir, _, ok := strings.Cut(name, "/")
	if !ok {
		return ""
	}
	if _, err := ulid.ParseStrict(dir); err != nil {
		return ""
	}
	return dir
}
