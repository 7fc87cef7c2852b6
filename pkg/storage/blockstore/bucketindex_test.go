package blockstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

func TestIndex_WriteReadRoundTrip(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	id1, id2 := ulid.MustNew(1, nil), ulid.MustNew(2, nil)
	idx := &Index{
		Version: IndexVersion1,
		Blocks: []*BlockEntry{
			{ID: id1, MinTime: 0, MaxTime: testBlockRange, Source: SourceIngester, CompactionLevel: 1, IngesterID: "ingester-1", UploadedAt: 100},
			{ID: id2, MinTime: 0, MaxTime: 6 * testBlockRange, Source: SourceCompactor, CompactionLevel: 2, UploadedAt: 200},
		},
		DeletionMarks: []*DeletionMark{{ID: id1, DeletionTime: 300, Reason: "compacted", Version: DeletionMarkVersion1}},
		UpdatedAt:     400,
	}
	require.NoError(t, WriteIndex(ctx, bkt, idx))

	// Stored gzipped at the agreed path.
	r, err := bkt.Get(ctx, BucketIndexFilename)
	require.NoError(t, err)
	gz, err := gzip.NewReader(r)
	require.NoError(t, err)
	require.NoError(t, gz.Close())
	require.NoError(t, r.Close())

	got, err := ReadIndex(ctx, bkt)
	require.NoError(t, err)
	require.Equal(t, idx, got)
}

func TestReadIndex_MissingIndex(t *testing.T) {
	_, err := ReadIndex(context.Background(), objstore.NewInMemBucket())
	require.ErrorIs(t, err, ErrIndexNotFound)
}

func TestReadIndex_CorruptIndex(t *testing.T) {
	gzipped := func(s string) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, err := w.Write([]byte(s))
		require.NoError(t, err)
		require.NoError(t, w.Close())
		return buf.Bytes()
	}
	valid := gzipped(`{"version":1,"blocks":[],"deletion_marks":[],"updated_at":1}`)
	for _, tc := range []struct {
		name    string
		content []byte
		wantMsg string
	}{
		{name: "not gzip", content: []byte(`{"version":1}`), wantMsg: "not gzip"},
		{name: "not JSON", content: gzipped("hello"), wantMsg: "decode"},
		{name: "truncated", content: valid[:len(valid)-10], wantMsg: "decompress"},
		{name: "unknown version", content: gzipped(`{"version":2}`), wantMsg: "version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bkt := objstore.NewInMemBucket()
			require.NoError(t, bkt.Upload(context.Background(), BucketIndexFilename, bytes.NewReader(tc.content)))
			_, err := ReadIndex(context.Background(), bkt)
			require.ErrorIs(t, err, ErrIndexCorrupted)
			require.ErrorContains(t, err, tc.wantMsg)
		})
	}
}

func TestReadIndex_BucketErrorIsNotCorruption(t *testing.T) {
	_, err := ReadIndex(context.Background(), &getErrBucket{Bucket: objstore.NewInMemBucket()})
	require.ErrorIs(t, err, errNetworkDown)
	require.NotErrorIs(t, err, ErrIndexCorrupted)
	require.NotErrorIs(t, err, ErrIndexNotFound)
}

func TestWriteIndex_RejectsUnknownVersion(t *testing.T) {
	err := WriteIndex(context.Background(), objstore.NewInMemBucket(), &Index{})
	require.ErrorContains(t, err, "version 0")
}

// newTestUpdater returns an updater whose clock is testNow and whose warnings go to the returned buffer.
func newTestUpdater(bkt objstore.BucketReader) (*Updater, *bytes.Buffer) {
	var logs bytes.Buffer
	u := NewUpdater(bkt, slog.New(slog.NewTextHandler(&logs, nil)))
	u.now = func() time.Time { return testNow }
	return u, &logs
}

func TestUpdater_UpdateIndex(t *testing.T) {
	ctx := context.Background()
	dir, ids := createTSDBBlocks(t)
	bkt := newTestBucket()
	_, err := newTestShipper(dir, bkt, nil).Sync(ctx)
	require.NoError(t, err)

	// A compacted block, a block still being uploaded (no meta.json yet), a marked block, and a mark left
	// over from a block already deleted.
	compacted := testMeta(ulid.MustNew(10, nil))
	compacted.MaxTime = 3 * testBlockRange
	compacted.Compaction.Level = 2
	compacted.Strata = StrataMeta{TenantID: "tenant-1", Source: SourceCompactor, ReplicasDeduplicated: true}
	require.NoError(t, UploadMeta(ctx, bkt, compacted))
	partial := ulid.MustNew(11, nil)
	require.NoError(t, bkt.Upload(ctx, partial.String()+"/"+BlockIndexFilename, strings.NewReader("index")))
	require.NoError(t, MarkForDeletion(ctx, bkt, ids[0], "compacted", time.Unix(1000, 0)))
	gone := ulid.MustNew(12, nil)
	require.NoError(t, bkt.Upload(ctx, DeletionMarkPath(gone), strings.NewReader(mustJSON(t, &DeletionMark{ID: gone, DeletionTime: 1, Version: 1}))))
	require.NoError(t, bkt.Upload(ctx, "unrelated.txt", strings.NewReader("x")))

	u, logs := newTestUpdater(bkt)
	idx, err := u.UpdateIndex(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, IndexVersion1, idx.Version)
	require.Equal(t, testNow.Unix(), idx.UpdatedAt)
	require.Contains(t, logs.String(), "skipped partial block")
	require.Contains(t, logs.String(), partial.String())

	require.Len(t, idx.Blocks, 3)
	got := map[ulid.ULID]*BlockEntry{}
	for _, b := range idx.Blocks {
		require.NotZero(t, b.UploadedAt)
		got[b.ID] = b
	}
	for _, id := range ids {
		m, err := DownloadMeta(ctx, bkt, id)
		require.NoError(t, err)
		require.Equal(t, &BlockEntry{
			ID: id, MinTime: m.MinTime, MaxTime: m.MaxTime, Source: SourceIngester, CompactionLevel: 1,
			IngesterID: "ingester-1", Sources: m.Compaction.Sources, UploadedAt: got[id].UploadedAt,
		}, got[id])
	}
	require.Equal(t, &BlockEntry{
		ID: compacted.ULID, MinTime: 0, MaxTime: 3 * testBlockRange, Source: SourceCompactor, CompactionLevel: 2,
		Sources: compacted.Compaction.Sources, UploadedAt: got[compacted.ULID].UploadedAt,
	}, got[compacted.ULID])
	require.Equal(t, []*DeletionMark{{ID: ids[0], DeletionTime: 1000, Reason: "compacted", Version: DeletionMarkVersion1}}, idx.DeletionMarks)
	require.True(t, idx.IsMarkedForDeletion(ids[0]))
	require.False(t, idx.IsMarkedForDeletion(ids[1]))
	for i := 1; i < len(idx.Blocks); i++ {
		a, b := idx.Blocks[i-1], idx.Blocks[i]
		require.True(t, a.MinTime < b.MinTime || (a.MinTime == b.MinTime && a.ID.Compare(b.ID) < 0), "blocks sorted by time")
	}

	// Nothing changed: nothing is read again but the partial block's meta.json, which may have arrived.
	bkt.takeReads()
	again, err := u.UpdateIndex(ctx, idx)
	require.NoError(t, err)
	require.Equal(t, idx, again)
	gets, attrs := bkt.takeReads()
	require.Equal(t, map[string]int{MetaPath(partial): 1}, gets)
	require.Zero(t, attrs)

	// A block deleted, a new one uploaded and the partial one completed, one more mark: only what is new is
	// read.
	require.NoError(t, DeleteBlock(ctx, bkt, ids[0]))
	added := testMeta(ulid.MustNew(13, nil))
	require.NoError(t, UploadMeta(ctx, bkt, added))
	completed := testMeta(partial)
	require.NoError(t, UploadMeta(ctx, bkt, completed))
	require.NoError(t, MarkForDeletion(ctx, bkt, compacted.ULID, "retention", time.Unix(2000, 0)))
	bkt.takeReads()

	updated, err := u.UpdateIndex(ctx, again)
	require.NoError(t, err)
	gets, attrs = bkt.takeReads()
	require.Equal(t, map[string]int{
		MetaPath(added.ULID): 1, MetaPath(partial): 1, DeletionMarkPath(compacted.ULID): 1,
	}, gets, "only the new meta.json files and the new deletion mark are read")
	require.Equal(t, 2, attrs)
	var gotIDs []ulid.ULID
	for _, b := range updated.Blocks {
		gotIDs = append(gotIDs, b.ID)
	}
	require.ElementsMatch(t, []ulid.ULID{ids[1], compacted.ULID, partial, added.ULID}, gotIDs)
	require.Same(t, got[ids[1]], updated.Blocks[slicesIndex(updated.Blocks, ids[1])], "old entries are reused")
	require.Len(t, updated.DeletionMarks, 1)
	require.Equal(t, compacted.ULID, updated.DeletionMarks[0].ID)
	require.False(t, updated.IsMarkedForDeletion(ids[0]))
}

func slicesIndex(blocks []*BlockEntry, id ulid.ULID) int {
	for i, b := range blocks {
		if b.ID == id {
			return i
		}
	}
	return -1
}

func TestUpdater_SkipsCorruptMetaAndMark(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	good := testMeta(ulid.MustNew(1, nil))
	require.NoError(t, UploadMeta(ctx, bkt, good))
	bad := ulid.MustNew(2, nil)
	require.NoError(t, bkt.Upload(ctx, MetaPath(bad), strings.NewReader("{")))
	require.NoError(t, bkt.Upload(ctx, DeletionMarkPath(good.ULID), strings.NewReader("{")))

	u, logs := newTestUpdater(bkt)
	idx, err := u.UpdateIndex(ctx, nil)
	require.NoError(t, err, "one bad block must not stop the tenant's index")
	require.Len(t, idx.Blocks, 1)
	require.Equal(t, good.ULID, idx.Blocks[0].ID)
	require.Empty(t, idx.DeletionMarks)
	require.Contains(t, logs.String(), "skipped block with corrupt meta.json")
	require.Contains(t, logs.String(), "skipped corrupt deletion mark")
}

func TestUpdater_FailsOnBucketErrors(t *testing.T) {
	ctx := context.Background()
	inner := objstore.NewInMemBucket()
	require.NoError(t, UploadMeta(ctx, inner, testMeta(ulid.MustNew(1, nil))))
	u, _ := newTestUpdater(&getErrBucket{Bucket: inner})
	_, err := u.UpdateIndex(ctx, nil)
	require.ErrorIs(t, err, errNetworkDown)
}

func TestIndex_BlocksInRange(t *testing.T) {
	a := &BlockEntry{ID: ulid.MustNew(1, nil), MinTime: 0, MaxTime: 100}
	b := &BlockEntry{ID: ulid.MustNew(2, nil), MinTime: 100, MaxTime: 200}
	c := &BlockEntry{ID: ulid.MustNew(3, nil), MinTime: 0, MaxTime: 200}
	idx := &Index{
		Version:       IndexVersion1,
		Blocks:        []*BlockEntry{a, c, b},
		DeletionMarks: []*DeletionMark{{ID: c.ID, DeletionTime: 1, Version: 1}},
	}
	for _, tc := range []struct {
		name       string
		minT, maxT int64
		want       []*BlockEntry
	}{
		{name: "all", minT: 0, maxT: 1000, want: []*BlockEntry{a, c, b}},
		{name: "MaxTime is exclusive", minT: 100, maxT: 150, want: []*BlockEntry{c, b}},
		{name: "maxT is inclusive", minT: 50, maxT: 100, want: []*BlockEntry{a, c, b}},
		{name: "before every block", minT: -10, maxT: -1},
		{name: "after every block", minT: 200, maxT: 300},
		{name: "one millisecond", minT: 99, maxT: 99, want: []*BlockEntry{a, c}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, idx.BlocksInRange(tc.minT, tc.maxT))
		})
	}
	require.True(t, idx.IsMarkedForDeletion(c.ID), "marked blocks are still returned; the caller decides")
	require.Equal(t, int64(1), idx.DeletionMark(c.ID).DeletionTime)
	require.Nil(t, idx.DeletionMark(a.ID))
}
