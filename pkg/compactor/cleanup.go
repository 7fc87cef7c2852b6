package compactor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// minPartialBlockAge is the least age (of its newest file) at which a block without meta.json counts as an
// abandoned upload, whatever the deletion delay: with a delay of 0, uploads in progress must survive.
const minPartialBlockAge = time.Hour

// deleteMarked deletes the blocks whose deletion mark is older than the deletion delay.
func (c *Compactor) deleteMarked(ctx context.Context, p *tenantPass) error {
	deleted := 0
	for _, m := range p.idx.DeletionMarks {
		if c.now().Before(time.Unix(m.DeletionTime, 0).Add(c.cfg.DeletionDelay)) {
			continue
		}
		if err := blockstore.DeleteBlock(ctx, p.bkt, m.ID); err != nil {
			return err
		}
		p.logger.Info("deleted block", "block", m.ID, "reason", m.Reason)
		c.metrics.deleted.Inc()
		deleted++
	}
	if deleted == 0 {
		return nil
	}
	return c.refresh(ctx, p, p.idx)
}

// deletePartial deletes the block directories without meta.json nor deletion mark whose newest file is older
// than the deletion delay (and minPartialBlockAge): uploads that died half-way and will never complete.
func (c *Compactor) deletePartial(ctx context.Context, p *tenantPass) error {
	known := make(map[ulid.ULID]bool, len(p.idx.Blocks)+len(p.idx.DeletionMarks))
	for _, b := range p.idx.Blocks {
		known[b.ID] = true
	}
	for _, m := range p.idx.DeletionMarks {
		known[m.ID] = true // deleteMarked owns these.
	}
	var partial []ulid.ULID
	err := p.bkt.Iter(ctx, "", func(name string) error {
		name, isDir := strings.CutSuffix(name, objstore.DirDelim)
		if id, err := ulid.ParseStrict(name); isDir && err == nil && !known[id] {
			partial = append(partial, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list blocks: %w", err)
	}
	minAge := max(c.cfg.DeletionDelay, minPartialBlockAge)
	for _, id := range partial {
		newest, err := newestFile(ctx, p.bkt, id)
		if err != nil {
			return err
		}
		if c.now().Sub(newest) < minAge {
			continue
		}
		// The upload may have finished since the listing.
		if ok, err := p.bkt.Exists(ctx, blockstore.MetaPath(id)); err != nil || ok {
			if err != nil {
				return fmt.Errorf("check meta.json of block %s: %w", id, err)
			}
			continue
		}
		if err := blockstore.DeleteBlock(ctx, p.bkt, id); err != nil {
			return err
		}
		p.logger.Info("deleted partial block", "block", id, "last_modified", newest)
		c.metrics.deleted.Inc()
	}
	return nil
}

// newestFile returns the last modification time of the newest file of block id.
func newestFile(ctx context.Context, bkt objstore.Bucket, id ulid.ULID) (time.Time, error) {
	var names []string
	if err := bkt.Iter(ctx, id.String()+"/", func(name string) error {
		names = append(names, name)
		return nil
	}, objstore.WithRecursiveIter()); err != nil {
		return time.Time{}, fmt.Errorf("list files of block %s: %w", id, err)
	}
	var newest time.Time
	for _, name := range names {
		attrs, err := bkt.Attributes(ctx, name)
		if err != nil {
			if bkt.IsObjNotFoundErr(err) {
				continue
			}
			return time.Time{}, fmt.Errorf("get attributes of %s: %w", name, err)
		}
		if attrs.LastModified.After(newest) {
			newest = attrs.LastModified
		}
	}
	return newest, nil
}

// writeIndex writes the pass's index. Blocks replaced by a live block but not marked (their marking failed)
// are left out of it, so that readers relying on deletion marks never count data twice; the next pass
// marks them.
func (c *Compactor) writeIndex(ctx context.Context, p *tenantPass) error {
	idx := *p.idx
	replaced := blockstore.ReplacedBlocks(p.liveBlocks(), p.sources())
	if len(replaced) > 0 {
		idx.Blocks = nil
		for _, b := range p.idx.Blocks {
			if _, ok := replaced[b.ID]; !ok {
				idx.Blocks = append(idx.Blocks, b)
			}
		}
	}
	idx.UpdatedAt = c.now().Unix()
	return blockstore.WriteIndex(ctx, p.bkt, &idx)
}
