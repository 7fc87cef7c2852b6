package integration

import (
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// bucketIndex reads a tenant's bucket-index.json.gz from a filesystem bucket, or nil when there is none.
func bucketIndex(t *testing.T, bucketDir, tenantID string) *struct {
	Blocks []struct {
		ID string `json:"id"`
	} `json:"blocks"`
	DeletionMarks []struct {
		ID string `json:"id"`
	} `json:"deletion_marks"`
} {
	t.Helper()
	f, err := os.Open(filepath.Join(bucketDir, tenantID, "bucket-index.json.gz"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	var idx struct {
		Blocks []struct {
			ID string `json:"id"`
		} `json:"blocks"`
		DeletionMarks []struct {
			ID string `json:"id"`
		} `json:"deletion_marks"`
	}
	require.NoError(t, json.NewDecoder(zr).Decode(&idx))
	return &idx
}

// blockDirs lists the block directories of a tenant in a filesystem bucket.
func blockDirs(t *testing.T, bucketDir, tenantID string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(bucketDir, tenantID))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if e.IsDir() && len(e.Name()) == 26 { // a ULID
			out = append(out, e.Name())
		}
	}
	return out
}

// blockSamples reads numSamples from a block's meta.json.
func blockSamples(t *testing.T, bucketDir, tenantID, id string) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(bucketDir, tenantID, id, "meta.json"))
	require.NoError(t, err)
	var meta struct {
		Stats struct {
			NumSamples int `json:"numSamples"`
		} `json:"stats"`
	}
	require.NoError(t, json.Unmarshal(raw, &meta))
	return meta.Stats.NumSamples
}

// TestCluster_CompactorMergesReplicaBlocks has three ingesters ship three copies of the same range; the
// compactor leaves one deduplicated block, queries through the store-gateway are unchanged, and the
// copies are deleted after the deletion delay.
func TestCluster_CompactorMergesReplicaBlocks(t *testing.T) {
	bucketDir := t.TempDir()
	c := startCluster(t, clusterOptions{
		ingesters: 3,
		args: []string{
			"-blocks-storage.filesystem.dir=" + bucketDir,
			"-blocks-storage.bucket-store.sync-interval=1s",
		},
		// Read everything from object storage, so the answers prove what the compacted block holds.
		querierArgs: []string{"-querier.query-ingesters-within=1s", "-querier.query-store-after=0s"},
	})
	const tenantID, series, perSeries = "compacted", 10, 60
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	req := &prompb.WriteRequest{}
	for s := range series {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "replicated"}, {Name: "s", Value: itoa(s)}}}
		for i := range perSeries {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: base.Add(time.Duration(i) * time.Minute).UnixMilli(), Value: float64(s*1000 + i)})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	code, body := push(t, c.distributor.url("/api/v1/push"), tenantID, req)
	require.Equal(t, http.StatusNoContent, code, body)
	for _, ing := range c.ingesters {
		resp, err := http.Post(ing.url("/ingester/flush?wait=true"), "", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
	}
	copies := blockDirs(t, bucketDir, tenantID)
	require.Len(t, copies, 3, "each replica shipped its copy")
	for _, id := range copies {
		require.Equal(t, series*perSeries, blockSamples(t, bucketDir, tenantID, id))
	}

	storeGateway := c.newProcess("store-gateway", 0, "-target=store-gateway", "-store-gateway.sharding-ring.instance-addr=127.0.0.1", "-store-gateway.sharding-ring.instance-id=store-gateway")
	storeGateway.start()
	compactor := c.newProcess("compactor", 0, "-target=compactor",
		"-compactor.ring.instance-addr=127.0.0.1", "-compactor.ring.instance-id=compactor",
		"-compactor.compaction-interval=1s", "-compactor.cleanup-interval=1s", "-compactor.deletion-delay=3s")
	compactor.start()

	var compacted string
	require.Eventually(t, func() bool {
		idx := bucketIndex(t, bucketDir, tenantID)
		if idx == nil || len(idx.Blocks) != 1 {
			return false
		}
		compacted = idx.Blocks[0].ID
		return !strings.Contains(strings.Join(copies, ","), compacted)
	}, 60*time.Second, 100*time.Millisecond, "the compactor never left a single block in the bucket index")
	require.Equal(t, series*perSeries, blockSamples(t, bucketDir, tenantID, compacted), "the compacted block holds one copy's samples")

	var matrix []matrixSeries
	require.Eventually(t, func() bool {
		code, resp := getAPI(t, c.querier.url("/prometheus"), "/api/v1/query", tenantID, url.Values{
			"query": {"replicated[3h]"}, "time": {formatTime(time.Now())},
		})
		return code == http.StatusOK && json.Unmarshal(resp.Data, &queryResult{Result: &matrix}) == nil && len(matrix) == series
	}, 30*time.Second, 100*time.Millisecond, "the store-gateway never served the compacted block")
	for _, s := range matrix {
		require.Len(t, s.Values, perSeries, "series %v", s.Metric)
	}

	require.Eventually(t, func() bool {
		return len(blockDirs(t, bucketDir, tenantID)) == 1
	}, 60*time.Second, 100*time.Millisecond, "the replica copies were never deleted after the deletion delay")
	require.Equal(t, []string{compacted}, blockDirs(t, bucketDir, tenantID))
}
