package compactor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// Series deletion in the bucket: each pass rewrites the live blocks that hold samples a pending tombstone
// deletes, without those samples, and marks the originals for deletion (they go after the deletion delay,
// like compacted blocks; queriers hide their deleted samples meanwhile). A tombstone is done once every
// live block overlapping it was found clean and it is older than tombstoneSettleTime.

const (
	// reasonSeriesDeletion is the deletion mark reason of a block rewritten without deleted samples.
	reasonSeriesDeletion = "series-deletion"
	// tombstoneSettleTime is how long a tombstone stays pending at least: ingesters apply it at their next
	// shipping round (-blocks-storage.tsdb.ship-interval), and blocks they shipped just before must be
	// listed by a pass and rewritten before queriers stop filtering.
	tombstoneSettleTime = 15 * time.Minute
	// doneTombstoneRetention is how long a done tombstone stays in the bucket: an ingester that was down
	// when it was made still applies it to its WAL's data when it comes back.
	doneTombstoneRetention = 7 * 24 * time.Hour
)

// cleanBlocks remembers, per tenant and block, the tombstones the block was found not to hold samples of,
// so that a block is read once per tombstone.
type cleanBlocks map[string]map[ulid.ULID]map[ulid.ULID]struct{}

func (c cleanBlocks) isClean(tenant string, block, tombstone ulid.ULID) bool {
	_, ok := c[tenant][block][tombstone]
	return ok
}

func (c cleanBlocks) add(tenant string, block ulid.ULID, tombstones []*blockstore.Tombstone) {
	if c[tenant] == nil {
		c[tenant] = map[ulid.ULID]map[ulid.ULID]struct{}{}
	}
	if c[tenant][block] == nil {
		c[tenant][block] = map[ulid.ULID]struct{}{}
	}
	for _, t := range tombstones {
		c[tenant][block][t.ID] = struct{}{}
	}
}

// forgetGone drops the blocks the pass no longer has.
func (c cleanBlocks) forgetGone(tenant string, metas map[ulid.ULID]*blockstore.Meta) {
	for id := range c[tenant] {
		if _, ok := metas[id]; !ok {
			delete(c[tenant], id)
		}
	}
}

// loadTombstones reads the tenant's tombstones into the pass, and deletes the done ones past retention.
func (c *Compactor) loadTombstones(ctx context.Context, p *tenantPass) error {
	all, err := blockstore.ListTombstones(ctx, p.bkt)
	if err != nil {
		return err
	}
	for _, t := range all {
		if t.DoneAt != 0 && c.now().Sub(time.UnixMilli(t.DoneAt)) >= doneTombstoneRetention {
			if err := p.bkt.Delete(ctx, blockstore.TombstonePath(t.ID)); err != nil && !p.bkt.IsObjNotFoundErr(err) {
				return fmt.Errorf("delete done tombstone %s: %w", t.ID, err)
			}
		}
	}
	p.tombstones = blockstore.PendingTombstones(all)
	return nil
}

// tombstonesOverlapping returns the pass's pending tombstones that overlap block b.
func (p *tenantPass) tombstonesOverlapping(b *blockstore.BlockEntry) []*blockstore.Tombstone {
	var out []*blockstore.Tombstone
	for _, t := range p.tombstones {
		if t.Overlaps(b.MinTime, b.MaxTime-1) {
			out = append(out, t)
		}
	}
	return out
}

// applyTombstones rewrites the live blocks holding deleted samples and marks the tombstones done.
func (c *Compactor) applyTombstones(ctx context.Context, p *tenantPass) error {
	c.clean.forgetGone(p.tenant, p.metas)
	if len(p.tombstones) == 0 {
		return nil
	}
	rewritten := 0
	for _, b := range p.liveBlocks() {
		var todo []*blockstore.Tombstone
		for _, t := range p.tombstonesOverlapping(b) {
			if !c.clean.isClean(p.tenant, b.ID, t.ID) {
				todo = append(todo, t)
			}
		}
		if len(todo) == 0 {
			continue
		}
		done, err := c.rewriteBlock(ctx, p, b, todo)
		if err != nil {
			return fmt.Errorf("apply series deletions to block %s: %w", b.ID, err)
		}
		if done {
			rewritten++
		}
	}
	if rewritten > 0 {
		if err := c.refresh(ctx, p, p.idx); err != nil {
			return err
		}
	}
	return c.markTombstonesDone(ctx, p)
}

// markTombstonesDone sets DoneAt on the settled tombstones that no live block holds samples of.
func (c *Compactor) markTombstonesDone(ctx context.Context, p *tenantPass) error {
	live := p.liveBlocks()
	var pending []*blockstore.Tombstone
	for _, t := range p.tombstones {
		settled := c.now().Sub(time.UnixMilli(t.CreatedAt)) >= tombstoneSettleTime
		for _, b := range live {
			if t.Overlaps(b.MinTime, b.MaxTime-1) && !c.clean.isClean(p.tenant, b.ID, t.ID) {
				settled = false
				break
			}
		}
		if !settled {
			pending = append(pending, t)
			continue
		}
		t.DoneAt = c.now().UnixMilli()
		if err := blockstore.WriteTombstone(ctx, p.bkt, t); err != nil {
			return err
		}
		p.logger.Info("series deletion applied to every block", "tombstone", t.ID)
	}
	p.tombstones = pending
	return nil
}

// rewriteBlock checks block b against tombstones, reading its index only, and when it holds deleted
// samples rewrites it without them and marks it for deletion. It reports whether it rewrote the block.
func (c *Compactor) rewriteBlock(ctx context.Context, p *tenantPass, b *blockstore.BlockEntry, tombstones []*blockstore.Tombstone) (bool, error) {
	dir, err := os.MkdirTemp(c.cfg.DataDir, workDirPrefix)
	if err != nil {
		return false, fmt.Errorf("create work directory: %w", err)
	}
	defer os.RemoveAll(dir)
	bdir := filepath.Join(dir, b.ID.String())
	// The index says which series have chunks in a deleted range: the chunks are only needed to rewrite.
	for _, name := range []string{blockstore.MetaFilename, "index"} {
		if err := downloadFile(ctx, p.bkt, b.ID.String()+"/"+name, filepath.Join(bdir, name)); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(filepath.Join(bdir, "chunks"), 0o755); err != nil {
		return false, err
	}
	holds, err := applyTombstonesToDir(ctx, p, bdir, tombstones)
	if err != nil {
		return false, err
	}
	if !holds {
		c.clean.add(p.tenant, b.ID, tombstones)
		return false, nil
	}

	if err := os.RemoveAll(bdir); err != nil {
		return false, err
	}
	if err := downloadBlock(ctx, p.bkt, b.ID, bdir); err != nil {
		return false, err
	}
	// All pending tombstones, so that the rewritten block is clean of every one of them.
	overlapping := p.tombstonesOverlapping(b)
	if _, err := applyTombstonesToDir(ctx, p, bdir, overlapping); err != nil {
		return false, err
	}
	comp, err := promtsdb.NewLeveledCompactorWithOptions(ctx, nil, p.logger, c.cfg.rangesMillis(), nil, promtsdb.LeveledCompactorOptions{
		MergeFunc: storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge),
		Metrics:   promtsdb.NewCompactorMetrics(nil),
	})
	if err != nil {
		return false, fmt.Errorf("create TSDB compactor: %w", err)
	}
	outDir := filepath.Join(dir, "out")
	ids, err := comp.Compact(outDir, []string{bdir}, nil)
	if err != nil {
		return false, fmt.Errorf("rewrite: %w", err)
	}
	old := p.metas[b.ID]
	if len(ids) > 0 {
		ndir := filepath.Join(outDir, ids[0].String())
		meta, err := blockstore.ReadMetaFromDir(ndir)
		if err != nil {
			return false, err
		}
		// The same data less the deleted samples: the planner sees the block it saw before.
		meta.Compaction.Level = old.Compaction.Level
		meta.Strata = old.Strata
		if meta.Strata.Exemplars, err = blockstore.MergeExemplarFiles(ndir, []string{bdir}, exemplarsNotDeleted(overlapping)); err != nil {
			return false, fmt.Errorf("rewrite exemplars: %w", err)
		}
		if err := meta.WriteToDir(ndir); err != nil {
			return false, err
		}
		if err := uploadBlock(ctx, p.bkt, meta, ndir); err != nil {
			return false, err
		}
		c.clean.add(p.tenant, meta.ULID, overlapping)
		p.logger.Info("rewrote block without deleted series samples", "block", b.ID, "new_block", meta.ULID,
			"samples_before", old.Stats.NumSamples, "samples_after", meta.Stats.NumSamples)
	} else {
		p.logger.Info("every sample of block was deleted", "block", b.ID)
	}
	if err := c.markForDeletion(ctx, p, b.ID, reasonSeriesDeletion); err != nil {
		return false, err
	}
	return true, nil
}

// applyTombstonesToDir records the tombstones' deletions in the block in dir (its tombstones file, which
// compaction honours) and reports whether the block holds any deleted sample.
func applyTombstonesToDir(ctx context.Context, p *tenantPass, dir string, tombstones []*blockstore.Tombstone) (bool, error) {
	blk, err := promtsdb.OpenBlock(p.logger, dir, nil, nil)
	if err != nil {
		return false, fmt.Errorf("open block: %w", err)
	}
	for _, t := range tombstones {
		for _, ms := range t.Matchers() {
			if err := blk.Delete(ctx, t.MinTime, t.MaxTime, ms...); err != nil {
				_ = blk.Close()
				return false, fmt.Errorf("apply tombstone %s: %w", t.ID, err)
			}
		}
	}
	holds := blk.Meta().Stats.NumTombstones > 0
	if err := blk.Close(); err != nil {
		return false, fmt.Errorf("close block: %w", err)
	}
	return holds, nil
}

// exemplarsNotDeleted keeps the exemplars that no tombstone deletes: those of a deleted series at a deleted
// time go with its samples.
func exemplarsNotDeleted(tombstones []*blockstore.Tombstone) blockstore.ExemplarKeep {
	if len(tombstones) == 0 {
		return nil
	}
	return func(lset labels.Labels, e exemplar.Exemplar) bool {
		for _, t := range tombstones {
			if t.Deletes(lset, e.Ts) {
				return false
			}
		}
		return true
	}
}
