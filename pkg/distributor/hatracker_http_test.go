package distributor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
)

func TestHATrackerPage(t *testing.T) {
	clock := &fakeClock{now: testNow}
	tr := newTestTracker(t, inmemory.New(HAClustersCodec{}), clock)
	ctx := context.Background()
	requireElected(t, tr.checkReplica(ctx, "t2", "c1", "r1", 0))
	requireElected(t, tr.checkReplica(ctx, "t1", "<script>", "r2", 0))
	clock.Add(time.Second)
	requireElected(t, tr.checkReplica(ctx, "t1", "a", "r3", 0))

	for name, req := range map[string]*http.Request{
		"format=json": httptest.NewRequest(http.MethodGet, "/distributor/ha_tracker?format=json", nil),
		"Accept":      httptest.NewRequest(http.MethodGet, "/distributor/ha_tracker", nil),
	} {
		t.Run(name, func(t *testing.T) {
			if name == "Accept" {
				req.Header.Set("Accept", "application/json")
			}
			rec := httptest.NewRecorder()
			tr.ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var got []electedReplica
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
			require.Len(t, got, 3)
			require.Equal(t, []string{"t1/<script>", "t1/a", "t2/c1"}, []string{got[0].Tenant + "/" + got[0].Cluster, got[1].Tenant + "/" + got[1].Cluster, got[2].Tenant + "/" + got[2].Cluster})
			a := got[1]
			require.Equal(t, "r3", a.Replica)
			require.Equal(t, testNow.Add(time.Second).UTC(), a.ElectedAt)
			require.Equal(t, testNow.Add(time.Second).UTC(), a.LastUpdate)
			require.Equal(t, testNow.Add(time.Second+testHAConfig.FailoverTimeout).UTC(), a.FailoverAt)
			require.Equal(t, int64(1), a.ElectedChanges)
		})
	}

	rec := httptest.NewRecorder()
	tr.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/distributor/ha_tracker", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Header().Get("Content-Type"), "text/html")
	require.Contains(t, rec.Body.String(), "<td>r3</td>")
	require.Contains(t, rec.Body.String(), "&lt;script&gt;", "names are escaped")
	require.NotContains(t, rec.Body.String(), "<td><script>")

	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		tr.ServeHTTP(rec, httptest.NewRequest(method, "/distributor/ha_tracker", nil))
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code, method)
		require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	}
}

func TestHATrackerPage_EmptyIsAnEmptyList(t *testing.T) {
	tr := newTestTracker(t, inmemory.New(HAClustersCodec{}), &fakeClock{now: testNow})
	rec := httptest.NewRecorder()
	tr.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/distributor/ha_tracker?format=json", nil))
	require.Equal(t, "[]\n", rec.Body.String())
}
