package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// syncDeletionMarks gives the destination's blocks the deletion marks of marks (listed in the source
// before its last block listing): the mark's object is copied as it is, so the deletion time is kept
// and a restored block is deleted when it would have been. With mirror, marks the source no longer
// has (blocks undeleted there) are removed; without, marks are only added.
func (c *bucketCopier) syncDeletionMarks(ctx context.Context, tenantID string, src, dst objstore.Bucket, marks map[ulid.ULID]struct{}) error {
	dstDirs, err := listBlockDirs(ctx, dst)
	if err != nil {
		return err
	}
	dstMarks, err := listDeletionMarks(ctx, dst)
	if err != nil {
		return err
	}
	for id := range dstDirs {
		_, srcMarked := marks[id]
		_, dstMarked := dstMarks[id]
		switch {
		case srcMarked:
			b, err := readObject(ctx, src, blockstore.DeletionMarkPath(id))
			if src.IsObjNotFoundErr(err) {
				continue // the block's deletion finished since the listing
			}
			if err != nil {
				return fmt.Errorf("read deletion mark of block %s: %w", id, err)
			}
			if dstMarked {
				if old, err := readObject(ctx, dst, blockstore.DeletionMarkPath(id)); err == nil && bytes.Equal(old, b) {
					continue
				}
			}
			// The block's own copy first, as blockstore.MarkForDeletion does: the markers copy is the one
			// that is listed.
			for _, p := range []string{blockstore.BlockDeletionMarkPath(id), blockstore.DeletionMarkPath(id)} {
				if err := dst.Upload(ctx, p, bytes.NewReader(b)); err != nil {
					return fmt.Errorf("write deletion mark of block %s: %w", id, err)
				}
			}
			c.res.objects.Add(1)
		case dstMarked && c.opts.mirror:
			for _, p := range []string{blockstore.DeletionMarkPath(id), blockstore.BlockDeletionMarkPath(id)} {
				if err := dst.Delete(ctx, p); err != nil && !dst.IsObjNotFoundErr(err) {
					return fmt.Errorf("remove deletion mark of block %s: %w", id, err)
				}
			}
			c.printf("tenant %s: block %s: deletion mark removed, the source no longer has it", tenantID, id)
		}
	}
	return nil
}

// copyTenantObjects copies the tenant's objects that are neither blocks, block deletion marks nor the
// bucket index (rebuilt from the copy): other markers and whatever later versions keep there. Only the
// top level is listed, so the blocks' files are not walked again.
func (c *bucketCopier) copyTenantObjects(ctx context.Context, src, dst objstore.Bucket) error {
	entries := map[string]struct{}{}
	buckets := []objstore.Bucket{src}
	if c.opts.mirror {
		buckets = append(buckets, dst) // so that what only the destination has is removed
	}
	for _, bkt := range buckets {
		if err := bkt.Iter(ctx, "", func(name string) error {
			entries[name] = struct{}{}
			return nil
		}); err != nil {
			return fmt.Errorf("list tenant directory: %w", err)
		}
	}
	notDeletionMark := func(name string) bool {
		_, ok := blockstore.DeletionMarkIDFromPath(name)
		return !ok
	}
	for name := range entries {
		dir, isDir := strings.CutSuffix(name, objstore.DirDelim)
		var err error
		switch {
		case !isDir:
			if name != blockstore.BucketIndexFilename {
				err = c.syncObject(ctx, src, dst, name)
			}
		case dir == blockstore.MarkersDir:
			err = c.syncObjects(ctx, src, dst, name, notDeletionMark)
		default:
			if _, perr := ulid.ParseStrict(dir); perr != nil {
				err = c.syncObjects(ctx, src, dst, name, nil)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// copyConfiguration copies the tenant's rule groups and Alertmanager configuration and state.
func (c *bucketCopier) copyConfiguration(ctx context.Context, tenantID string) error {
	rulesSrc := bucket.NewTenantBucket(objstore.NewPrefixedBucket(c.src, c.opts.rulesPrefix), tenantID)
	rulesDst := bucket.NewTenantBucket(objstore.NewPrefixedBucket(c.dst, c.opts.rulesPrefix), tenantID)
	if err := c.syncObjects(ctx, rulesSrc, rulesDst, "", nil); err != nil {
		return fmt.Errorf("rule groups: %w", err)
	}
	amSrc := objstore.NewPrefixedBucket(c.src, c.opts.alertmanagerPrefix)
	amDst := objstore.NewPrefixedBucket(c.dst, c.opts.alertmanagerPrefix)
	configName := alertmanagerConfigsDir + tenantID + alertmanagerConfigSuffix
	if err := c.syncObject(ctx, amSrc, amDst, configName); err != nil {
		return fmt.Errorf("alertmanager configuration: %w", err)
	}
	if err := c.syncObjects(ctx, amSrc, amDst, alertmanagerStateDir+tenantID+objstore.DirDelim, nil); err != nil {
		return fmt.Errorf("alertmanager state: %w", err)
	}
	return nil
}

// syncObjects copies every object under dir (recursively) that keep accepts (nil keeps all); with
// mirror, the destination's objects there that the source lacks are deleted.
func (c *bucketCopier) syncObjects(ctx context.Context, src, dst objstore.Bucket, dir string, keep func(string) bool) error {
	list := func(bkt objstore.Bucket) (map[string]struct{}, error) {
		names := map[string]struct{}{}
		err := bkt.Iter(ctx, dir, func(name string) error {
			if keep == nil || keep(name) {
				names[name] = struct{}{}
			}
			return nil
		}, objstore.WithRecursiveIter())
		return names, err
	}
	srcNames, err := list(src)
	if err != nil {
		return fmt.Errorf("list source: %w", err)
	}
	for name := range srcNames {
		if err := c.syncObject(ctx, src, dst, name); err != nil {
			return err
		}
	}
	if !c.opts.mirror {
		return nil
	}
	dstNames, err := list(dst)
	if err != nil {
		return fmt.Errorf("list destination: %w", err)
	}
	for name := range dstNames {
		if _, ok := srcNames[name]; ok {
			continue
		}
		if err := dst.Delete(ctx, name); err != nil && !dst.IsObjNotFoundErr(err) {
			return fmt.Errorf("remove %s, which the source no longer has: %w", name, err)
		}
	}
	return nil
}

// syncObject copies one object; when the source does not have it, mirror deletes it from the destination.
// These objects are small and rewritten in place by their owners, so they are always copied.
func (c *bucketCopier) syncObject(ctx context.Context, src, dst objstore.Bucket, name string) error {
	b, err := readObject(ctx, src, name)
	if src.IsObjNotFoundErr(err) {
		if c.opts.mirror {
			if err := dst.Delete(ctx, name); err != nil && !dst.IsObjNotFoundErr(err) {
				return fmt.Errorf("remove %s, which the source no longer has: %w", name, err)
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if err := dst.Upload(ctx, name, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	c.res.objects.Add(1)
	c.res.bytes.Add(int64(len(b)))
	return nil
}

// rebuildIndex writes the tenant's bucket index in the destination from the blocks and marks it holds
// now: the source's index may name blocks that were deleted during the copy.
func (c *bucketCopier) rebuildIndex(ctx context.Context, tenantID string, dst objstore.Bucket) error {
	idx, err := blockstore.NewUpdater(dst, nil).UpdateIndex(ctx, nil)
	if err != nil {
		return fmt.Errorf("rebuild bucket index: %w", err)
	}
	if len(idx.Blocks) == 0 {
		if err := dst.Delete(ctx, blockstore.BucketIndexFilename); err != nil && !dst.IsObjNotFoundErr(err) {
			return fmt.Errorf("remove empty bucket index: %w", err)
		}
		return nil
	}
	if err := blockstore.WriteIndex(ctx, dst, idx); err != nil {
		return err
	}
	c.printf("tenant %s: bucket index written: %d blocks, %d marked for deletion", tenantID, len(idx.Blocks), len(idx.DeletionMarks))
	return nil
}
