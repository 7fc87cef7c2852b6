package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// storeGatewayBlocks returns how many blocks of a tenant the store-gateway of p has loaded.
func storeGatewayBlocks(t *testing.T, p *strataProcess, tenantID string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.url("/store-gateway/tenants"), nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var tenants []struct {
		Tenant string            `json:"tenant"`
		Blocks []json.RawMessage `json:"blocks"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tenants))
	for _, tb := range tenants {
		if tb.Tenant == tenantID {
			return len(tb.Blocks)
		}
	}
	return 0
}

// TestStorage_ShippedDataSurvivesLosingTheIngesterDisk pushes, flushes the head to object storage, wipes
// every local file and restarts: every sample older than the flush comes back through a store-gateway. It
// runs against the filesystem backend and a real S3 server.
func TestStorage_ShippedDataSurvivesLosingTheIngesterDisk(t *testing.T) {
	t.Run("filesystem", func(t *testing.T) {
		testShippedDataSurvives(t, "-blocks-storage.filesystem.dir="+t.TempDir())
	})
	t.Run("s3", func(t *testing.T) {
		testShippedDataSurvives(t, startVersityGW(t).strataArgs()...)
	})
}

func testShippedDataSurvives(t *testing.T, bucketArgs ...string) {
	dataDir := t.TempDir()
	p := startStrata(t, dataDir, append([]string{
		"-querier.query-store-after=0s",
		"-compactor.compaction-interval=1s",
		"-blocks-storage.bucket-store.sync-interval=1s",
	}, bucketArgs...)...)
	const series = 5
	base := time.Now().Add(-90 * time.Minute).Truncate(time.Second)
	req := &prompb.WriteRequest{}
	for s := range series {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "shipped"}, {Name: "s", Value: itoa(s)}}}
		for i := range 60 {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: base.Add(time.Duration(i) * time.Minute).UnixMilli(), Value: float64(s*100 + i)})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	code, body := push(t, p.url("/api/v1/push"), "durable", req)
	require.Equal(t, http.StatusNoContent, code, body)

	resp, err := http.Post(p.url("/ingester/flush?wait=true"), "", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	// The compactor writes the bucket index, then the store-gateway loads the block.
	require.Eventually(t, func() bool { return storeGatewayBlocks(t, p, "durable") == 1 }, 30*time.Second, 100*time.Millisecond)

	p.kill()
	require.NoError(t, os.RemoveAll(dataDir))
	require.NoError(t, os.MkdirAll(dataDir, 0o755))
	p.restart()
	entries, err := filepath.Glob(filepath.Join(dataDir, "tsdb", "durable", "*"))
	require.NoError(t, err)
	require.Empty(t, entries, "the ingester has no local data for the tenant")

	var matrix []matrixSeries
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/query", "durable", url.Values{
		"query": {"shipped[2h]"}, "time": {formatTime(base.Add(time.Hour))},
	}, &queryResult{Result: &matrix})
	require.Len(t, matrix, series)
	for _, s := range matrix {
		require.Len(t, s.Values, 60, "series %v", s.Metric)
	}
	var labelValues []string
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/label/s/values", "durable", url.Values{}, &labelValues)
	require.Equal(t, []string{"0", "1", "2", "3", "4"}, labelValues)
}
