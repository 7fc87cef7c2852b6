package compactor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// Tenant deletion, Mimir's API: POST /compactor/delete_tenant writes a tenant deletion mark in the
// tenant's bucket; the compactor owning the tenant then deletes all its blocks (without deletion delay)
// and its bucket index at every pass, so that blocks ingesters ship later go too. The mark stays.

const (
	// DeleteTenantPath requests the deletion of the request's tenant.
	DeleteTenantPath = "/compactor/delete_tenant"
	// DeleteTenantStatusPath reports the progress of the request's tenant's deletion.
	DeleteTenantStatusPath = "/compactor/delete_tenant_status"
)

// deleteTenantIfMarked deletes everything of a tenant marked for deletion, and reports whether it was.
func (c *Compactor) deleteTenantIfMarked(ctx context.Context, p *tenantPass) (bool, error) {
	mark, err := blockstore.ReadTenantDeletionMark(ctx, p.bkt)
	if errors.Is(err, blockstore.ErrTenantDeletionMarkNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	delete(c.metas, p.tenant)
	delete(c.clean, p.tenant)
	// The index first: readers that load it from now on see no block, so none asks for a deleted one.
	for _, name := range []string{blockstore.BucketIndexFilename} {
		if err := p.bkt.Delete(ctx, name); err != nil && !p.bkt.IsObjNotFoundErr(err) {
			return true, fmt.Errorf("delete %s: %w", name, err)
		}
	}
	ids, err := tenantBlockDirs(ctx, p.bkt)
	if err != nil {
		return true, err
	}
	for _, id := range ids {
		if err := blockstore.DeleteBlock(ctx, p.bkt, id); err != nil {
			return true, err
		}
		c.metrics.deleted.Inc()
	}
	tombstones, err := blockstore.ListTombstones(ctx, p.bkt)
	if err == nil {
		for _, t := range tombstones {
			if err := p.bkt.Delete(ctx, blockstore.TombstonePath(t.ID)); err != nil && !p.bkt.IsObjNotFoundErr(err) {
				return true, fmt.Errorf("delete tombstone %s: %w", t.ID, err)
			}
		}
	}
	if len(ids) > 0 || mark.FinishedTime == 0 {
		p.logger.Info("deleted the blocks of a tenant marked for deletion", "blocks", len(ids))
	}
	if mark.FinishedTime == 0 {
		mark.FinishedTime = c.now().Unix()
		if err := blockstore.WriteTenantDeletionMark(ctx, p.bkt, mark); err != nil {
			return true, err
		}
	}
	return true, nil
}

// tenantBlockDirs lists the block directories of a tenant's bucket, complete or not.
func tenantBlockDirs(ctx context.Context, bkt objstore.Bucket) ([]ulid.ULID, error) {
	var ids []ulid.ULID
	err := bkt.Iter(ctx, "", func(name string) error {
		name, isDir := strings.CutSuffix(name, objstore.DirDelim)
		if id, err := ulid.ParseStrict(name); isDir && err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	return ids, nil
}

// TenantDeletionStatus is the answer of DeleteTenantStatusPath.
type TenantDeletionStatus struct {
	TenantID string `json:"tenant_id"`
	// DeletionRequested is true once the tenant's deletion mark is in the bucket.
	DeletionRequested bool `json:"deletion_requested"`
	// BlocksDeleted is true when the tenant has no block left in the bucket (Mimir's field).
	BlocksDeleted bool `json:"blocks_deleted"`
	// BlocksRemaining counts the tenant's block directories still in the bucket.
	BlocksRemaining int `json:"blocks_remaining"`
}

// onlyMethod answers 405 to requests of another method than method, before withTenant looks at the tenant.
func onlyMethod(method string, withTenant func(http.Handler) http.Handler, h http.HandlerFunc) http.Handler {
	next := withTenant(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			http.Error(w, "only "+method+" is allowed", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// DeleteTenantHandler serves DeleteTenantPath; withTenant puts the request's tenant into its context.
func (c *Compactor) DeleteTenantHandler(withTenant func(http.Handler) http.Handler) http.Handler {
	return onlyMethod(http.MethodPost, withTenant, func(w http.ResponseWriter, r *http.Request) {
		id, ok := tenant.FromContextOr401(w, r)
		if !ok {
			return
		}
		tb := bucket.NewTenantBucket(c.bkt, id)
		if _, err := blockstore.ReadTenantDeletionMark(r.Context(), tb); errors.Is(err, blockstore.ErrTenantDeletionMarkNotFound) {
			if err := blockstore.WriteTenantDeletionMark(r.Context(), tb, &blockstore.TenantDeletionMark{DeletionTime: c.now().Unix()}); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			c.logger.Info("tenant deletion requested", "tenant", id)
		} else if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// A cleanup pass carries the deletion out now if this compactor owns the tenant.
		select {
		case c.indexUpdate <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	})
}

// DeleteTenantStatusHandler serves DeleteTenantStatusPath as JSON; withTenant puts the request's tenant
// into its context.
func (c *Compactor) DeleteTenantStatusHandler(withTenant func(http.Handler) http.Handler) http.Handler {
	return onlyMethod(http.MethodGet, withTenant, func(w http.ResponseWriter, r *http.Request) {
		id, ok := tenant.FromContextOr401(w, r)
		if !ok {
			return
		}
		tb := bucket.NewTenantBucket(c.bkt, id)
		st := TenantDeletionStatus{TenantID: id}
		_, err := blockstore.ReadTenantDeletionMark(r.Context(), tb)
		switch {
		case err == nil:
			st.DeletionRequested = true
		case !errors.Is(err, blockstore.ErrTenantDeletionMarkNotFound):
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ids, err := tenantBlockDirs(r.Context(), tb)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		st.BlocksRemaining = len(ids)
		st.BlocksDeleted = len(ids) == 0
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
}
