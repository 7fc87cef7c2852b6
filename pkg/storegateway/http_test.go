package storegateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

func TestTenantsHandler(t *testing.T) {
	tt := newTwoTenants(t, objstore.NewInMemBucket())
	h := startStoreGateway(t, testConfig(t), tt.bkt).TenantsHandler()

	req := httptest.NewRequest(http.MethodGet, "/store-gateway/tenants", nil)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	var got []TenantBlocks
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got, 2)
	require.Equal(t, "tenant-1", got[0].Tenant)
	require.Len(t, got[0].Blocks, len(tt.blocks1))
	require.Less(t, got[0].Blocks[0].MinTime, got[0].Blocks[1].MinTime)
	require.NotZero(t, got[0].Blocks[0].Series)

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/store-gateway/tenants", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "<h2>tenant-2</h2>")
	require.Contains(t, rec.Body.String(), tt.blocks2[0].String())
	require.Contains(t, rec.Body.String(), "1970-01-01T00:00:00Z")

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/store-gateway/tenants", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}
