package bucket

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

// A reader racing rewrites of an object sees one whole version or another, never an empty or cut one:
// the compactor rewrites bucket-index.json.gz while queriers read it.
func TestFilesystemBucket_ReadersNeverSeeAPartialObject(t *testing.T) {
	b, err := newFilesystemBucket(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	versions := [][]byte{bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 256<<10)}
	require.NoError(t, b.Upload(ctx, "tenant/bucket-index.json.gz", bytes.NewReader(versions[0])))

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			require.NoError(t, b.Upload(ctx, "tenant/bucket-index.json.gz", bytes.NewReader(versions[i%2])))
		}
	})
	for range 200 {
		r, err := b.Get(ctx, "tenant/bucket-index.json.gz")
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		_ = r.Close()
		require.Len(t, got, 256<<10, "a reader saw a partial object")
		require.True(t, bytes.Equal(got, versions[0]) || bytes.Equal(got, versions[1]))
	}
	close(stop)
	wg.Wait()
}

func TestFilesystemBucket_ListingsSkipObjectsBeingWritten(t *testing.T) {
	dir := t.TempDir()
	b, err := newFilesystemBucket(dir)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, b.Upload(ctx, "tenant/block/meta.json", strings.NewReader("{}")))
	// An upload interrupted by a crash leaves its temporary file behind.
	raw, err := newFilesystemBucket(dir)
	require.NoError(t, err)
	require.NoError(t, raw.(*atomicFilesystemBucket).Bucket.Upload(ctx, "tenant/block/"+tempPrefix+"123", strings.NewReader("partial")))

	var names []string
	require.NoError(t, b.Iter(ctx, "tenant/block/", func(name string) error {
		names = append(names, name)
		return nil
	}))
	require.Equal(t, []string{"tenant/block/meta.json"}, names)
	names = nil
	require.NoError(t, b.IterWithAttributes(ctx, "", func(attrs objstore.IterObjectAttributes) error {
		names = append(names, attrs.Name)
		return nil
	}, objstore.WithRecursiveIter()))
	require.Equal(t, []string{"tenant/block/meta.json"}, names)

	require.Error(t, b.Upload(ctx, "../outside", strings.NewReader("x")))
}
