package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// testBucketDir is a filesystem bucket in a temporary directory.
type testBucketDir struct {
	t   *testing.T
	dir string
	bkt objstore.Bucket
}

func newTestBucketDir(t *testing.T) *testBucketDir {
	t.Helper()
	dir := t.TempDir()
	bkt, err := filesystem.NewBucket(dir)
	require.NoError(t, err)
	return &testBucketDir{t: t, dir: dir, bkt: bkt}
}

func (b *testBucketDir) tenant(id string) objstore.Bucket { return bucket.NewTenantBucket(b.bkt, id) }

// addBlock writes a complete block of tenantID holding the data of sources (itself when none).
func (b *testBucketDir) addBlock(tenantID string, minT int64, sources ...ulid.ULID) ulid.ULID {
	b.t.Helper()
	id := ulid.Make()
	time.Sleep(time.Millisecond) // distinct, ordered ULIDs
	if len(sources) == 0 {
		sources = []ulid.ULID{id}
	}
	writeBlock(b.t, b.tenant(tenantID), tenantID, id, minT, sources)
	return id
}

func writeBlock(t *testing.T, tb objstore.Bucket, tenantID string, id ulid.ULID, minT int64, sources []ulid.ULID) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, tb.Upload(ctx, id.String()+"/index", strings.NewReader("index of "+id.String())))
	require.NoError(t, tb.Upload(ctx, id.String()+"/chunks/000001", strings.NewReader(strings.Repeat("c", 1000))))
	level := 1
	if len(sources) > 1 {
		level = 2
	}
	m := &blockstore.Meta{
		BlockMeta: promtsdb.BlockMeta{
			ULID: id, MinTime: minT, MaxTime: minT + 2*time.Hour.Milliseconds(), Version: blockstore.MetaVersion1,
			Stats:      promtsdb.BlockStats{NumSeries: 3, NumSamples: 360, NumChunks: 3},
			Compaction: promtsdb.BlockMetaCompaction{Level: level, Sources: sources},
		},
		Strata: blockstore.StrataMeta{TenantID: tenantID, Source: blockstore.SourceIngester},
	}
	require.NoError(t, blockstore.UploadMeta(ctx, tb, m))
}

func (b *testBucketDir) put(name, content string) {
	b.t.Helper()
	require.NoError(b.t, b.bkt.Upload(context.Background(), name, strings.NewReader(content)))
}

func (b *testBucketDir) get(name string) (string, bool) {
	b.t.Helper()
	data, err := os.ReadFile(filepath.Join(b.dir, name))
	if os.IsNotExist(err) {
		return "", false
	}
	require.NoError(b.t, err)
	return string(data), true
}

func (b *testBucketDir) index(tenantID string) *blockstore.Index {
	b.t.Helper()
	idx, err := blockstore.ReadIndex(context.Background(), b.tenant(tenantID))
	require.NoError(b.t, err)
	return idx
}

func (b *testBucketDir) blockIDs(tenantID string) []ulid.ULID {
	b.t.Helper()
	dirs, err := listBlockDirs(context.Background(), b.tenant(tenantID))
	require.NoError(b.t, err)
	var ids []ulid.ULID
	for id := range dirs {
		ids = append(ids, id)
	}
	return ids
}

func indexIDs(idx *blockstore.Index) []ulid.ULID {
	var ids []ulid.ULID
	for _, b := range idx.Blocks {
		ids = append(ids, b.ID)
	}
	return ids
}

// runTool runs stratatool with args and returns its exit status, stdout and stderr.
func runTool(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// sampleSource is a bucket of two tenants with blocks (one of them marked for deletion), rule groups and
// Alertmanager configurations and state.
func sampleSource(t *testing.T) (*testBucketDir, map[string][]ulid.ULID) {
	src := newTestBucketDir(t)
	blocks := map[string][]ulid.ULID{}
	for _, tenantID := range []string{"team-a", "team-b"} {
		for i := range 2 {
			blocks[tenantID] = append(blocks[tenantID], src.addBlock(tenantID, int64(i)*2*time.Hour.Milliseconds()))
		}
		src.put("rules/"+tenantID+"/bnM/Z3JvdXA", "name: group\nrules: []\n")
		src.put("alertmanager/configs/"+tenantID+".yaml", "alertmanager_config: |\n  route: {receiver: x}\n")
		src.put("alertmanager/state/"+tenantID+"/fullstate", "state of "+tenantID)
	}
	require.NoError(t, blockstore.MarkForDeletion(context.Background(), src.tenant("team-a"), blocks["team-a"][0], "retention", time.Unix(1700000000, 0)))
	return src, blocks
}

func TestBucketBackup_CopiesBlocksMarksConfigurationAndIndex(t *testing.T) {
	src, blocks := sampleSource(t)
	// The tenant's other objects: a series deletion request and a tenant deletion mark.
	src.put("team-b/tombstones/01JBBBBBBBBBBBBBBBBBBBBBBB.json", `{"id":"01JBBBBBBBBBBBBBBBBBBBBBBB"}`)
	src.put("team-b/markers/tenant-deletion-mark.json", `{"deletion_time":1700000000}`)
	src.put("team-b/bucket-index.json.gz", "stale, and rebuilt rather than copied")
	dest := filepath.Join(t.TempDir(), "backup")
	// A tenant only the destination has is left alone.
	require.NoError(t, os.MkdirAll(filepath.Join(dest, "old-team", "01JCCCCCCCCCCCCCCCCCCCCCCC"), 0o755))

	code, out, errOut := runTool("bucket", "backup", "--blocks-storage.filesystem.dir="+src.dir, "--to", dest)
	require.Equal(t, 0, code, "%s%s", out, errOut)
	require.Regexp(t, `^backup: 2 tenants, 4 blocks copied, 0 already there, 0 deleted from the source during the copy, 0 failed, 0 removed; \d+ other objects; [0-9.]+ KiB in [0-9.]+s$`, lastLine(out))
	for _, id := range blocks["team-a"] {
		require.Contains(t, out, "tenant team-a: block "+id.String()+": copied (")
	}
	require.Contains(t, out, "tenant old-team: in the destination but not in the source: left as it is")
	require.DirExists(t, filepath.Join(dest, "old-team", "01JCCCCCCCCCCCCCCCCCCCCCCC"))

	dst := &testBucketDir{t: t, dir: dest, bkt: must(filesystem.NewBucket(dest))}
	for tenantID, ids := range blocks {
		idx := dst.index(tenantID)
		require.ElementsMatch(t, ids, indexIDs(idx), tenantID)
		for _, id := range ids {
			for _, f := range []string{"meta.json", "index", "chunks/000001"} {
				want, _ := src.get(tenantID + "/" + id.String() + "/" + f)
				got, ok := dst.get(tenantID + "/" + id.String() + "/" + f)
				require.True(t, ok, "%s/%s/%s", tenantID, id, f)
				require.Equal(t, want, got)
			}
		}
		for _, name := range []string{"rules/" + tenantID + "/bnM/Z3JvdXA", "alertmanager/configs/" + tenantID + ".yaml", "alertmanager/state/" + tenantID + "/fullstate"} {
			want, _ := src.get(name)
			got, ok := dst.get(name)
			require.True(t, ok, name)
			require.Equal(t, want, got, name)
		}
	}
	for _, name := range []string{"team-b/tombstones/01JBBBBBBBBBBBBBBBBBBBBBBB.json", "team-b/markers/tenant-deletion-mark.json"} {
		want, _ := src.get(name)
		got, ok := dst.get(name)
		require.True(t, ok, name)
		require.Equal(t, want, got, name)
	}
	// The marked block is restorable, and marked as it was: same deletion time, both copies of the mark.
	marked := blocks["team-a"][0]
	idx := dst.index("team-a")
	require.Len(t, idx.DeletionMarks, 1)
	require.Equal(t, marked, idx.DeletionMarks[0].ID)
	require.EqualValues(t, 1700000000, idx.DeletionMarks[0].DeletionTime)
	_, ok := dst.get("team-a/" + marked.String() + "/deletion-mark.json")
	require.True(t, ok)
	require.Empty(t, dst.index("team-b").DeletionMarks)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestBucketBackup_IsIncrementalAndMirrorsTheSource(t *testing.T) {
	src, blocks := sampleSource(t)
	dest := t.TempDir()
	backup := func() string {
		t.Helper()
		code, out, errOut := runTool("bucket", "backup", "--blocks-storage.filesystem.dir="+src.dir, "--to", dest)
		require.Equal(t, 0, code, "%s%s", out, errOut)
		return out
	}
	backup()
	out := backup()
	require.Contains(t, lastLine(out), "0 blocks copied, 4 already there, 0 deleted from the source during the copy, 0 failed, 0 removed")
	require.NotContains(t, out, ": copied (")

	// The source changes: a new block, a deleted one, an undeleted one, a rule group gone.
	ctx := context.Background()
	added := src.addBlock("team-b", 10*time.Hour.Milliseconds())
	require.NoError(t, blockstore.DeleteBlock(ctx, src.tenant("team-b"), blocks["team-b"][0]))
	unmarked := blocks["team-a"][0]
	require.NoError(t, src.bkt.Delete(ctx, "team-a/"+blockstore.DeletionMarkPath(unmarked)))
	require.NoError(t, src.bkt.Delete(ctx, "team-a/"+blockstore.BlockDeletionMarkPath(unmarked)))
	require.NoError(t, src.bkt.Delete(ctx, "rules/team-a/bnM/Z3JvdXA"))

	out = backup()
	require.Contains(t, lastLine(out), "1 blocks copied, 3 already there, 0 deleted from the source during the copy, 0 failed, 1 removed")
	require.Contains(t, out, "block "+added.String()+": copied")
	require.Contains(t, out, "block "+blocks["team-b"][0].String()+": removed, the source no longer has it")
	require.Contains(t, out, "block "+unmarked.String()+": deletion mark removed")

	dst := &testBucketDir{t: t, dir: dest, bkt: must(filesystem.NewBucket(dest))}
	require.ElementsMatch(t, []ulid.ULID{blocks["team-b"][1], added}, indexIDs(dst.index("team-b")))
	require.ElementsMatch(t, []ulid.ULID{blocks["team-b"][1], added}, dst.blockIDs("team-b"), "the deleted block's files are gone too")
	require.Empty(t, dst.index("team-a").DeletionMarks)
	_, ok := dst.get("team-a/" + blockstore.BlockDeletionMarkPath(unmarked))
	require.False(t, ok)
	_, ok = dst.get("rules/team-a/bnM/Z3JvdXA")
	require.False(t, ok, "a rule group deleted in the source is deleted from the backup")
	_, ok = dst.get("rules/team-b/bnM/Z3JvdXA")
	require.True(t, ok)
}

func TestBucketBackup_ResumesAPartialBlock(t *testing.T) {
	src := newTestBucketDir(t)
	id := src.addBlock("team-a", 0)
	dst := newTestBucketDir(t)
	// An interrupted run left the index but not the chunks nor meta.json.
	index, _ := src.get("team-a/" + id.String() + "/index")
	dst.put("team-a/"+id.String()+"/index", index)
	dst.put("team-a/"+id.String()+"/chunks/000001", "cut short")

	code, out, errOut := runTool("bucket", "backup", "--blocks-storage.filesystem.dir="+src.dir, "--to", dst.dir)
	require.Equal(t, 0, code, "%s%s", out, errOut)
	require.Contains(t, lastLine(out), "1 blocks copied")
	want, _ := src.get("team-a/" + id.String() + "/chunks/000001")
	got, _ := dst.get("team-a/" + id.String() + "/chunks/000001")
	require.Equal(t, want, got, "the cut-short file is copied again")
	require.Equal(t, []ulid.ULID{id}, indexIDs(dst.index("team-a")))
}

// hookBucket calls onGet before the first read of an object whose name contains match.
type hookBucket struct {
	objstore.Bucket
	match string
	once  sync.Once
	onGet func()
}

func (b *hookBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if strings.Contains(name, b.match) {
		b.once.Do(b.onGet)
	}
	return b.Bucket.Get(ctx, name)
}

// TestBucketCopy_BlockCompactedAndDeletedDuringTheCopy: while the backup reads a block, the compactor
// replaces it and deletes it (a deletion delay of 0). The block is reported and skipped, the block that
// replaced it is copied, and the backup's index is one queriers read every sample from.
func TestBucketCopy_BlockCompactedAndDeletedDuringTheCopy(t *testing.T) {
	src := newTestBucketDir(t)
	ctx := context.Background()
	first := src.addBlock("team-a", 0)
	second := src.addBlock("team-a", 2*time.Hour.Milliseconds())
	var compacted ulid.ULID
	hooked := &hookBucket{Bucket: src.bkt, match: first.String() + "/chunks/", onGet: func() {
		tb := src.tenant("team-a")
		compacted = ulid.Make()
		writeBlock(t, tb, "team-a", compacted, 0, []ulid.ULID{first, second})
		for _, id := range []ulid.ULID{first, second} {
			require.NoError(t, blockstore.MarkForDeletion(ctx, tb, id, "compacted", time.Now()))
			require.NoError(t, blockstore.DeleteBlock(ctx, tb, id))
		}
	}}
	dst := newTestBucketDir(t)
	var out bytes.Buffer
	c := newBucketCopier(hooked, dst.bkt, copyOptions{rulesPrefix: "rules", alertmanagerPrefix: "alertmanager", mirror: true, concurrency: 1}, &out)
	require.NoError(t, c.run(ctx))

	require.Contains(t, out.String(), "block "+first.String()+": skipped: deleted from the source during the copy")
	require.Contains(t, out.String(), "block "+compacted.String()+": copied")
	require.Zero(t, c.res.failed.Load())
	require.EqualValues(t, 1, c.res.vanished.Load())
	idx := dst.index("team-a")
	queried := blockstore.BlocksToQuery(idx, nil)
	require.Len(t, queried, 1, "%s", out.String())
	require.Equal(t, compacted, queried[0].ID)
	require.Equal(t, []ulid.ULID{compacted}, dst.blockIDs("team-a"), "no partial copy of the deleted block, and the other replaced one is gone too")
}

// TestBucketCopy_BlockMarkedDuringTheCopy: a block marked while the copy runs is copied with its mark.
func TestBucketCopy_BlockMarkedDuringTheCopy(t *testing.T) {
	src := newTestBucketDir(t)
	ctx := context.Background()
	first := src.addBlock("team-a", 0)
	second := src.addBlock("team-a", 2*time.Hour.Milliseconds())
	hooked := &hookBucket{Bucket: src.bkt, match: second.String() + "/index", onGet: func() {
		require.NoError(t, blockstore.MarkForDeletion(ctx, src.tenant("team-a"), first, "retention", time.Unix(1700000000, 0)))
	}}
	dst := newTestBucketDir(t)
	var out bytes.Buffer
	c := newBucketCopier(hooked, dst.bkt, copyOptions{rulesPrefix: "rules", alertmanagerPrefix: "alertmanager", mirror: true, concurrency: 2}, &out)
	require.NoError(t, c.run(ctx))
	require.EqualValues(t, 2, c.res.copied.Load())
	idx := dst.index("team-a")
	require.ElementsMatch(t, []ulid.ULID{first, second}, indexIDs(idx))
	require.Len(t, idx.DeletionMarks, 1)
	require.Equal(t, first, idx.DeletionMarks[0].ID)
	require.EqualValues(t, 1700000000, idx.DeletionMarks[0].DeletionTime)
}

func TestBucketBackup_TenantFilter(t *testing.T) {
	src, blocks := sampleSource(t)
	dest := t.TempDir()
	code, out, errOut := runTool("bucket", "backup", "--blocks-storage.filesystem.dir="+src.dir, "--to", dest, "--tenant", "team-b")
	require.Equal(t, 0, code, "%s%s", out, errOut)
	require.Contains(t, lastLine(out), "backup: 1 tenants, 2 blocks copied")
	dst := &testBucketDir{t: t, dir: dest, bkt: must(filesystem.NewBucket(dest))}
	require.ElementsMatch(t, blocks["team-b"], dst.blockIDs("team-b"))
	require.Empty(t, dst.blockIDs("team-a"))
	for _, name := range []string{"rules/team-a", "alertmanager/configs/team-a.yaml", "alertmanager/state/team-a", "team-a"} {
		_, err := os.Stat(filepath.Join(dest, name))
		require.True(t, os.IsNotExist(err), "%s was copied", name)
	}
	_, ok := dst.get("alertmanager/configs/team-b.yaml")
	require.True(t, ok)

	code, _, errOut = runTool("bucket", "backup", "--blocks-storage.filesystem.dir="+src.dir, "--to", dest, "--tenant", "nobody")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "the source holds nothing of tenant(s) nobody")
	code, _, errOut = runTool("bucket", "backup", "--blocks-storage.filesystem.dir="+src.dir, "--to", dest, "--tenant", "..")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--tenant")
}

// A tenant with only an Alertmanager configuration (no blocks, no rules) is backed up too.
func TestBucketBackup_TenantWithOnlyConfiguration(t *testing.T) {
	src := newTestBucketDir(t)
	src.put("alertmanager/configs/quiet.yaml", "cfg")
	dest := t.TempDir()
	code, out, errOut := runTool("bucket", "backup", "--blocks-storage.filesystem.dir="+src.dir, "--to", dest)
	require.Equal(t, 0, code, "%s%s", out, errOut)
	require.Contains(t, lastLine(out), "backup: 1 tenants, 0 blocks copied")
	got, err := os.ReadFile(filepath.Join(dest, "alertmanager/configs/quiet.yaml"))
	require.NoError(t, err)
	require.Equal(t, "cfg", string(got))
}

func TestBucketRestore_RefusesToOverwriteADifferentBlock(t *testing.T) {
	src, blocks := sampleSource(t)
	backup := t.TempDir()
	code, out, errOut := runTool("bucket", "backup", "--blocks-storage.filesystem.dir="+src.dir, "--to", backup)
	require.Equal(t, 0, code, "%s%s", out, errOut)

	// Strata's bucket has one of the blocks' IDs with other content, and a block of its own.
	live := newTestBucketDir(t)
	clash := blocks["team-a"][1]
	writeBlock(t, live.tenant("team-a"), "team-a", clash, 99*time.Hour.Milliseconds(), []ulid.ULID{clash})
	clashMeta, _ := live.get("team-a/" + clash.String() + "/meta.json")
	own := live.addBlock("team-a", 50*time.Hour.Milliseconds())

	code, out, errOut = runTool("bucket", "restore", "--from", backup, "--blocks-storage.filesystem.dir="+live.dir)
	require.Equal(t, 1, code, "%s%s", out, errOut)
	require.Contains(t, out, "block "+clash.String()+": refused: the destination holds a different block with this ID")
	require.Contains(t, lastLine(out), "restore: 2 tenants, 3 blocks copied, 0 already there, 0 deleted from the source during the copy, 1 failed, 0 removed")
	got, _ := live.get("team-a/" + clash.String() + "/meta.json")
	require.Equal(t, clashMeta, got, "the clashing block is left as it was")
	require.ElementsMatch(t, []ulid.ULID{blocks["team-a"][0], clash, own}, indexIDs(live.index("team-a")), "nothing of Strata's bucket is removed")
	// A restored block is marked so (queriers read it however recent it is), and is otherwise the same.
	restoredID := blocks["team-a"][0].String()
	var backedUp, restored blockstore.Meta
	b, _ := os.ReadFile(filepath.Join(backup, "team-a", restoredID, "meta.json"))
	require.NoError(t, json.Unmarshal(b, &backedUp))
	text, _ := live.get("team-a/" + restoredID + "/meta.json")
	require.NoError(t, json.Unmarshal([]byte(text), &restored))
	require.False(t, backedUp.Strata.Restored)
	require.True(t, restored.Strata.Restored)
	restored.Strata.Restored = false
	require.Equal(t, backedUp, restored)
	for _, e := range live.index("team-a").Blocks {
		require.Equal(t, e.ID == blocks["team-a"][0], e.UploadedData, "restored blocks, and only they, are read however recent: %s", e.ID)
	}
	require.ElementsMatch(t, blocks["team-b"], indexIDs(live.index("team-b")))
	_, ok := live.get("alertmanager/state/team-b/fullstate")
	require.True(t, ok)

	// Run again: the identical blocks are skipped, the clash is still refused.
	code, out, _ = runTool("bucket", "restore", "--from", backup, "--blocks-storage.filesystem.dir="+live.dir, "--tenant", "team-a")
	require.Equal(t, 1, code)
	require.Contains(t, lastLine(out), "restore: 1 tenants, 0 blocks copied, 1 already there, 0 deleted from the source during the copy, 1 failed")
}

func TestBucketCommands_RejectBadArguments(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bucket", "backup", "--blocks-storage.filesystem.dir=" + dir}, "no bucket: give --to DIR or --to.blocks-storage.* flags"},
		{[]string{"bucket", "backup", "--blocks-storage.filesystem.dir=" + dir, "--to", dir}, "the source and the destination are the same bucket"},
		{[]string{"bucket", "backup", "--blocks-storage.filesystem.dir=" + dir, "--to", filepath.Join(dir, "backup")}, "inside one another"},
		{[]string{"bucket", "restore", "--from", dir, "--blocks-storage.filesystem.dir=" + filepath.Dir(dir)}, "inside one another"},
		{[]string{"bucket", "backup", "--blocks-storage.filesystem.dir=" + dir, "--to", t.TempDir(), "--to.blocks-storage.backend=s3"}, "--to and --to.blocks-storage.* both name a bucket"},
		{[]string{"bucket", "backup", "--to", t.TempDir()}, "-blocks-storage.filesystem.dir"},
		{[]string{"bucket", "backup", "--blocks-storage.backend=s3", "--to", t.TempDir()}, "-blocks-storage.s3.endpoint"},
		{[]string{"bucket", "backup", "--blocks-storage.filesystem.dir=" + dir, "--to.blocks-storage.backend=s3", "--to.blocks-storage.s3.endpoint=http://x"}, "must be host[:port]"},
		{[]string{"bucket", "backup", "--blocks-storage.filesystem.dir=" + dir, "--to", t.TempDir(), "--ruler-storage.prefix=team"}, "could be a tenant's directory"},
		{[]string{"bucket", "backup", "--blocks-storage.filesystem.dir=" + dir, "--to", t.TempDir(), "--concurrency=0"}, "--concurrency must be at least 1"},
		{[]string{"bucket", "restore", "--from", filepath.Join(dir, "missing"), "--blocks-storage.filesystem.dir=" + t.TempDir()}, "bucket directory " + filepath.Join(dir, "missing") + " does not exist"},
		{[]string{"bucket", "restore", "--blocks-storage.filesystem.dir=" + dir}, "no bucket: give --from DIR or --from.blocks-storage.* flags"},
		{[]string{"bucket", "backup", "--blocks-storage.filesystem.dir=" + filepath.Join(dir, "typo"), "--to", t.TempDir()}, "typo does not exist"},
	} {
		code, out, errOut := runTool(tc.args...)
		require.Equal(t, 1, code, "%v: %s%s", tc.args, out, errOut)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
	}
}

func TestBucketBackup_ToAnotherBucketByFlags(t *testing.T) {
	src, blocks := sampleSource(t)
	dest := t.TempDir()
	code, out, errOut := runTool("bucket", "backup", "--blocks-storage.filesystem.dir="+src.dir,
		"--to.blocks-storage.backend=filesystem", "--to.blocks-storage.filesystem.dir="+dest, "--tenant=team-a")
	require.Equal(t, 0, code, "%s%s", out, errOut)
	dst := &testBucketDir{t: t, dir: dest, bkt: must(filesystem.NewBucket(dest))}
	require.ElementsMatch(t, blocks["team-a"], indexIDs(dst.index("team-a")))
}

// iterHookBucket calls onIter before each listing of dir.
type iterHookBucket struct {
	objstore.Bucket
	dir    string
	onIter func()
}

func (b *iterHookBucket) Iter(ctx context.Context, dir string, f func(string) error, options ...objstore.IterOption) error {
	if dir == b.dir {
		b.onIter()
	}
	return b.Bucket.Iter(ctx, dir, f, options...)
}

// TestBucketCopy_SourceThatNeverSettles: a compactor replaces the newest block (and marks it) before
// every listing of the marks, so the copy stops after its passes; what it copied still never has a
// marked block without the block that replaced it.
func TestBucketCopy_SourceThatNeverSettles(t *testing.T) {
	src := newTestBucketDir(t)
	ctx := context.Background()
	newest := src.addBlock("team-a", 0)
	sources := []ulid.ULID{newest}
	hooked := &iterHookBucket{Bucket: src.bkt, dir: "team-a/markers/", onIter: func() {
		// The next block holds the data of the newest and a new level-1 block's.
		next := ulid.Make()
		sources = append(slices.Clone(sources), next)
		writeBlock(t, src.tenant("team-a"), "team-a", next, 0, sources)
		require.NoError(t, blockstore.MarkForDeletion(ctx, src.tenant("team-a"), newest, "compacted", time.Now()))
		newest = next
	}}
	dst := newTestBucketDir(t)
	var out bytes.Buffer
	c := newBucketCopier(hooked, dst.bkt, copyOptions{rulesPrefix: "rules", alertmanagerPrefix: "alertmanager", mirror: true, concurrency: 1}, &out)
	require.NoError(t, c.run(ctx))
	require.Contains(t, out.String(), "the source still changes after 10 passes")

	idx := dst.index("team-a")
	require.NotEmpty(t, idx.DeletionMarks)
	// Queriers read one block, the newest copied, and it holds the data of every block copied.
	live := blockstore.BlocksToQuery(idx, nil)
	require.Len(t, live, 1, "%s", out.String())
	for _, b := range idx.Blocks {
		require.Subset(t, live[0].Sources, b.Sources)
	}
	for _, m := range idx.DeletionMarks {
		require.NotEqual(t, live[0].ID, m.ID, "the block holding the data is not marked")
	}
}
