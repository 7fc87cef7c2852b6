package memberlist

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestKV_StatusPageListsMembersAndKeys(t *testing.T) {
	kvs := startCluster(t, 2, nil)
	require.NoError(t, ringClient(kvs[0]).CAS(context.Background(), ringKey, addInstance("ingester-1")))
	require.Eventually(t, func() bool { return len(getDesc(t, kvs[1]).Instances) == 1 }, convergeTimeout, 10*time.Millisecond)

	t.Run("html", func(t *testing.T) {
		rec := httptest.NewRecorder()
		kvs[1].ServeHTTP(rec, httptest.NewRequest("GET", "/memberlist", nil))
		require.Equal(t, 200, rec.Code)
		require.Contains(t, rec.Header().Get("Content-Type"), "text/html")
		body := rec.Body.String()
		for _, k := range kvs {
			require.Contains(t, body, k.NodeName())
			require.Contains(t, body, k.Addr())
		}
		require.Contains(t, body, "alive")
		require.Contains(t, body, ringKey)
		require.Contains(t, body, "ring.Desc/json")
		require.Contains(t, body, "ingester-1:9095", "the value is shown as JSON")
	})

	t.Run("json", func(t *testing.T) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/memberlist", nil)
		req.Header.Set("Accept", "application/json")
		kvs[1].ServeHTTP(rec, req)
		require.Equal(t, 200, rec.Code)
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		var page statusPage
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
		require.Equal(t, kvs[1].NodeName(), page.Self)
		require.Len(t, page.Members, 2)
		for _, m := range page.Members {
			require.Equal(t, "alive", m.State)
		}
		require.Len(t, page.Keys, 1)
		key := page.Keys[0]
		require.Equal(t, ringKey, key.Key)
		require.Equal(t, "ring.Desc/json", key.Codec)
		require.Positive(t, key.Size)
		require.Positive(t, key.Version)
		var value struct {
			Instances map[string]json.RawMessage `json:"instances"`
		}
		require.NoError(t, json.Unmarshal(key.Value, &value))
		require.Contains(t, value.Instances, "ingester-1")
	})
}

func TestKV_StatusPageBeforeStart(t *testing.T) {
	k := newTestKV(t, testConfig())
	rec := httptest.NewRecorder()
	k.ServeHTTP(rec, httptest.NewRequest("GET", "/memberlist", nil))
	require.Contains(t, rec.Body.String(), "not started")
	require.Contains(t, rec.Body.String(), "no keys")
}

func TestKV_StatusPageShowsValuesThatAreNotJSONBySizeOnly(t *testing.T) {
	k := newTestKV(t, testConfig())
	require.NoError(t, k.Client(setCodec{}).CAS(context.Background(), "set", addToSet("x", "y")))
	page := k.status()
	require.Len(t, page.Keys, 1)
	require.Equal(t, keyStatus{Key: "set", Codec: "set/lines", Version: 1, Size: 3}, page.Keys[0])

	rec := httptest.NewRecorder()
	k.ServeHTTP(rec, httptest.NewRequest("GET", "/memberlist", nil))
	require.Contains(t, rec.Body.String(), "(not JSON)")
}
