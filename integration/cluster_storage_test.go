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

// startStorageCluster starts 3 ingesters, a distributor and a querier that reads only object storage,
// all sharing the filesystem bucket bucketDir.
func startStorageCluster(t *testing.T, bucketDir string) *cluster {
	return startCluster(t, clusterOptions{
		ingesters: 3,
		args: []string{
			"-blocks-storage.filesystem.dir=" + bucketDir,
			"-blocks-storage.bucket-store.sync-interval=1s",
		},
		// Read everything from object storage, so the answers prove what the compacted block holds.
		querierArgs: []string{"-querier.query-ingesters-within=1s", "-querier.query-store-after=0s"},
	})
}

// shipReplicaCopies pushes series×perSeries samples with RF=3 and flushes every ingester, so the bucket
// holds three copies of the same range; it returns the copies' block IDs.
func shipReplicaCopies(t *testing.T, c *cluster, bucketDir, tenantID string, series, perSeries int) []string {
	t.Helper()
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
		_ = resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
	}
	copies := blockDirs(t, bucketDir, tenantID)
	// A push succeeds on a quorum: a replica that timed out may hold part of the data, or none (then it
	// ships no block); the compacted block must hold the union.
	require.GreaterOrEqual(t, len(copies), 2, "a quorum of replicas shipped a copy")
	complete := 0
	for _, id := range copies {
		n := blockSamples(t, bucketDir, tenantID, id)
		require.LessOrEqual(t, n, series*perSeries)
		if n == series*perSeries {
			complete++
		}
	}
	require.GreaterOrEqual(t, complete, 2, "a quorum of replicas holds every acknowledged sample")
	return copies
}

// requireQueryReturnsEachSampleOnce reads every series back through the querier (object storage only).
func requireQueryReturnsEachSampleOnce(t *testing.T, c *cluster, tenantID string, series, perSeries int) {
	t.Helper()
	var matrix []matrixSeries
	require.Eventually(t, func() bool {
		code, resp := getAPI(t, c.querier.url("/prometheus"), "/api/v1/query", tenantID, url.Values{
			"query": {"replicated[3h]"}, "time": {formatTime(time.Now())},
		})
		return code == http.StatusOK && json.Unmarshal(resp.Data, &queryResult{Result: &matrix}) == nil && len(matrix) == series
	}, 30*time.Second, 100*time.Millisecond, "the store-gateway never served the compacted block")
	for _, s := range matrix {
		require.Len(t, s.Values, perSeries, "series %v: no sample missing, none twice", s.Metric)
	}
}

// waitForOneCompactedBlock waits until the bucket index lists a single block not marked for deletion,
// and that block is none of copies.
func waitForOneCompactedBlock(t *testing.T, bucketDir, tenantID string, copies []string) string {
	t.Helper()
	var compacted string
	require.Eventually(t, func() bool {
		idx := bucketIndex(t, bucketDir, tenantID)
		if idx == nil {
			return false
		}
		marked := map[string]bool{}
		for _, m := range idx.DeletionMarks {
			marked[m.ID] = true
		}
		var live []string
		for _, b := range idx.Blocks {
			if !marked[b.ID] {
				live = append(live, b.ID)
			}
		}
		if len(live) != 1 {
			return false
		}
		compacted = live[0]
		return !strings.Contains(strings.Join(copies, ","), compacted)
	}, 60*time.Second, 100*time.Millisecond, "the compactor never left a single live block in the bucket index")
	return compacted
}

func (c *cluster) startStoreGateway() *strataProcess {
	p := c.newProcess("store-gateway", 0, "-target=store-gateway", "-store-gateway.sharding-ring.instance-addr=127.0.0.1", "-store-gateway.sharding-ring.instance-id=store-gateway")
	p.start()
	return p
}

func (c *cluster) newCompactor(deletionDelay string) *strataProcess {
	return c.newProcess("compactor", 0, "-target=compactor",
		"-compactor.ring.instance-addr=127.0.0.1", "-compactor.ring.instance-id=compactor",
		"-compactor.compaction-interval=1s", "-compactor.cleanup-interval=1s", "-compactor.deletion-delay="+deletionDelay)
}

// TestCluster_CompactorMergesReplicaBlocks has three ingesters ship three copies of the same range; the
// compactor leaves one deduplicated block, queries through the store-gateway are unchanged, and the
// copies are deleted after the deletion delay.
func TestCluster_CompactorMergesReplicaBlocks(t *testing.T) {
	bucketDir := t.TempDir()
	c := startStorageCluster(t, bucketDir)
	const tenantID, series, perSeries = "compacted", 10, 60
	copies := shipReplicaCopies(t, c, bucketDir, tenantID, series, perSeries)

	c.startStoreGateway()
	c.newCompactor("3s").start()
	compacted := waitForOneCompactedBlock(t, bucketDir, tenantID, copies)
	require.Equal(t, series*perSeries, blockSamples(t, bucketDir, tenantID, compacted), "the compacted block holds one copy's samples")
	requireQueryReturnsEachSampleOnce(t, c, tenantID, series, perSeries)

	require.Eventually(t, func() bool {
		return len(blockDirs(t, bucketDir, tenantID)) == 1
	}, 60*time.Second, 100*time.Millisecond, "the replica copies were never deleted after the deletion delay")
	require.Equal(t, []string{compacted}, blockDirs(t, bucketDir, tenantID))
}

// TestCluster_CompactorSurvivesKillDashNine kills the compactor with SIGKILL at several points of its work
// and restarts it: the result is the same single block, with no sample missing or counted twice.
func TestCluster_CompactorSurvivesKillDashNine(t *testing.T) {
	bucketDir := t.TempDir()
	c := startStorageCluster(t, bucketDir)
	const tenantID, series, perSeries = "crashy", 200, 120
	copies := shipReplicaCopies(t, c, bucketDir, tenantID, series, perSeries)
	c.startStoreGateway()

	compactor := c.newCompactor("1h")
	// Crash points spread over the pass: before, during and after the download, merge and upload.
	for _, after := range []time.Duration{20, 80, 150, 250, 400, 700} {
		compactor.startNoWait()
		time.Sleep(after * time.Millisecond) // picks where the crash lands; nothing waits on it
		compactor.kill()
	}
	compactor.start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bucket blocks: %v\nindex: %+v\ncompactor log:\n%s", blockDirs(t, bucketDir, tenantID), bucketIndex(t, bucketDir, tenantID), compactor.log)
		}
	})
	compacted := waitForOneCompactedBlock(t, bucketDir, tenantID, copies)
	require.Equal(t, series*perSeries, blockSamples(t, bucketDir, tenantID, compacted))
	requireQueryReturnsEachSampleOnce(t, c, tenantID, series, perSeries)
}
