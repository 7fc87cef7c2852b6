package storegateway

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"
)

// measureReadyBlocks writes blocks 2h blocks of series series (a sample every 15s) into a TSDB set up like
// an ingester's and returns the block directories.
func measureReadyBlocks(b *testing.B, blocks, series int) []string {
	dir := b.TempDir()
	opts := promtsdb.DefaultOptions()
	opts.MinBlockDuration = testBlockRange
	opts.MaxBlockDuration = testBlockRange
	opts.WALSegmentSize = -1 // no WAL: it does not change the blocks
	db, err := promtsdb.Open(dir, testLogger, nil, opts, nil)
	require.NoError(b, err)
	db.DisableCompactions()

	step := (15 * time.Second).Milliseconds()
	lsets := make([]labels.Labels, series)
	for s := range lsets {
		lsets[s] = labels.FromStrings("__name__", "http_requests_total", "code", "200",
			"instance", fmt.Sprintf("10.0.%d.%d:9100", s/100, s%100), "job", "api")
	}
	refs := make([]storage.SeriesRef, series)
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
	var dirs []string
	for _, blk := range db.Blocks() {
		dirs = append(dirs, blk.Dir())
	}
	require.NoError(b, db.Close())
	require.Len(b, dirs, blocks)
	return dirs
}

// BenchmarkStoreGateway_ReadyTime100Blocks measures how long a store-gateway with an empty sync directory
// takes from New to Ready (Start runs the first sync, which downloads every block's meta.json and index)
// over a filesystem bucket holding 100 blocks of 100 series × 2h at 15s, split across tenants.
func BenchmarkStoreGateway_ReadyTime100Blocks(b *testing.B) {
	const blocks = 100
	dirs := measureReadyBlocks(b, blocks, 100)
	for _, tenants := range []int{1, 4} {
		b.Run(fmt.Sprintf("tenants=%d", tenants), func(b *testing.B) {
			bkt, err := filesystem.NewBucket(b.TempDir())
			require.NoError(b, err)
			perTenant := blocks / tenants
			for t := range tenants {
				id := fmt.Sprintf("tenant-%d", t)
				uploadBlocks(b, bkt, id, dirs[t*perTenant:(t+1)*perTenant])
				writeBucketIndex(b, bkt, id)
			}

			var total time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				cfg := Config{
					SyncDir:                 filepath.Join(b.TempDir(), "sync"),
					SyncInterval:            time.Hour,
					IndexCacheMaxSizeBytes:  64 << 20,
					ChunksCacheMaxSizeBytes: 64 << 20,
					ReplicationFactor:       1,
				}
				b.StartTimer()
				start := time.Now()

				sg, err := New(cfg, bkt, nil, "", nil, testLogger)
				require.NoError(b, err)
				require.NoError(b, sg.Start(context.Background()))
				require.True(b, sg.Ready())

				total += time.Since(start)
				b.StopTimer()
				loaded := 0
				for t := range tenants {
					loaded += len(loadedIDs(sg, fmt.Sprintf("tenant-%d", t)))
				}
				require.Equal(b, blocks, loaded)
				require.NoError(b, sg.Stop(context.Background()))
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(total.Seconds()/float64(b.N), "seconds-to-ready")
		})
	}
}
