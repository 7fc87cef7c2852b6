package ring

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
)

// startedRing returns a started ring over an inmemory store holding desc, with the clock at testNow.
func startedRing(t *testing.T, desc *Desc) *Ring {
	t.Helper()
	ctx := context.Background()
	store := inmemory.New(DescCodec{})
	require.NoError(t, store.CAS(ctx, "ring", func(any) (any, bool, error) { return desc, false, nil }))
	r, err := New(Config{HeartbeatTimeout: time.Minute, ReplicationFactor: 3}, "ingester", "ring", store, nil, nil)
	require.NoError(t, err)
	r.now = func() time.Time { return testNow }
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { require.NoError(t, r.Stop(ctx)) })
	return r
}

func TestServeHTTP_JSONListsInstances(t *testing.T) {
	stale := inst("b", "z2", 1<<31)
	stale.Timestamp = testNow.Add(-5 * time.Minute).UnixMilli()
	r := startedRing(t, descOf(inst("a", "z1", 0), stale))

	req := httptest.NewRequest(http.MethodGet, "/ingester/ring", nil)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))

	var got ringStatus
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Equal(t, "ingester", got.Name)
	require.Len(t, got.Instances, 2)
	a, b := got.Instances[0], got.Instances[1]
	require.Equal(t, "a", a.ID)
	require.Equal(t, ACTIVE, a.State)
	require.Equal(t, "a:9095", a.Address)
	require.Equal(t, "z1", a.Zone)
	require.Equal(t, 1, a.Tokens)
	require.InDelta(t, 50.0, a.Ownership, 1e-9)
	require.True(t, a.Healthy)
	require.False(t, b.Healthy)
	require.InDelta(t, 300.0, b.HeartbeatAgeSeconds, 1e-9)
}

func TestServeHTTP_HTMLTable(t *testing.T) {
	r := startedRing(t, descOf(inst("ingester-<1>", "z1", 7)))
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ingester/ring", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, "<table>")
	require.Contains(t, body, "ingester-&lt;1&gt;", "IDs are escaped")
	require.Contains(t, body, "100.0%")
	require.Contains(t, body, "healthy")
}

func TestServeHTTP_Forget(t *testing.T) {
	stale := inst("stale", "", 2)
	stale.Timestamp = testNow.Add(-time.Hour).UnixMilli()
	tests := map[string]struct {
		form     string
		wantCode int
		wantBody string
		wantGone string
	}{
		"unhealthy instance is forgotten": {form: "forget=stale", wantCode: http.StatusSeeOther, wantGone: "stale"},
		"healthy instance is refused":     {form: "forget=healthy", wantCode: http.StatusBadRequest, wantBody: "is healthy"},
		"unknown instance is refused":     {form: "forget=nobody", wantCode: http.StatusBadRequest, wantBody: "not in the ring"},
		"missing field":                   {form: "", wantCode: http.StatusBadRequest, wantBody: "missing form field"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := startedRing(t, descOf(inst("healthy", "", 1), stale))
			req := httptest.NewRequest(http.MethodPost, "/ingester/ring", strings.NewReader(tc.form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.wantBody)
			if tc.wantCode == http.StatusSeeOther {
				loc, err := url.Parse(rec.Header().Get("Location"))
				require.NoError(t, err)
				require.Equal(t, "/ingester/ring", loc.Path)
			}
			if tc.wantGone != "" {
				require.Eventually(t, func() bool {
					_, ok := r.Ownership()[tc.wantGone]
					return !ok
				}, 5*time.Second, time.Millisecond)
			}
			require.Contains(t, r.Ownership(), "healthy", "healthy instances are never forgotten")
		})
	}
}

func TestServeHTTP_RejectsOtherMethods(t *testing.T) {
	r := startedRing(t, descOf(inst("a", "", 1)))
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/ingester/ring", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

func TestServeHTTP_ForgetsOnlyOnPOST(t *testing.T) {
	stale := inst("stale", "", 2)
	stale.Timestamp = testNow.Add(-time.Hour).UnixMilli()
	r := startedRing(t, descOf(inst("healthy", "", 1), stale))

	// A link, a prefetch or a crawler following ?forget= only shows the page.
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ingester/ring?forget=stale", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `<form method="POST">`, "the Forget buttons post")
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(method, "/ingester/ring?forget=stale", nil))
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code, method)
		require.Equal(t, "GET, HEAD, POST", rec.Header().Get("Allow"), method)
	}
	// Forget writes the KV store before it answers; the store, not the ring's lagging view, shows it did not.
	desc, err := r.kv.Get(context.Background(), r.key)
	require.NoError(t, err)
	require.Contains(t, desc.(*Desc).Instances, "stale")
}
