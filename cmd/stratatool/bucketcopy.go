package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/compactor"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// The Alertmanager's layout under its prefix (pkg/alertmanager/alertstore): configs/<tenant>.yaml and
// state/<tenant>/fullstate.
const (
	alertmanagerConfigsDir   = "configs/"
	alertmanagerConfigSuffix = ".yaml"
	alertmanagerStateDir     = "state/"
)

// maxCopyPasses bounds how often a tenant's blocks are listed again to catch the blocks the compactor
// wrote while the copy ran.
const maxCopyPasses = 10

// copyOptions says what a bucketCopier copies and how.
type copyOptions struct {
	// tenants limits the copy to these tenants; empty copies every tenant of the source.
	tenants []string
	// rulesPrefix and alertmanagerPrefix are where the ruler and the Alertmanager keep their objects
	// (-ruler-storage.prefix, -alertmanager-storage.prefix), the same in both buckets.
	rulesPrefix, alertmanagerPrefix string
	// mirror makes the destination a copy of the source for the copied tenants: blocks, deletion marks
	// and configuration objects the source no longer has are removed from it (a backup). Without it
	// nothing is removed from the destination (a restore).
	mirror bool
	// markRestored marks every copied block as restored (StrataMeta.Restored) in its meta.json, so that
	// queriers read it however recent it is: the ingesters that held its data are gone (a restore).
	markRestored bool
	// concurrency is how many blocks are copied at once.
	concurrency int
}

// copyResult counts what a copy did.
type copyResult struct {
	tenants                                   int
	copied, skipped, vanished, failed, pruned atomic.Int64
	objects                                   atomic.Int64 // objects other than blocks: configuration, state, markers
	bytes                                     atomic.Int64
}

// bucketCopier copies tenants' blocks, deletion marks, rule groups and Alertmanager configuration and
// state from one bucket to another, so that the destination is consistent even while the source's
// compactor changes the source, and rebuilds each tenant's bucket index from what the destination holds.
type bucketCopier struct {
	src, dst objstore.Bucket
	opts     copyOptions
	res      copyResult

	outMu sync.Mutex
	out   io.Writer
}

func newBucketCopier(src, dst objstore.Bucket, opts copyOptions, out io.Writer) *bucketCopier {
	if opts.concurrency < 1 {
		opts.concurrency = 1
	}
	return &bucketCopier{src: src, dst: dst, opts: opts, out: out}
}

func (c *bucketCopier) printf(format string, args ...any) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	_, _ = fmt.Fprintf(c.out, format+"\n", args...)
}

// run copies every selected tenant. A block that cannot be copied is reported and counted as failed
// and the copy goes on; the returned error is for failures that stop it (listing the source).
func (c *bucketCopier) run(ctx context.Context) error {
	tenants, err := c.selectTenants(ctx)
	if err != nil {
		return err
	}
	c.res.tenants = len(tenants)
	for _, t := range tenants {
		if err := c.copyTenant(ctx, t); err != nil {
			return fmt.Errorf("tenant %s: %w", t, err)
		}
	}
	if c.opts.mirror && len(c.opts.tenants) == 0 {
		// A mirror removes what the source no longer has, but not whole tenants: a source bucket that
		// lost a tenant (or a wrong source) must not wipe its backup.
		others, err := bucket.ListTenants(ctx, c.dst)
		if err != nil {
			return err
		}
		for _, t := range others {
			if !slices.Contains(tenants, t) {
				c.printf("tenant %s: in the destination but not in the source: left as it is", t)
			}
		}
	}
	return nil
}

// selectTenants returns the tenants to copy: those asked for, or every tenant with blocks, rule groups
// or an Alertmanager configuration or state in the source.
func (c *bucketCopier) selectTenants(ctx context.Context) ([]string, error) {
	all, err := c.sourceTenants(ctx)
	if err != nil {
		return nil, err
	}
	if len(c.opts.tenants) == 0 {
		return all, nil
	}
	var missing []string
	for _, t := range c.opts.tenants {
		if err := tenant.ValidateID(t); err != nil {
			return nil, fmt.Errorf("--tenant: %w", err)
		}
		if !slices.Contains(all, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the source holds nothing of tenant(s) %s", strings.Join(missing, ", "))
	}
	selected := slices.Clone(c.opts.tenants)
	slices.Sort(selected)
	return slices.Compact(selected), nil
}

func (c *bucketCopier) sourceTenants(ctx context.Context) ([]string, error) {
	set := map[string]struct{}{}
	blockTenants, err := bucket.ListTenants(ctx, c.src)
	if err != nil {
		return nil, err
	}
	ruleTenants, err := bucket.ListTenants(ctx, objstore.NewPrefixedBucket(c.src, c.opts.rulesPrefix))
	if err != nil {
		return nil, err
	}
	for _, t := range slices.Concat(blockTenants, ruleTenants) {
		set[t] = struct{}{}
	}
	am := objstore.NewPrefixedBucket(c.src, c.opts.alertmanagerPrefix)
	err = am.Iter(ctx, alertmanagerConfigsDir, func(name string) error {
		t, ok := strings.CutSuffix(strings.TrimPrefix(name, alertmanagerConfigsDir), alertmanagerConfigSuffix)
		if ok && tenant.ValidateID(t) == nil {
			set[t] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list Alertmanager configurations: %w", err)
	}
	err = am.Iter(ctx, alertmanagerStateDir, func(name string) error {
		t, ok := strings.CutSuffix(strings.TrimPrefix(name, alertmanagerStateDir), objstore.DirDelim)
		if ok && tenant.ValidateID(t) == nil {
			set[t] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list Alertmanager states: %w", err)
	}
	tenants := make([]string, 0, len(set))
	for t := range set {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	return tenants, nil
}

func (c *bucketCopier) copyTenant(ctx context.Context, tenantID string) error {
	src, dst := bucket.NewTenantBucket(c.src, tenantID), bucket.NewTenantBucket(c.dst, tenantID)
	c.printf("tenant %s", tenantID)
	if err := c.copyBlocks(ctx, tenantID, src, dst); err != nil {
		return err
	}
	if err := c.copyTenantObjects(ctx, src, dst); err != nil {
		return err
	}
	if err := c.copyConfiguration(ctx, tenantID); err != nil {
		return err
	}
	return c.rebuildIndex(ctx, tenantID, dst)
}

// copyBlocks copies the tenant's complete blocks and then their deletion marks.
//
// Each pass lists the deletion marks, then the blocks, and copies the blocks not handled yet. The
// compactor uploads a block before it marks the blocks it replaces, so every mark of a listing belongs
// to a block whose replacement (if any) is in the block listing that follows: copying the marks of
// the last pass never leaves a marked block without the block holding its data. A block the compactor
// deletes during the copy is skipped; the passes go on until a listing shows no new block, so the
// block that replaced it is copied too.
func (c *bucketCopier) copyBlocks(ctx context.Context, tenantID string, src, dst objstore.Bucket) error {
	handled := map[ulid.ULID]bool{}
	var srcDirs map[ulid.ULID]struct{}
	// marks are those of the last pass whose listed blocks were all handled.
	var marks map[ulid.ULID]struct{}
	for pass := 0; ; pass++ {
		passMarks, err := listDeletionMarks(ctx, src)
		if err != nil {
			return err
		}
		if srcDirs, err = listBlockDirs(ctx, src); err != nil {
			return err
		}
		var todo []ulid.ULID
		for id := range srcDirs {
			if !handled[id] {
				todo = append(todo, id)
			}
		}
		slices.SortFunc(todo, func(a, b ulid.ULID) int { return a.Compare(b) })
		if pass == maxCopyPasses {
			if len(todo) > 0 {
				c.printf("tenant %s: the source still changes after %d passes: %d new blocks are left for the next run", tenantID, pass, len(todo))
			}
			break
		}
		marks = passMarks
		progress := false
		for id, outcome := range c.copyBlocksOf(ctx, tenantID, src, dst, todo) {
			if outcome != blockPartial {
				handled[id] = true
				progress = true
			}
		}
		if !progress {
			break
		}
	}
	if err := c.syncDeletionMarks(ctx, tenantID, src, dst, marks); err != nil {
		return err
	}
	if !c.opts.mirror {
		return nil
	}
	dstDirs, err := listBlockDirs(ctx, dst)
	if err != nil {
		return err
	}
	for id := range dstDirs {
		if _, ok := srcDirs[id]; ok {
			continue
		}
		if err := blockstore.DeleteBlock(ctx, dst, id); err != nil {
			return fmt.Errorf("remove block %s, which the source no longer has: %w", id, err)
		}
		c.res.pruned.Add(1)
		c.printf("tenant %s: block %s: removed, the source no longer has it", tenantID, id)
	}
	return nil
}

// blockOutcome is what copying one block did.
type blockOutcome int

const (
	blockCopied   blockOutcome = iota
	blockSkipped               // complete and identical in the destination already
	blockPartial               // no meta.json in the source: being uploaded (or deleted); tried again next pass
	blockVanished              // deleted from the source during the copy
	blockFailed
)

// copyBlocksOf copies ids, opts.concurrency at a time, and returns each one's outcome.
func (c *bucketCopier) copyBlocksOf(ctx context.Context, tenantID string, src, dst objstore.Bucket, ids []ulid.ULID) map[ulid.ULID]blockOutcome {
	outcomes := make(map[ulid.ULID]blockOutcome, len(ids))
	var mu sync.Mutex
	sem := make(chan struct{}, c.opts.concurrency)
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			outcome := c.copyBlock(ctx, tenantID, src, dst, id)
			mu.Lock()
			outcomes[id] = outcome
			mu.Unlock()
		})
	}
	wg.Wait()
	return outcomes
}

func (c *bucketCopier) copyBlock(ctx context.Context, tenantID string, src, dst objstore.Bucket, id ulid.ULID) blockOutcome {
	name := "tenant " + tenantID + ": block " + id.String()
	srcMeta, err := readMetaBytes(ctx, src, id)
	if errors.Is(err, blockstore.ErrMetaNotFound) {
		return blockPartial
	}
	if err != nil {
		c.res.failed.Add(1)
		c.printf("%s: failed: %v", name, err)
		return blockFailed
	}
	dstMeta, err := readMetaBytes(ctx, dst, id)
	switch {
	case err == nil:
		if sameMeta(srcMeta, dstMeta) {
			c.res.skipped.Add(1)
			return blockSkipped
		}
		c.res.failed.Add(1)
		c.printf("%s: refused: the destination holds a different block with this ID (its meta.json differs); remove it there first if it is to be replaced", name)
		return blockFailed
	case !errors.Is(err, blockstore.ErrMetaNotFound):
		c.res.failed.Add(1)
		c.printf("%s: failed: destination: %v", name, err)
		return blockFailed
	}

	n, err := c.copyBlockFiles(ctx, src, dst, id)
	if err == nil {
		// meta.json is deleted first when the compactor deletes a block: if it is still there, no file
		// was gone when it was listed or copied.
		var ok bool
		ok, err = src.Exists(ctx, blockstore.MetaPath(id))
		if err == nil && !ok {
			err = errVanished
		}
	}
	if errors.Is(err, errVanished) {
		// Leave no partial copy behind: it would only be cleaned up later.
		if derr := blockstore.DeleteBlock(ctx, dst, id); derr != nil {
			c.printf("%s: could not remove the partial copy: %v", name, derr)
		}
		c.res.vanished.Add(1)
		c.printf("%s: skipped: deleted from the source during the copy", name)
		return blockVanished
	}
	if err == nil && c.opts.markRestored {
		srcMeta, err = markRestored(srcMeta)
	}
	if err == nil {
		err = dst.Upload(ctx, blockstore.MetaPath(id), bytes.NewReader(srcMeta))
	}
	if err != nil {
		c.res.failed.Add(1)
		c.printf("%s: failed: %v", name, err)
		return blockFailed
	}
	n += int64(len(srcMeta))
	c.res.copied.Add(1)
	c.res.bytes.Add(n)
	c.printf("%s: copied (%s)", name, formatBytes(n))
	return blockCopied
}

var errVanished = errors.New("block deleted from the source")

// copyBlockFiles copies every file of the block but meta.json (written last by the caller) and the
// deletion mark (see syncDeletionMarks), and returns the bytes copied. A file already in the
// destination with the source's size is kept: block files never change, so it is the same file,
// left by an interrupted run.
func (c *bucketCopier) copyBlockFiles(ctx context.Context, src, dst objstore.Bucket, id ulid.ULID) (int64, error) {
	skip := []string{blockstore.MetaPath(id), blockstore.BlockDeletionMarkPath(id), path.Join(id.String(), compactor.UploadStateFilename)}
	var files []string
	err := src.Iter(ctx, id.String()+objstore.DirDelim, func(name string) error {
		if !slices.Contains(skip, name) {
			files = append(files, name)
		}
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		if src.IsObjNotFoundErr(err) {
			return 0, errVanished
		}
		return 0, fmt.Errorf("list files: %w", err)
	}
	var total int64
	for _, f := range files {
		attrs, err := src.Attributes(ctx, f)
		if err != nil {
			if src.IsObjNotFoundErr(err) {
				return total, errVanished
			}
			return total, fmt.Errorf("%s: %w", f, err)
		}
		if dattrs, err := dst.Attributes(ctx, f); err == nil && dattrs.Size == attrs.Size {
			continue
		}
		n, err := copyObject(ctx, src, dst, f, attrs.Size)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// copyObject streams object name from src to dst; size (-1 when unknown) lets the destination upload
// it in one request.
func copyObject(ctx context.Context, src, dst objstore.Bucket, name string, size int64) (int64, error) {
	r, err := src.Get(ctx, name)
	if err != nil {
		if src.IsObjNotFoundErr(err) {
			return 0, errVanished
		}
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	defer r.Close()
	cr := &countingReader{r: r, size: size}
	if err := dst.Upload(ctx, name, cr); err != nil {
		if src.IsObjNotFoundErr(err) {
			return cr.n, errVanished
		}
		return cr.n, fmt.Errorf("write %s: %w", name, err)
	}
	if size >= 0 && cr.n != size {
		return cr.n, fmt.Errorf("copy %s: read %d bytes, the source says it has %d", name, cr.n, size)
	}
	return cr.n, nil
}

// countingReader counts what is read and tells objstore the object's size (objstore.ObjectSizer).
type countingReader struct {
	r    io.Reader
	n    int64
	size int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

func (r *countingReader) ObjectSize() (int64, error) {
	if r.size < 0 {
		return 0, errors.New("size unknown")
	}
	return r.size, nil
}

// readMetaBytes reads a block's meta.json and checks it decodes as the meta of block id. Its error
// wraps blockstore.ErrMetaNotFound when there is none.
func readMetaBytes(ctx context.Context, bkt objstore.Bucket, id ulid.ULID) ([]byte, error) {
	b, err := readObject(ctx, bkt, blockstore.MetaPath(id))
	if bkt.IsObjNotFoundErr(err) {
		return nil, fmt.Errorf("block %s: %w", id, blockstore.ErrMetaNotFound)
	}
	if err != nil {
		return nil, err
	}
	var m blockstore.Meta
	if err := json.Unmarshal(b, &m); err != nil || m.ULID != id || m.Version != blockstore.MetaVersion1 {
		return nil, fmt.Errorf("%w: meta.json of block %s is not a version %d meta of that block", blockstore.ErrMetaCorrupted, id, blockstore.MetaVersion1)
	}
	return b, nil
}

// sameMeta reports whether two meta.json files say the same, whatever their formatting.
func sameMeta(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, erra := decodeJSONObject(a)
	vb, errb := decodeJSONObject(b)
	if erra != nil || errb != nil {
		return false
	}
	// A restored copy is the same block.
	for _, v := range []map[string]any{va, vb} {
		if strata, ok := v["strata"].(map[string]any); ok {
			delete(strata, "restored")
		}
	}
	return reflect.DeepEqual(va, vb)
}

// markRestored sets strata.restored in a block's meta.json, keeping every other field as it is.
func markRestored(meta []byte) ([]byte, error) {
	v, err := decodeJSONObject(meta)
	if err != nil {
		return nil, fmt.Errorf("meta.json: %w", err)
	}
	strata, _ := v["strata"].(map[string]any)
	if strata == nil {
		strata = map[string]any{}
		v["strata"] = strata
	}
	strata["restored"] = true
	return json.MarshalIndent(v, "", "\t")
}

// decodeJSONObject decodes a JSON object with its numbers kept as written.
func decodeJSONObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func readObject(ctx context.Context, bkt objstore.BucketReader, name string) ([]byte, error) {
	r, err := bkt.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// listBlockDirs returns the block directories of a tenant's bucket, complete or not.
func listBlockDirs(ctx context.Context, bkt objstore.Bucket) (map[ulid.ULID]struct{}, error) {
	dirs := map[ulid.ULID]struct{}{}
	err := bkt.Iter(ctx, "", func(name string) error {
		name, isDir := strings.CutSuffix(name, objstore.DirDelim)
		if id, err := ulid.ParseStrict(name); isDir && err == nil {
			dirs[id] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	return dirs, nil
}

// listDeletionMarks returns the blocks with a deletion mark in the markers directory.
func listDeletionMarks(ctx context.Context, bkt objstore.Bucket) (map[ulid.ULID]struct{}, error) {
	marks := map[ulid.ULID]struct{}{}
	err := bkt.Iter(ctx, blockstore.MarkersDir+objstore.DirDelim, func(name string) error {
		if id, ok := blockstore.DeletionMarkIDFromPath(name); ok {
			marks[id] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list deletion marks: %w", err)
	}
	return marks, nil
}

// formatBytes prints n in the largest binary unit that keeps it at least 1.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
