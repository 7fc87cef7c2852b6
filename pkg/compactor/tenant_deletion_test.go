package compactor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/tenant"
)

func tenantDeletionMux(c *Compactor) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(DeleteTenantPath, c.DeleteTenantHandler(tenant.Middleware(true)))
	mux.Handle(DeleteTenantStatusPath, c.DeleteTenantStatusHandler(tenant.Middleware(true)))
	return mux
}

func tenantDeletionStatus(t *testing.T, h http.Handler, id string) TenantDeletionStatus {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, DeleteTenantStatusPath, nil)
	req.Header.Set(tenant.OrgIDHeader, id)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var st TenantDeletionStatus
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &st))
	return st
}

func TestCompactor_DeletesEveryBlockOfAMarkedTenant(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	base := testBase()
	for _, id := range []string{"gone", "kept"} {
		shipBlock(t, bkt, id, blockSpec{minT: base, maxT: base + 2*hourMs, series: 2, ingester: "i1"})
		shipBlock(t, bkt, id, blockSpec{minT: base + 2*hourMs, maxT: base + 4*hourMs, series: 2, ingester: "i1"})
	}
	cfg := testConfig(t)
	c, _ := newTestCompactor(t, cfg, bkt)
	require.NoError(t, c.CleanupAll(ctx))
	h := tenantDeletionMux(c)
	require.Equal(t, TenantDeletionStatus{TenantID: "gone", BlocksRemaining: 2}, tenantDeletionStatus(t, h, "gone"))

	req := httptest.NewRequest(http.MethodPost, DeleteTenantPath, nil)
	req.Header.Set(tenant.OrgIDHeader, "gone")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, TenantDeletionStatus{TenantID: "gone", DeletionRequested: true, BlocksRemaining: 2}, tenantDeletionStatus(t, h, "gone"))

	// No deletion delay: one pass deletes every block and the bucket index.
	require.NoError(t, c.CleanupAll(ctx))
	require.Equal(t, TenantDeletionStatus{TenantID: "gone", DeletionRequested: true, BlocksDeleted: true}, tenantDeletionStatus(t, h, "gone"))
	require.Empty(t, blockDirs(t, bkt, "gone"))
	_, err := blockstore.ReadIndex(ctx, bucket.NewTenantBucket(bkt, "gone"))
	require.ErrorIs(t, err, blockstore.ErrIndexNotFound)
	mark, err := blockstore.ReadTenantDeletionMark(ctx, bucket.NewTenantBucket(bkt, "gone"))
	require.NoError(t, err)
	require.NotZero(t, mark.FinishedTime)
	require.Len(t, blockDirs(t, bkt, "kept"), 2, "the other tenant is untouched")
	require.Len(t, tenantIndex(t, bkt, "kept").Blocks, 2)

	// A block shipped after the deletion goes at the next pass: the mark stays.
	shipBlock(t, bkt, "gone", blockSpec{minT: base + 4*hourMs, maxT: base + 6*hourMs, series: 1, ingester: "i1"})
	require.NoError(t, c.CompactAll(ctx))
	require.Empty(t, blockDirs(t, bkt, "gone"))
}

func TestTenantDeletionAPI_RefusesHostileRequests(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	c, _ := newTestCompactor(t, testConfig(t), bkt)
	h := tenantDeletionMux(c)
	for _, tc := range []struct {
		name, method, path, tenant string
		want                       int
	}{
		{name: "delete with GET", method: http.MethodGet, path: DeleteTenantPath, tenant: "a", want: http.StatusMethodNotAllowed},
		{name: "status with POST", method: http.MethodPost, path: DeleteTenantStatusPath, tenant: "a", want: http.StatusMethodNotAllowed},
		{name: "wrong method without tenant", method: http.MethodPut, path: DeleteTenantPath, want: http.StatusMethodNotAllowed},
		{name: "no tenant", method: http.MethodPost, path: DeleteTenantPath, want: http.StatusUnauthorized},
		{name: "status without tenant", method: http.MethodGet, path: DeleteTenantStatusPath, want: http.StatusUnauthorized},
		{name: "reserved tenant", method: http.MethodPost, path: DeleteTenantPath, tenant: "rules", want: http.StatusBadRequest},
		{name: "dot-dot tenant", method: http.MethodPost, path: DeleteTenantPath, tenant: "..", want: http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.tenant != "" {
				req.Header.Set(tenant.OrgIDHeader, tc.tenant)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			require.Empty(t, bkt.Objects(), "nothing is written")
		})
	}
}
