package ingester

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/oklog/ulid/v2"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// Deletions reach ingesters through the bucket: each shipping round, before shipping, an ingester reads the
// deletion state of every tenant it has open.
//   - A tenant deletion mark: the tenant's TSDB is closed and its local directory removed, without shipping
//     anything more. Writes that arrive later are accepted (as Mimir does, so senders do not retry forever)
//     into a new TSDB, which the next round drops again: the mark stays in the bucket.
//   - Series deletion tombstones: each is applied once to the tenant's TSDB with its Delete (head and local
//     blocks), so later blocks are cut and shipped without the deleted samples. Queriers hide the samples
//     until then, so the round's delay is not visible in answers.

// appliedTombstones remembers the tombstones applied to one open TSDB. A reopened TSDB starts empty and
// applies them again, which changes nothing: Delete of deleted samples is a no-op.
type appliedTombstones struct {
	mtx sync.Mutex
	ids map[ulid.ULID]struct{}
}

func (a *appliedTombstones) has(id ulid.ULID) bool {
	a.mtx.Lock()
	defer a.mtx.Unlock()
	_, ok := a.ids[id]
	return ok
}

func (a *appliedTombstones) add(id ulid.ULID) {
	a.mtx.Lock()
	defer a.mtx.Unlock()
	if a.ids == nil {
		a.ids = map[ulid.ULID]struct{}{}
	}
	a.ids[id] = struct{}{}
}

// applyDeletions applies the bucket's tenant deletion marks and series tombstones to the open tenants.
// One tenant's failure does not stop the others.
func (i *Ingester) applyDeletions(ctx context.Context) {
	if i.bucket == nil {
		return
	}
	for _, id := range i.tenantIDs() {
		t := i.tenantDB(id)
		if t == nil {
			continue
		}
		if err := i.applyTenantDeletions(ctx, id, t); err != nil && ctx.Err() == nil {
			i.logger.Warn("applying deletions failed; retrying next round", "tenant", id, "err", err)
		}
	}
}

func (i *Ingester) applyTenantDeletions(ctx context.Context, id string, t *tenantDB) error {
	tb := bucket.NewTenantBucket(i.bucket, id)
	_, err := blockstore.ReadTenantDeletionMark(ctx, tb)
	switch {
	case err == nil:
		removed, err := i.removeTenant(id, t, func() bool { return true }, true)
		if removed && err == nil {
			i.logger.Info("dropped the TSDB of a deleted tenant", "tenant", id)
		}
		return err
	case !errors.Is(err, blockstore.ErrTenantDeletionMarkNotFound):
		return err
	}
	tombstones, err := blockstore.ListTombstones(ctx, tb)
	if err != nil {
		return err
	}
	// Held like a request's, so that an idle close waits for the deletions to be written.
	t, release, err := i.acquireTenantDB(id, false)
	if err != nil || t == nil {
		return err
	}
	defer release()
	for _, ts := range tombstones {
		if t.tombstones.has(ts.ID) {
			continue
		}
		for _, ms := range ts.Matchers() {
			if err := t.db.Delete(ctx, ts.MinTime, ts.MaxTime, ms...); err != nil {
				return fmt.Errorf("apply series deletion %s: %w", ts.ID, err)
			}
		}
		t.tombstones.add(ts.ID)
		i.logger.Info("applied series deletion", "tenant", id, "tombstone", ts.ID)
	}
	return nil
}
