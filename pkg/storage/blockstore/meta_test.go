package blockstore

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

func testMeta(id ulid.ULID) *Meta {
	return &Meta{
		BlockMeta: promtsdb.BlockMeta{
			ULID:       id,
			MinTime:    0,
			MaxTime:    testBlockRange,
			Version:    MetaVersion1,
			Compaction: promtsdb.BlockMetaCompaction{Level: 1, Sources: []ulid.ULID{id}},
		},
		Strata: StrataMeta{TenantID: "tenant-1", IngesterID: "ingester-1", Source: SourceIngester},
	}
}

func TestMeta_WriteToDirKeepsBlockReadableByPrometheus(t *testing.T) {
	dir, ids := createTSDBBlocks(t)
	blockDir := copyBlockDir(t, filepath.Join(dir, ids[0].String()))

	m, err := ReadMetaFromDir(blockDir)
	require.NoError(t, err)
	require.Equal(t, StrataMeta{}, m.Strata, "a block written by Prometheus has no strata section")
	m.Strata = StrataMeta{TenantID: "tenant-1", Source: SourceCompactor, ReplicasDeduplicated: true}
	require.NoError(t, m.WriteToDir(blockDir))

	got, err := ReadMetaFromDir(blockDir)
	require.NoError(t, err)
	require.Equal(t, m, got)
	entries, err := os.ReadDir(blockDir)
	require.NoError(t, err)
	for _, e := range entries {
		require.NotContains(t, e.Name(), ".tmp", "the temporary file must be renamed away")
	}

	// Prometheus' fields keep their names, and Prometheus still opens the block.
	var raw map[string]any
	b, err := os.ReadFile(filepath.Join(blockDir, MetaFilename))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &raw))
	require.Equal(t, ids[0].String(), raw["ulid"])
	require.Contains(t, raw, "minTime")
	require.Equal(t, map[string]any{"tenant_id": "tenant-1", "source": "compactor", "replicas_deduplicated": true}, raw["strata"])
	pb, err := promtsdb.OpenBlock(testLogger, blockDir, nil, nil)
	require.NoError(t, err)
	require.Equal(t, m.BlockMeta, pb.Meta())
	require.NoError(t, pb.Close())
}

// copyBlockDir copies a block directory, so a test can change it without touching the open TSDB.
func copyBlockDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
	return dst
}

func TestReadMetaFromDir_RejectsBadMeta(t *testing.T) {
	id := ulid.MustNew(1, nil)
	good, err := json.Marshal(testMeta(id))
	require.NoError(t, err)
	v2 := testMeta(id)
	v2.Version = 2
	badVersion, err := json.Marshal(v2)
	require.NoError(t, err)

	for _, tc := range []struct {
		name    string
		dirName string
		content string // empty: no meta.json
		wantErr error
		wantMsg string
	}{
		{name: "missing", dirName: id.String(), wantErr: fs.ErrNotExist},
		{name: "corrupt JSON", dirName: id.String(), content: "{", wantErr: ErrMetaCorrupted},
		{name: "unknown version", dirName: id.String(), content: string(badVersion), wantErr: ErrMetaCorrupted, wantMsg: "version 2"},
		{name: "no ULID", dirName: id.String(), content: `{"version":1}`, wantErr: ErrMetaCorrupted, wantMsg: "no ULID"},
		{name: "ULID is not the directory name", dirName: ulid.MustNew(2, nil).String(), content: string(good), wantErr: ErrMetaCorrupted, wantMsg: "not the directory name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), tc.dirName)
			require.NoError(t, os.Mkdir(dir, 0o755))
			if tc.content != "" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, MetaFilename), []byte(tc.content), 0o644))
			}
			_, err := ReadMetaFromDir(dir)
			require.ErrorIs(t, err, tc.wantErr)
			require.ErrorContains(t, err, tc.wantMsg)
		})
	}
}

func TestDownloadMeta(t *testing.T) {
	ctx := context.Background()
	id := ulid.MustNew(1, nil)
	other := ulid.MustNew(2, nil)
	bkt := objstore.NewInMemBucket()

	_, err := DownloadMeta(ctx, bkt, id)
	require.ErrorIs(t, err, ErrMetaNotFound)

	m := testMeta(id)
	require.NoError(t, UploadMeta(ctx, bkt, m))
	got, err := DownloadMeta(ctx, bkt, id)
	require.NoError(t, err)
	require.Equal(t, m, got)

	// A meta.json stored under another block's directory describes the wrong block.
	require.NoError(t, bkt.Upload(ctx, MetaPath(other), strings.NewReader(mustJSON(t, m))))
	_, err = DownloadMeta(ctx, bkt, other)
	require.ErrorIs(t, err, ErrMetaCorrupted)

	require.NoError(t, bkt.Upload(ctx, MetaPath(other), strings.NewReader("not json")))
	_, err = DownloadMeta(ctx, bkt, other)
	require.ErrorIs(t, err, ErrMetaCorrupted)
}

func TestUploadMeta_RejectsUnknownVersion(t *testing.T) {
	m := testMeta(ulid.MustNew(1, nil))
	m.Version = 0
	require.ErrorContains(t, UploadMeta(context.Background(), objstore.NewInMemBucket(), m), "version 0")
	require.ErrorContains(t, m.WriteToDir(t.TempDir()), "version 0")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
