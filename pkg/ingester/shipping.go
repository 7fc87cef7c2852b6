package ingester

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// Shipping: the TSDB cuts its head into blocks of -blocks-storage.tsdb.block-ranges-period; a loop uploads
// every new block of every tenant to object storage. Object storage being down never affects pushes: the
// samples stay in the WAL and in local blocks, and the next round ships them.

// shipLoop applies the bucket's deletions, ships, deletes local blocks past retention and closes idle
// TSDBs until ctx is done. With shipping off (-blocks-storage.tsdb.ship-interval=0) it only applies
// deletions: a deleted series would otherwise come back from the head once its tombstone is gone.
func (i *Ingester) shipLoop(ctx context.Context) {
	defer close(i.shipLoopDone)
	shipping := i.cfg.ShipInterval > 0
	interval := i.cfg.ShipInterval
	if !shipping {
		interval = i.deletionsInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Deletions first, so that nothing deleted is shipped.
			i.applyDeletions(ctx)
			if shipping {
				i.shipAll(ctx)
				i.closeIdleTenants(ctx)
			}
		}
	}
}

// shipAll ships every tenant's new blocks; one tenant's failure does not stop the others.
func (i *Ingester) shipAll(ctx context.Context) {
	for _, id := range i.tenantIDs() {
		if t := i.tenantDB(id); t != nil && t.shipper != nil {
			if _, err := t.shipper.Sync(ctx); err != nil && ctx.Err() == nil {
				i.logger.Warn("shipping blocks failed; retrying next round", "tenant", id, "err", err)
			}
		}
	}
}

// Flush compacts the whole head of the given tenants (all when none are given) into blocks and ships
// them: what /ingester/flush does before a scale-down or to make recent data durable in the bucket.
func (i *Ingester) Flush(ctx context.Context, tenants ...string) error {
	if len(tenants) == 0 {
		tenants = i.tenantIDs()
	}
	var errs []error
	for _, id := range tenants {
		t := i.tenantDB(id)
		if t == nil {
			errs = append(errs, fmt.Errorf("tenant %s has no data in this ingester", id))
			continue
		}
		if err := t.compactHead(); err != nil {
			errs = append(errs, fmt.Errorf("compact head of tenant %s: %w", id, err))
			continue
		}
		if t.shipper == nil {
			continue
		}
		if _, err := t.shipper.Sync(ctx); err != nil {
			errs = append(errs, fmt.Errorf("ship blocks of tenant %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// compactHead turns everything in the head into a block.
func (t *tenantDB) compactHead() error {
	t.compactMtx.Lock()
	defer t.compactMtx.Unlock()
	h := t.db.Head()
	if h.NumSeries() == 0 || h.MinTime() == math.MaxInt64 {
		return nil
	}
	return t.db.CompactHead(tsdb.NewRangeHead(h, h.MinTime(), h.MaxTime()))
}

// blocksToDelete is the TSDB's retention for an ingester: a local block goes once it has been shipped
// and all its samples are older than the retention period (queriers ask store-gateways for those), plus
// the blocks the TSDB marked deletable after compacting them into others. The TSDB also calls it while it
// opens, before t.db is set.
func (i *Ingester) blocksToDelete(t *tenantDB) tsdb.BlocksToDeleteFunc {
	return func(blocks []*tsdb.Block) map[ulid.ULID]struct{} {
		deletable := map[ulid.ULID]struct{}{}
		for _, b := range blocks {
			if b.Meta().Compaction.Deletable {
				deletable[b.Meta().ULID] = struct{}{}
			}
		}
		if t.shipper == nil {
			return deletable
		}
		shipped := t.shipper.Shipped()
		cutoff := i.now().Add(-i.cfg.RetentionPeriod).UnixMilli()
		for _, b := range blocks {
			meta := b.Meta()
			if _, ok := shipped[meta.ULID]; ok && meta.MaxTime < cutoff {
				deletable[meta.ULID] = struct{}{}
			}
		}
		return deletable
	}
}

// closeIdleTenants ships and closes the TSDB of every tenant that sent nothing for the idle timeout, and
// removes its local directory once everything in it is in the bucket.
func (i *Ingester) closeIdleTenants(ctx context.Context) {
	if i.cfg.CloseIdleTSDBTimeout <= 0 {
		return
	}
	for _, id := range i.tenantIDs() {
		t := i.tenantDB(id)
		if t == nil || i.now().Sub(t.lastPush()) < i.cfg.CloseIdleTSDBTimeout {
			continue
		}
		if err := i.closeIdleTenant(ctx, id, t); err != nil {
			i.logger.Warn("closing idle TSDB failed; it stays open", "tenant", id, "err", err)
		}
	}
}

func (i *Ingester) closeIdleTenant(ctx context.Context, id string, t *tenantDB) error {
	if err := i.Flush(ctx, id); err != nil {
		return err
	}
	// A push may have reopened the tenant's activity while we flushed: then it is not idle any more.
	removed, err := i.removeTenant(id, t, func() bool { return i.now().Sub(t.lastPush()) >= i.cfg.CloseIdleTSDBTimeout }, t.shipper != nil)
	if removed && err == nil {
		i.logger.Info("closed idle TSDB", "tenant", id)
	}
	return err
}

// removeTenant closes the tenant's TSDB t, if it is still the open one and still(), under the ingesters'
// lock, holds, and removes its local directory when removeDir is set.
func (i *Ingester) removeTenant(id string, t *tenantDB, still func() bool, removeDir bool) (bool, error) {
	i.mtx.Lock()
	if i.tenants[id] != t || !still() {
		i.mtx.Unlock()
		return false, nil
	}
	delete(i.tenants, id)
	i.metrics.tenants.Set(float64(len(i.tenants)))
	i.mtx.Unlock()

	// Requests that already hold this tenant's DB finish before it closes.
	t.inflight.Wait()
	err := t.db.Close()
	t.series.released()
	t.registerer.UnregisterAll()
	if err != nil {
		return true, fmt.Errorf("close TSDB: %w", err)
	}
	if removeDir {
		if err := os.RemoveAll(filepath.Join(i.cfg.TSDBDir, id)); err != nil {
			return true, fmt.Errorf("remove local TSDB: %w", err)
		}
	}
	return true, nil
}

// newShipper returns the tenant's shipper, or nil when the ingester has no bucket.
func (i *Ingester) newShipper(id string, t *tenantDB) *blockstore.Shipper {
	if i.bucket == nil {
		return nil
	}
	opts := append([]blockstore.ShipperOption{blockstore.WithBeforeUpload(t.writeBlockExemplars)}, i.shipperOpts...)
	return blockstore.NewShipper(filepath.Join(i.cfg.TSDBDir, id), bucket.NewTenantBucket(i.bucket, id), id,
		i.cfg.InstanceID, i.logger, i.shipperMetrics, opts...)
}

// tenantActivity remembers when a tenant last pushed, for the idle timeout.
type tenantActivity struct {
	mtx  sync.Mutex
	last time.Time
}

func (a *tenantActivity) touch(now time.Time) {
	a.mtx.Lock()
	a.last = now
	a.mtx.Unlock()
}

func (a *tenantActivity) lastPush() time.Time {
	a.mtx.Lock()
	defer a.mtx.Unlock()
	return a.last
}
