package blockstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// measureShipperTSDB writes blocks 2h blocks of series series (a sample every 15s) into a TSDB set up like
// an ingester's and returns its directory. The TSDB stays open until the benchmark ends.
func measureShipperTSDB(b *testing.B, blocks, series int) string {
	dir := b.TempDir()
	opts := promtsdb.DefaultOptions()
	opts.MinBlockDuration = testBlockRange
	opts.MaxBlockDuration = testBlockRange
	db, err := promtsdb.Open(dir, testLogger, nil, opts, nil)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, db.Close()) })
	db.DisableCompactions()

	step := (15 * time.Second).Milliseconds()
	refs := make([]storage.SeriesRef, series)
	lsets := make([]labels.Labels, series)
	for s := range lsets {
		lsets[s] = labels.FromStrings("__name__", "http_requests_total", "instance", fmt.Sprintf("host-%03d", s), "job", "api")
	}
	for w := range blocks {
		minT := int64(w) * testBlockRange
		app := db.Appender(context.Background())
		for ts := minT; ts < minT+testBlockRange; ts += step {
			for s := range refs {
				refs[s], err = app.Append(refs[s], lsets[s], ts, float64(ts/step*int64(s%7+1)))
				require.NoError(b, err)
			}
		}
		require.NoError(b, app.Commit())
		require.NoError(b, db.CompactHead(promtsdb.NewRangeHead(db.Head(), minT, minT+testBlockRange-1)))
	}
	require.Len(b, db.Blocks(), blocks)
	return dir
}

// measureBucketOps returns strata_bucket_operations_total by operation.
func measureBucketOps(b *testing.B, reg *prometheus.Registry) map[string]float64 {
	mfs, err := reg.Gather()
	require.NoError(b, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "strata_bucket_operations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// BenchmarkShipper_BucketOperationsPerBlock ships 12 2h blocks (a day of one tenant's ingester TSDB) into
// an empty filesystem bucket through the instrumented bucket client, and reports the object storage
// operations per shipped block. restart-*/block are the operations of a restarted shipper that lost its
// record of shipped blocks and finds them all complete in the bucket.
func BenchmarkShipper_BucketOperationsPerBlock(b *testing.B) {
	const blocks = 12
	ctx := context.Background()
	dir := measureShipperTSDB(b, blocks, 200)

	var ops, restartOps map[string]float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		require.NoError(b, os.RemoveAll(filepath.Join(dir, ShipperStateFilename)))
		reg := prometheus.NewRegistry()
		bkt, err := bucket.NewClient(ctx, bucket.Config{
			Backend:    bucket.BackendFilesystem,
			Filesystem: bucket.FilesystemConfig{Dir: b.TempDir()},
		}, "ingester", reg, testLogger)
		require.NoError(b, err)
		tbkt := bucket.NewTenantBucket(bkt, "tenant-1")
		s := NewShipper(dir, tbkt, "tenant-1", "ingester-1", testLogger, nil)
		b.StartTimer()

		n, err := s.Sync(ctx)

		b.StopTimer()
		require.NoError(b, err)
		require.Equal(b, blocks, n)
		ops = measureBucketOps(b, reg)

		require.NoError(b, os.Remove(filepath.Join(dir, ShipperStateFilename)))
		n, err = NewShipper(dir, tbkt, "tenant-1", "ingester-1", testLogger, nil).Sync(ctx)
		require.NoError(b, err)
		require.Zero(b, n)
		after := measureBucketOps(b, reg)
		restartOps = map[string]float64{}
		for op, v := range after {
			restartOps[op] = v - ops[op]
		}
		require.NoError(b, bkt.Close())
		b.StartTimer()
	}
	b.StopTimer()

	// reads are get, get_range, exists, attributes and iter; total adds upload and delete.
	report := func(prefix string, ops map[string]float64, each ...string) {
		total := 0.0
		for _, v := range ops {
			total += v
		}
		for _, op := range each {
			b.ReportMetric(ops[op]/blocks, prefix+op+"/block")
		}
		b.ReportMetric((total-ops[bucket.OpUpload]-ops[bucket.OpDelete])/blocks, prefix+"reads/block")
		b.ReportMetric(total/blocks, prefix+"total-ops/block")
	}
	report("", ops, bucket.OpUpload, bucket.OpGet, bucket.OpExists, bucket.OpAttributes)
	report("restart-", restartOps, bucket.OpUpload)
}
