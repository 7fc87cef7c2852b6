package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// manualDeletionReason is the reason of the deletion marks `blocks mark-deletion` writes.
const manualDeletionReason = "manual"

func registerBlocksCommands(app *kingpin.Application, commands map[string]command) {
	cmd := app.Command("blocks", "List the blocks of Strata's bucket (--blocks-storage.* flags, as Strata's), mark them for deletion and undo marks.")
	registerBlocksList(cmd, commands)
	registerBlocksMark(cmd, commands)
	registerBlocksUndelete(cmd, commands)
}

func registerBlocksList(parent *kingpin.CmdClause, commands map[string]command) {
	cmd := parent.Command("list", "List the complete blocks of every tenant, or of the --tenant ones, oldest first.")
	bkt := registerBucketFlags(cmd, "", "Bucket")
	tenants := cmd.Flag("tenant", "List only this tenant's blocks; may be repeated.").Strings()
	showDeleted := cmd.Flag("show-deleted", "Also list the blocks marked for deletion, with their mark.").Bool()
	commands[cmd.FullCommand()] = func(stdout, stderr io.Writer) int {
		ctx := context.Background()
		b, code := openFlagBucket(ctx, stderr, bkt, "stratatool-blocks")
		if b == nil {
			return code
		}
		defer b.Close()
		ids := *tenants
		for _, t := range ids {
			if err := tenant.ValidateID(t); err != nil {
				return fail(stderr, "--tenant: %v", err)
			}
		}
		if len(ids) == 0 {
			var err error
			if ids, err = bucket.ListTenants(ctx, b); err != nil {
				return fail(stderr, "%v", err)
			}
		}
		if err := listBlocks(ctx, stdout, b, ids, *showDeleted); err != nil {
			return fail(stderr, "%v", err)
		}
		return 0
	}
}

// blockRow is one line of `blocks list`.
type blockRow struct {
	meta *blockstore.Meta
	size int64
	mark *blockstore.DeletionMark
}

func listBlocks(ctx context.Context, out io.Writer, bkt objstore.Bucket, tenants []string, showDeleted bool) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "TENANT\tBLOCK\tMIN TIME\tMAX TIME\tSERIES\tSAMPLES\tEXEMPLARS\tSIZE\tLEVEL\tSOURCE\tDELETION MARK")
	partial, hidden := 0, 0
	for _, t := range tenants {
		tb := bucket.NewTenantBucket(bkt, t)
		dirs, err := listBlockDirs(ctx, tb)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", t, err)
		}
		var rows []blockRow
		for id := range dirs {
			row, err := readBlockRow(ctx, tb, id)
			if errors.Is(err, blockstore.ErrMetaNotFound) {
				partial++
				continue
			}
			if err != nil {
				return fmt.Errorf("tenant %s: %w", t, err)
			}
			if row.mark != nil && !showDeleted {
				hidden++
				continue
			}
			rows = append(rows, row)
		}
		slices.SortFunc(rows, func(a, b blockRow) int {
			if c := cmp.Compare(a.meta.MinTime, b.meta.MinTime); c != 0 {
				return c
			}
			return a.meta.ULID.Compare(b.meta.ULID)
		})
		for _, r := range rows {
			mark := "-"
			if r.mark != nil {
				mark = time.Unix(r.mark.DeletionTime, 0).UTC().Format(time.RFC3339) + " " + r.mark.Reason
			}
			source := string(r.meta.Strata.Source)
			if source == "" {
				source = "-"
			}
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t%s\n", t, r.meta.ULID,
				formatMillis(r.meta.MinTime), formatMillis(r.meta.MaxTime), r.meta.Stats.NumSeries, r.meta.Stats.NumSamples,
				r.meta.Strata.Exemplars, formatBytes(r.size), r.meta.Compaction.Level, source, mark)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if hidden > 0 {
		_, _ = fmt.Fprintf(out, "%d blocks marked for deletion not shown (--show-deleted shows them)\n", hidden)
	}
	if partial > 0 {
		_, _ = fmt.Fprintf(out, "%d partial blocks (no meta.json: being uploaded or deleted) not shown\n", partial)
	}
	return nil
}

func readBlockRow(ctx context.Context, bkt objstore.Bucket, id ulid.ULID) (blockRow, error) {
	m, err := blockstore.DownloadMeta(ctx, bkt, id)
	if err != nil {
		return blockRow{}, err
	}
	row := blockRow{meta: m}
	err = bkt.Iter(ctx, id.String()+objstore.DirDelim, func(name string) error {
		attrs, err := bkt.Attributes(ctx, name)
		if err != nil && !bkt.IsObjNotFoundErr(err) {
			return fmt.Errorf("size of %s: %w", name, err)
		}
		row.size += attrs.Size
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return blockRow{}, fmt.Errorf("block %s: %w", id, err)
	}
	row.mark, err = blockstore.ReadDeletionMark(ctx, bkt, id)
	if errors.Is(err, blockstore.ErrDeletionMarkNotFound) {
		return row, nil
	}
	return row, err
}

func formatMillis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func registerBlocksMark(parent *kingpin.CmdClause, commands map[string]command) {
	cmd := parent.Command("mark-deletion", "Mark blocks of a tenant for deletion: queriers stop reading them once the compactor "+
		"has updated the bucket index, and the compactor deletes them after -compactor.deletion-delay. "+
		"`blocks undelete` takes the mark back until then.")
	bkt := registerBucketFlags(cmd, "", "Bucket")
	tenantID := cmd.Flag("tenant", "The blocks' tenant.").Required().String()
	ids := cmd.Arg("block", "Block IDs (ULIDs).").Required().Strings()
	commands[cmd.FullCommand()] = func(stdout, stderr io.Writer) int {
		return forEachBlock(stdout, stderr, bkt, *tenantID, *ids, func(ctx context.Context, tb objstore.Bucket, id ulid.ULID) (string, error) {
			if _, err := blockstore.DownloadMeta(ctx, tb, id); err != nil {
				if errors.Is(err, blockstore.ErrMetaNotFound) {
					return "", errors.New("no such block (or only a partial one)")
				}
				return "", err
			}
			if m, err := blockstore.ReadDeletionMark(ctx, tb, id); err == nil {
				return fmt.Sprintf("already marked for deletion on %s (%s)", time.Unix(m.DeletionTime, 0).UTC().Format(time.RFC3339), m.Reason), nil
			}
			if err := blockstore.MarkForDeletion(ctx, tb, id, manualDeletionReason, time.Now()); err != nil {
				return "", err
			}
			return "marked for deletion", nil
		})
	}
}

func registerBlocksUndelete(parent *kingpin.CmdClause, commands map[string]command) {
	cmd := parent.Command("undelete", "Remove the deletion mark of blocks of a tenant, before the compactor deletes them "+
		"(-compactor.deletion-delay after they were marked). A block already deleted is gone: restore it from a backup.")
	bkt := registerBucketFlags(cmd, "", "Bucket")
	tenantID := cmd.Flag("tenant", "The blocks' tenant.").Required().String()
	ids := cmd.Arg("block", "Block IDs (ULIDs).").Required().Strings()
	commands[cmd.FullCommand()] = func(stdout, stderr io.Writer) int {
		return forEachBlock(stdout, stderr, bkt, *tenantID, *ids, undeleteBlock)
	}
}

func undeleteBlock(ctx context.Context, tb objstore.Bucket, id ulid.ULID) (string, error) {
	errGone := errors.New("the block is gone: the compactor has deleted it (or is deleting it) and it cannot be undeleted; restore it from a backup (`stratatool bucket restore --tenant ...`)")
	if ok, err := tb.Exists(ctx, blockstore.MetaPath(id)); err != nil {
		return "", err
	} else if !ok {
		return "", errGone
	}
	mark, err := blockstore.ReadDeletionMark(ctx, tb, id)
	if errors.Is(err, blockstore.ErrDeletionMarkNotFound) {
		if _, err := tb.Attributes(ctx, blockstore.BlockDeletionMarkPath(id)); err != nil {
			return "not marked for deletion", nil
		}
	} else if err != nil && !errors.Is(err, blockstore.ErrDeletionMarkCorrupted) {
		return "", err
	}
	// The markers copy first: it is the one the bucket index lists.
	for _, p := range []string{blockstore.DeletionMarkPath(id), blockstore.BlockDeletionMarkPath(id)} {
		if err := tb.Delete(ctx, p); err != nil && !tb.IsObjNotFoundErr(err) {
			return "", fmt.Errorf("remove %s: %w", p, err)
		}
	}
	// The compactor deletes meta.json first: if it is still there, the deletion had not begun.
	if ok, err := tb.Exists(ctx, blockstore.MetaPath(id)); err != nil {
		return "", err
	} else if !ok {
		return "", errGone
	}
	msg := "deletion mark removed; queriers read the block again once the compactor has updated the bucket index"
	if mark != nil && mark.Reason != manualDeletionReason && mark.Reason != "" {
		msg += fmt.Sprintf(" (it was marked for %q: the compactor marks it again unless what made it do so changed)", mark.Reason)
	}
	return msg, nil
}

// forEachBlock runs do on each block of ids in the tenant's part of the bucket the flags name, printing
// one line per block; it returns 1 when a block failed.
func forEachBlock(stdout, stderr io.Writer, flags *bucketFlags, tenantID string, ids []string, do func(context.Context, objstore.Bucket, ulid.ULID) (string, error)) int {
	if err := tenant.ValidateID(tenantID); err != nil {
		return fail(stderr, "--tenant: %v", err)
	}
	var parsed []ulid.ULID
	for _, s := range ids {
		id, err := ulid.ParseStrict(s)
		if err != nil {
			return fail(stderr, "%q is not a block ID (a ULID): %v", s, err)
		}
		parsed = append(parsed, id)
	}
	ctx := context.Background()
	b, code := openFlagBucket(ctx, stderr, flags, "stratatool-blocks")
	if b == nil {
		return code
	}
	defer b.Close()
	tb := bucket.NewTenantBucket(b, tenantID)
	status := 0
	for _, id := range parsed {
		msg, err := do(ctx, tb, id)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "stratatool: tenant %s: block %s: %v\n", tenantID, id, err)
			status = 1
			continue
		}
		_, _ = fmt.Fprintf(stdout, "tenant %s: block %s: %s\n", tenantID, id, msg)
	}
	return status
}

// openFlagBucket opens the bucket of flags; on failure it reports to stderr and returns nil and the exit status.
func openFlagBucket(ctx context.Context, stderr io.Writer, flags *bucketFlags, component string) (objstore.Bucket, int) {
	cfg, err := flags.config("", "")
	if err == nil {
		err = requireExistingDir(cfg)
	}
	if err != nil {
		return nil, fail(stderr, "%v", err)
	}
	b, err := openBucket(ctx, cfg, component)
	if err != nil {
		return nil, fail(stderr, "%v", err)
	}
	return b, 0
}
