package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

func TestBlocksList_ShowsMetaStatsSizeAndMarks(t *testing.T) {
	src, blocks := sampleSource(t)
	src.put("team-a/01JAAAAAAAAAAAAAAAAAAAAAAA/index", "partial upload")
	marked, live := blocks["team-a"][0], blocks["team-a"][1]

	code, out, errOut := runTool("blocks", "list", "--blocks-storage.filesystem.dir="+src.dir, "--tenant=team-a")
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Regexp(t, `^TENANT\s+BLOCK\s+MIN TIME\s+MAX TIME\s+SERIES\s+SAMPLES\s+EXEMPLARS\s+SIZE\s+LEVEL\s+SOURCE\s+DELETION MARK$`, lines[0])
	require.Regexp(t, `^team-a\s+`+live.String()+`\s+1970-01-01T02:00:00Z\s+1970-01-01T04:00:00Z\s+3\s+360\s+0\s+1\.\d KiB\s+1\s+ingester\s+-$`, lines[1])
	require.NotContains(t, out, marked.String())
	require.Equal(t, "1 blocks marked for deletion not shown (--show-deleted shows them)", lines[2])
	require.Equal(t, "1 partial blocks (no meta.json: being uploaded or deleted) not shown", lines[3])

	code, out, errOut = runTool("blocks", "list", "--blocks-storage.filesystem.dir="+src.dir, "--show-deleted")
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, regexp.MustCompile(`(?m)^team-a\s+`+marked.String()+`\s+1970-01-01T00:00:00Z .* 2023-11-14T22:13:20Z retention$`), out)
	require.Equal(t, 5, strings.Count(out, "\n")-1, "4 blocks of 2 tenants and the partial block's line:\n%s", out)
	require.Contains(t, out, blocks["team-b"][0].String())

	code, _, errOut = runTool("blocks", "list", "--blocks-storage.filesystem.dir="+src.dir, "--tenant=a/b")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--tenant")
}

func TestBlocksMarkDeletionAndUndelete(t *testing.T) {
	src, blocks := sampleSource(t)
	id := blocks["team-b"][0]
	bucketFlag := "--blocks-storage.filesystem.dir=" + src.dir
	ctx := context.Background()

	code, out, errOut := runTool("blocks", "mark-deletion", bucketFlag, "--tenant=team-b", id.String())
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "tenant team-b: block "+id.String()+": marked for deletion\n", out)
	mark, err := blockstore.ReadDeletionMark(ctx, src.tenant("team-b"), id)
	require.NoError(t, err)
	require.Equal(t, manualDeletionReason, mark.Reason)
	require.InDelta(t, time.Now().Unix(), mark.DeletionTime, 60)

	// Marking again keeps the first mark.
	code, out, _ = runTool("blocks", "mark-deletion", bucketFlag, "--tenant=team-b", id.String())
	require.Equal(t, 0, code)
	require.Contains(t, out, "already marked for deletion on ")

	code, out, errOut = runTool("blocks", "undelete", bucketFlag, "--tenant=team-b", id.String())
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "tenant team-b: block "+id.String()+": deletion mark removed")
	_, err = blockstore.ReadDeletionMark(ctx, src.tenant("team-b"), id)
	require.ErrorIs(t, err, blockstore.ErrDeletionMarkNotFound)
	_, ok := src.get("team-b/" + blockstore.BlockDeletionMarkPath(id))
	require.False(t, ok)

	code, out, _ = runTool("blocks", "undelete", bucketFlag, "--tenant=team-b", id.String())
	require.Equal(t, 0, code)
	require.Contains(t, out, "not marked for deletion")

	// A block the compactor marked for retention: undeleted, with a warning that it comes back.
	code, out, _ = runTool("blocks", "undelete", bucketFlag, "--tenant=team-a", blocks["team-a"][0].String())
	require.Equal(t, 0, code)
	require.Contains(t, out, `it was marked for "retention": the compactor marks it again unless what made it do so changed`)

	// Once the compactor has deleted the block, undelete refuses and says what to do instead.
	gone := blocks["team-a"][1]
	require.NoError(t, blockstore.MarkForDeletion(ctx, src.tenant("team-a"), gone, "compacted", time.Now()))
	require.NoError(t, blockstore.DeleteBlock(ctx, src.tenant("team-a"), gone))
	code, _, errOut = runTool("blocks", "undelete", bucketFlag, "--tenant=team-a", gone.String())
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "block "+gone.String()+": the block is gone: the compactor has deleted it")
	require.Contains(t, errOut, "restore it from a backup")
	// A mark left by a deletion interrupted after meta.json went counts as gone too.
	half := blocks["team-b"][1]
	require.NoError(t, blockstore.MarkForDeletion(ctx, src.tenant("team-b"), half, "compacted", time.Now()))
	require.NoError(t, src.bkt.Delete(ctx, "team-b/"+blockstore.MetaPath(half)))
	code, _, errOut = runTool("blocks", "undelete", bucketFlag, "--tenant=team-b", half.String())
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "the block is gone")

	code, _, errOut = runTool("blocks", "mark-deletion", bucketFlag, "--tenant=team-a", gone.String())
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no such block")
}

func TestBlocksCommands_RejectBadArguments(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"blocks", "mark-deletion", "--blocks-storage.filesystem.dir=" + dir, "--tenant=a", "not-a-ulid"}, `"not-a-ulid" is not a block ID (a ULID)`},
		{[]string{"blocks", "undelete", "--blocks-storage.filesystem.dir=" + dir, "--tenant=..", "01JAAAAAAAAAAAAAAAAAAAAAAA"}, "--tenant"},
		{[]string{"blocks", "undelete", "--blocks-storage.filesystem.dir=" + dir, "01JAAAAAAAAAAAAAAAAAAAAAAA"}, "required flag(s) '--tenant' not provided"},
		{[]string{"blocks", "list"}, "-blocks-storage.filesystem.dir"},
		{[]string{"blocks", "list", "--blocks-storage.filesystem.dir=" + dir + "/typo"}, "typo does not exist"},
	} {
		code, out, errOut := runTool(tc.args...)
		require.Equal(t, 1, code, "%v: %s%s", tc.args, out, errOut)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
	}
}
