package blockstore

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

// readMarkAt reads the deletion mark at a bucket path.
func readMarkAt(t *testing.T, bkt objstore.BucketReader, name string) *DeletionMark {
	t.Helper()
	id, ok := DeletionMarkIDFromPath(name)
	if !ok {
		id = ulid.MustParse(blockOf(name))
	}
	m, err := readDeletionMark(context.Background(), bkt, name, id)
	require.NoError(t, err)
	return m
}

func TestMarkForDeletion_WritesBothMarksAndKeepsTheFirst(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	id := ulid.MustNew(1, nil)
	first := time.Unix(1000, 0)

	require.NoError(t, MarkForDeletion(ctx, bkt, id, "compacted", first))
	want := &DeletionMark{ID: id, DeletionTime: 1000, Reason: "compacted", Version: DeletionMarkVersion1}
	require.Equal(t, want, readMarkAt(t, bkt, DeletionMarkPath(id)))
	require.Equal(t, want, readMarkAt(t, bkt, BlockDeletionMarkPath(id)))
	require.Equal(t, "markers/"+id.String()+"-deletion-mark.json", DeletionMarkPath(id))
	require.Equal(t, id.String()+"/deletion-mark.json", BlockDeletionMarkPath(id))

	// Marking again (another compactor, a retry) must not postpone the deletion.
	require.NoError(t, MarkForDeletion(ctx, bkt, id, "retention", first.Add(time.Hour)))
	require.Equal(t, want, readMarkAt(t, bkt, DeletionMarkPath(id)))
	require.Equal(t, want, readMarkAt(t, bkt, BlockDeletionMarkPath(id)))
	got, err := ReadDeletionMark(ctx, bkt, id)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestMarkForDeletion_CompletesInterruptedMark(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	id := ulid.MustNew(1, nil)
	// A crash after the block's own copy was written, before the markers copy.
	first := &DeletionMark{ID: id, DeletionTime: 500, Reason: "compacted", Version: DeletionMarkVersion1}
	require.NoError(t, bkt.Upload(ctx, BlockDeletionMarkPath(id), strings.NewReader(mustJSON(t, first))))

	require.NoError(t, MarkForDeletion(ctx, bkt, id, "retention", time.Unix(2000, 0)))
	require.Equal(t, first, readMarkAt(t, bkt, DeletionMarkPath(id)))
	require.Equal(t, first, readMarkAt(t, bkt, BlockDeletionMarkPath(id)))
}

func TestMarkForDeletion_RewritesCorruptMark(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	id := ulid.MustNew(1, nil)
	require.NoError(t, bkt.Upload(ctx, DeletionMarkPath(id), strings.NewReader("{")))

	require.NoError(t, MarkForDeletion(ctx, bkt, id, "retention", time.Unix(2000, 0)))
	want := &DeletionMark{ID: id, DeletionTime: 2000, Reason: "retention", Version: DeletionMarkVersion1}
	require.Equal(t, want, readMarkAt(t, bkt, DeletionMarkPath(id)))
	require.Equal(t, want, readMarkAt(t, bkt, BlockDeletionMarkPath(id)))
}

func TestReadDeletionMark_Errors(t *testing.T) {
	ctx := context.Background()
	id := ulid.MustNew(1, nil)
	other := ulid.MustNew(2, nil)
	for _, tc := range []struct {
		name    string
		content string // empty: no mark
		wantErr error
		wantMsg string
	}{
		{name: "missing", wantErr: ErrDeletionMarkNotFound},
		{name: "corrupt JSON", content: "{", wantErr: ErrDeletionMarkCorrupted},
		{name: "unknown version", content: `{"id":"` + id.String() + `","deletion_time":1,"version":9}`, wantErr: ErrDeletionMarkCorrupted, wantMsg: "version 9"},
		{name: "marks another block", content: `{"id":"` + other.String() + `","deletion_time":1,"version":1}`, wantErr: ErrDeletionMarkCorrupted, wantMsg: other.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bkt := objstore.NewInMemBucket()
			if tc.content != "" {
				require.NoError(t, bkt.Upload(ctx, DeletionMarkPath(id), strings.NewReader(tc.content)))
			}
			_, err := ReadDeletionMark(ctx, bkt, id)
			require.ErrorIs(t, err, tc.wantErr)
			require.ErrorContains(t, err, tc.wantMsg)
		})
	}
}

func TestDeletionMarkIDFromPath(t *testing.T) {
	id := ulid.MustNew(1, nil)
	for _, tc := range []struct {
		path   string
		wantOK bool
	}{
		{path: DeletionMarkPath(id), wantOK: true},
		{path: BlockDeletionMarkPath(id)},
		{path: "markers/" + id.String() + "-no-compact-mark.json"},
		{path: "markers/not-a-ulid-deletion-mark.json"},
		{path: "markers/" + strings.ToLower(id.String()) + "x-deletion-mark.json"},
		{path: "markers/"},
	} {
		got, ok := DeletionMarkIDFromPath(tc.path)
		require.Equal(t, tc.wantOK, ok, tc.path)
		if tc.wantOK {
			require.Equal(t, id, got)
		}
	}
}

func TestDeleteBlock_RemovesMetaFirstAndMarksLast(t *testing.T) {
	ctx := context.Background()
	dir, ids := createTSDBBlocks(t)
	bkt := newTestBucket()
	_, err := newTestShipper(dir, bkt, nil).Sync(ctx)
	require.NoError(t, err)
	id := ids[0]
	require.NoError(t, MarkForDeletion(ctx, bkt, id, "compacted", time.Unix(1000, 0)))

	require.NoError(t, DeleteBlock(ctx, bkt, id))
	require.Equal(t, MetaPath(id), bkt.deletes[0])
	n := len(bkt.deletes)
	require.Equal(t, []string{BlockDeletionMarkPath(id), DeletionMarkPath(id)}, bkt.deletes[n-2:])
	var left []string
	require.NoError(t, bkt.Iter(ctx, "", func(name string) error {
		left = append(left, name)
		return nil
	}, objstore.WithRecursiveIter()))
	for _, name := range left {
		require.NotContains(t, name, id.String())
	}
	_, err = DownloadMeta(ctx, bkt, ids[1])
	require.NoError(t, err, "the other block is untouched")

	// Finishing an interrupted deletion is not an error.
	require.NoError(t, DeleteBlock(ctx, bkt, id))
}

func TestReadDeletionMark_ReadErrorIsNotNotFound(t *testing.T) {
	bkt := &getErrBucket{Bucket: objstore.NewInMemBucket()}
	_, err := ReadDeletionMark(context.Background(), bkt, ulid.MustNew(1, nil))
	require.ErrorContains(t, err, "network down")
	require.NotErrorIs(t, err, ErrDeletionMarkNotFound)
}

// getErrBucket fails every Get, like an unreachable object store.
type getErrBucket struct{ objstore.Bucket }

func (getErrBucket) Get(context.Context, string) (io.ReadCloser, error) {
	return nil, errNetworkDown
}

var errNetworkDown = errors.New("network down")
