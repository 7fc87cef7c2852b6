package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// Reasons written in deletion marks, also the values of the marked-for-deletion metric's label.
const (
	reasonCompacted = "compacted"
	reasonRetention = "retention"
)

// maxPlanRounds bounds the plan-and-compact rounds of a tenant's pass. Each round does one level (vertical,
// then each block range), so a healthy pass needs len(ranges)+1; the bound only stops a runaway plan.
const maxPlanRounds = 16

// tenantPass is one pass over one tenant: its bucket, its index as last refreshed, and its blocks' metas.
type tenantPass struct {
	tenant string
	bkt    objstore.Bucket
	logger *slog.Logger
	idx    *blockstore.Index
	metas  map[ulid.ULID]*blockstore.Meta
	// tombstones are the tenant's pending series deletions.
	tombstones []*blockstore.Tombstone
}

// compactTenant runs a compaction pass over one tenant.
func (c *Compactor) compactTenant(ctx context.Context, tenant string) error {
	return c.runTenant(ctx, tenant, true)
}

// cleanupTenant runs a pass over one tenant without compaction.
func (c *Compactor) cleanupTenant(ctx context.Context, tenant string) error {
	return c.runTenant(ctx, tenant, false)
}

// runTenant brings a tenant's bucket to its next state. Each step reads the bucket as the previous ones left
// it, so a pass interrupted anywhere is finished by the next one:
//  1. mark the blocks another complete block replaces (a compaction that died before marking its inputs);
//  2. mark blocks past retention;
//  3. with compact, plan and run compactions until nothing is left to do, leaving out deleted series;
//  4. rewrite the blocks holding samples of deleted series;
//  5. delete marked blocks past the deletion delay and abandoned partial uploads;
//  6. write the bucket index.
//
// A tenant marked for deletion instead has all its blocks and its bucket index deleted.
func (c *Compactor) runTenant(ctx context.Context, tenant string, compact bool) error {
	p := &tenantPass{
		tenant: tenant,
		bkt:    bucket.NewTenantBucket(c.bkt, tenant),
		logger: c.logger.With("tenant", tenant),
	}
	if deleted, err := c.deleteTenantIfMarked(ctx, p); deleted || err != nil {
		return err
	}
	if err := c.loadTombstones(ctx, p); err != nil {
		return err
	}
	old, err := blockstore.ReadIndex(ctx, p.bkt)
	if err != nil && !errors.Is(err, blockstore.ErrIndexNotFound) {
		if !errors.Is(err, blockstore.ErrIndexCorrupted) {
			return err
		}
		p.logger.Warn("rebuilding corrupt bucket index", "err", err)
	}
	if err := c.refresh(ctx, p, old); err != nil {
		return err
	}
	if err := c.markReplaced(ctx, p); err != nil {
		return err
	}
	if err := c.applyRetention(ctx, p); err != nil {
		return err
	}
	if compact {
		if err := c.compactRounds(ctx, p); err != nil {
			return err
		}
	}
	if err := c.applyTombstones(ctx, p); err != nil {
		return err
	}
	if err := c.deleteMarked(ctx, p); err != nil {
		return err
	}
	if err := c.deletePartial(ctx, p); err != nil {
		return err
	}
	return c.writeIndex(ctx, p)
}

// refresh rebuilds the pass's index from the bucket, reusing old's entries, and loads the metas of blocks
// it has not seen yet.
func (c *Compactor) refresh(ctx context.Context, p *tenantPass, old *blockstore.Index) error {
	idx, err := blockstore.NewUpdater(p.bkt, p.logger).UpdateIndex(ctx, old)
	if err != nil {
		return fmt.Errorf("update bucket index: %w", err)
	}
	cached := c.metas[p.tenant]
	metas := make(map[ulid.ULID]*blockstore.Meta, len(idx.Blocks))
	blocks := idx.Blocks[:0]
	for _, b := range idx.Blocks {
		m, ok := cached[b.ID]
		if !ok {
			m, err = blockstore.DownloadMeta(ctx, p.bkt, b.ID)
			if errors.Is(err, blockstore.ErrMetaNotFound) {
				continue // Deleted since the listing.
			}
			if err != nil {
				return err
			}
		}
		metas[b.ID] = m
		blocks = append(blocks, b)
	}
	idx.Blocks = blocks
	c.metas[p.tenant] = metas
	p.idx, p.metas = idx, metas
	return nil
}

// sources returns the compaction sources of the pass's blocks.
func (p *tenantPass) sources() blockstore.BlockSources {
	s := make(blockstore.BlockSources, len(p.metas))
	for id, m := range p.metas {
		s[id] = m.Compaction.Sources
	}
	return s
}

// liveBlocks returns the blocks not marked for deletion.
func (p *tenantPass) liveBlocks() []*blockstore.BlockEntry {
	var out []*blockstore.BlockEntry
	for _, b := range p.idx.Blocks {
		if !p.idx.IsMarkedForDeletion(b.ID) {
			out = append(out, b)
		}
	}
	return out
}

// markReplaced marks for deletion the live blocks whose data another live block holds: the inputs of a
// compaction that uploaded its block but died before marking them.
func (c *Compactor) markReplaced(ctx context.Context, p *tenantPass) error {
	replaced := blockstore.ReplacedBlocks(p.liveBlocks(), p.sources())
	if len(replaced) == 0 {
		return nil
	}
	for id, by := range replaced {
		p.logger.Info("marking block replaced by a compacted block for deletion", "block", id, "compacted_block", by)
		if err := c.markForDeletion(ctx, p, id, reasonCompacted); err != nil {
			return err
		}
	}
	return c.refresh(ctx, p, p.idx)
}

// applyRetention marks for deletion the live blocks whose newest sample is older than the retention period.
func (c *Compactor) applyRetention(ctx context.Context, p *tenantPass) error {
	if c.limits == nil {
		return nil
	}
	retention := time.Duration(c.limits.For(p.tenant).CompactorBlocksRetentionPeriod)
	if retention <= 0 {
		return nil
	}
	cutoff := c.now().Add(-retention).UnixMilli()
	marked := 0
	for _, b := range p.liveBlocks() {
		// MaxTime is exclusive: a block ending at the cutoff has no sample at or after it.
		if b.MaxTime > cutoff {
			continue
		}
		if err := c.markForDeletion(ctx, p, b.ID, reasonRetention); err != nil {
			return err
		}
		marked++
	}
	if marked == 0 {
		return nil
	}
	p.logger.Info("marked blocks past the retention period for deletion", "blocks", marked, "retention", retention)
	return c.refresh(ctx, p, p.idx)
}

func (c *Compactor) markForDeletion(ctx context.Context, p *tenantPass, id ulid.ULID, reason string) error {
	if err := blockstore.MarkForDeletion(ctx, p.bkt, id, reason, c.now()); err != nil {
		return err
	}
	c.metrics.markedDeleted.WithLabelValues(reason).Inc()
	return nil
}

// compactRounds plans and runs compactions until the plan is empty.
func (c *Compactor) compactRounds(ctx context.Context, p *tenantPass) error {
	ranges := c.cfg.rangesMillis()
	for range maxPlanRounds {
		groups := Plan(c.compactable(p), ranges)
		if len(groups) == 0 {
			return nil
		}
		for _, g := range groups {
			if err := c.runGroup(ctx, p, g); err != nil {
				return fmt.Errorf("compact blocks %d..%d: %w", g.MinTime, g.MaxTime, err)
			}
		}
		if err := c.refresh(ctx, p, p.idx); err != nil {
			return err
		}
	}
	p.logger.Warn("compaction plan did not settle; the rest waits for the next pass", "rounds", maxPlanRounds)
	return nil
}

// compactable returns the live blocks uploaded before the consistency delay.
func (c *Compactor) compactable(p *tenantPass) []*blockstore.BlockEntry {
	cutoff := c.now().Add(-c.cfg.ConsistencyDelay)
	var out []*blockstore.BlockEntry
	for _, b := range p.liveBlocks() {
		if c.cfg.ConsistencyDelay == 0 || !time.Unix(b.UploadedAt, 0).After(cutoff) {
			out = append(out, b)
		}
	}
	return out
}
