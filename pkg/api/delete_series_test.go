package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

type invalidations []string

func (i *invalidations) Invalidate(id string) { *i = append(*i, id) }

func newDeleteSeriesTest(t *testing.T, enabled bool) (http.Handler, objstore.Bucket, *invalidations) {
	t.Helper()
	limits := validation.DefaultLimits()
	limits.SeriesDeletionEnabled = enabled
	bkt := objstore.NewInMemBucket()
	inv := &invalidations{}
	a := NewDeleteSeriesAPI(bkt, validation.NewOverrides(limits, nil), inv, slog.New(slog.DiscardHandler))
	return TenantMiddleware(true)(a), bkt, inv
}

func deleteSeriesRequest(method, tenantID, query string, body string) *http.Request {
	req := httptest.NewRequest(method, "/prometheus/api/v1/admin/tsdb/delete_series?"+query, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if tenantID != "" {
		req.Header.Set(tenant.OrgIDHeader, tenantID)
	}
	return req
}

func TestDeleteSeries_StoresATombstoneAndInvalidatesTheCache(t *testing.T) {
	h, bkt, inv := newDeleteSeriesTest(t, true)
	form := url.Values{"match[]": {`up{job="a"}`, `node_load1`}, "start": {"100"}, "end": {"2000-01-01T00:00:00Z"}}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, deleteSeriesRequest(http.MethodPost, "t1", "", form.Encode()))
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Equal(t, invalidations{"t1"}, *inv)

	ts, err := blockstore.ListTombstones(context.Background(), bucket.NewTenantBucket(bkt, "t1"))
	require.NoError(t, err)
	require.Len(t, ts, 1)
	require.Equal(t, []string{`up{job="a"}`, `node_load1`}, ts[0].Selectors)
	require.Equal(t, int64(100_000), ts[0].MinTime)
	require.Equal(t, int64(946684800_000), ts[0].MaxTime)

	// No start or end: all of time, as in Prometheus, up to the latest sample that can exist (now plus the
	// creation grace period), so that samples written later are not deleted.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, deleteSeriesRequest(http.MethodPut, "t1", "match[]=up", ""))
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	ts, err = blockstore.ListTombstones(context.Background(), bucket.NewTenantBucket(bkt, "t1"))
	require.NoError(t, err)
	require.Len(t, ts, 2)
	require.Equal(t, timestamp(minTime), ts[1].MinTime)
	grace := time.Duration(validation.DefaultLimits().CreationGracePeriod)
	require.InDelta(t, time.Now().Add(grace).UnixMilli(), ts[1].MaxTime, float64(time.Minute.Milliseconds()))

	// A range wholly after that deletes nothing and stores nothing.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, deleteSeriesRequest(http.MethodPost, "t1", "match[]=up&start="+strconv.FormatInt(time.Now().Add(grace+time.Hour).Unix(), 10), ""))
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	ts, err = blockstore.ListTombstones(context.Background(), bucket.NewTenantBucket(bkt, "t1"))
	require.NoError(t, err)
	require.Len(t, ts, 2)
}

func TestDeleteSeries_RefusesHostileAndDisallowedRequests(t *testing.T) {
	tests := []struct {
		name       string
		disabled   bool
		method     string
		tenant     string
		query      string
		body       string
		wantStatus int
		wantError  string
	}{
		{name: "wrong method", method: http.MethodGet, tenant: "t1", query: "match[]=up", wantStatus: 405, wantError: "only POST and PUT"},
		{name: "no tenant", method: http.MethodPost, query: "match[]=up", wantStatus: 401, wantError: "no tenant ID"},
		{name: "reserved tenant", method: http.MethodPost, tenant: "rules", query: "match[]=up", wantStatus: 400, wantError: "reserved"},
		{name: "disabled", disabled: true, method: http.MethodPost, tenant: "t1", query: "match[]=up", wantStatus: 403, wantError: "series_deletion_enabled"},
		{name: "no match", method: http.MethodPost, tenant: "t1", wantStatus: 400, wantError: "no match[] parameter"},
		{name: "garbage selector", method: http.MethodPost, tenant: "t1", query: "match[]=%7Bjob%3D", wantStatus: 400, wantError: "invalid match[] selector"},
		{name: "match-all selector", method: http.MethodPost, tenant: "t1", query: "match[]=%7Bjob%3D~%22.*%22%7D", wantStatus: 400, wantError: "non-empty matcher"},
		{name: "garbage start", method: http.MethodPost, tenant: "t1", query: "match[]=up&start=yesterday", wantStatus: 400, wantError: "invalid parameter \"start\""},
		{name: "end before start", method: http.MethodPost, tenant: "t1", query: "match[]=up&start=10&end=5", wantStatus: 400, wantError: "before start"},
		{name: "body too large", method: http.MethodPost, tenant: "t1", body: "match[]=" + strings.Repeat("a", maxDeleteSeriesRequestBytes), wantStatus: 413, wantError: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, bkt, _ := newDeleteSeriesTest(t, !tt.disabled)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, deleteSeriesRequest(tt.method, tt.tenant, tt.query, tt.body))
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			var resp response
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp))
			require.Contains(t, resp.Error, tt.wantError)
			if tt.wantStatus == 405 {
				require.Equal(t, "POST, PUT", rec.Header().Get("Allow"))
			}
			require.Empty(t, bkt.(*objstore.InMemBucket).Objects(), "nothing is stored")
		})
	}
}

func TestDeleteSeries_BoundsPendingDeletions(t *testing.T) {
	h, bkt, _ := newDeleteSeriesTest(t, true)
	for range blockstore.MaxPendingTombstones {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, deleteSeriesRequest(http.MethodPost, "t1", "match[]=up", ""))
		require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, deleteSeriesRequest(http.MethodPost, "t1", "match[]=up", ""))
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Contains(t, rec.Body.String(), "not applied yet")

	// Another tenant has its own budget.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, deleteSeriesRequest(http.MethodPost, "t2", "match[]=up", ""))
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Len(t, bkt.(*objstore.InMemBucket).Objects(), blockstore.MaxPendingTombstones+1)
}
