package compactor

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// The measured day: 20 scrape targets of 50 series each (30 counters, 15 gauges, 5 histogram buckets:
// 60/30/10%), scraped every 15s with ±5ms jitter, written by three ingesters (RF=3) into 2h blocks.
const (
	measureScrapeMs      = int64(15 * time.Second / time.Millisecond)
	measureJitterMs      = 5
	measureInstances     = 20
	measureWindows       = 12 // 2h blocks in the day
	measureReplicas      = 3
	measureLossyReplica  = 2    // the copy that misses writes
	measureLossRate      = 0.01 // share of samples the lossy copy misses
	measureRestartChance = 1.0 / 5760
)

var (
	measureMethods      = []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	measureMethodShares = []float64{0.6, 0.2, 0.1, 0.05, 0.05}
	measureCodes        = []string{"200", "201", "304", "400", "404", "500"}
	measureCodeShares   = []float64{0.8, 0.05, 0.07, 0.03, 0.04, 0.01}
	// measureBuckets are the le bounds of the latency histogram and the share of requests at or below each.
	measureBuckets = []struct {
		le    string
		share float64
	}{{"0.05", 0.55}, {"0.1", 0.8}, {"0.5", 0.93}, {"1", 0.98}, {"+Inf", 1}}
	// measureGauges are the gauges of each target: name, starting value and random walk step.
	measureGauges = []struct {
		name        string
		start, step float64
	}{
		{"process_resident_memory_bytes", 3e8, 2e5},
		{"process_virtual_memory_bytes", 1.2e9, 5e5},
		{"go_memstats_heap_inuse_bytes", 1.5e8, 1e6},
		{"go_memstats_heap_alloc_bytes", 1.2e8, 2e6},
		{"go_goroutines", 250, 2},
		{"process_open_fds", 120, 1},
		{"node_load1", 1.5, 0.05},
		{"node_load5", 1.4, 0.02},
		{"node_memory_MemAvailable_bytes", 8e9, 5e6},
		{"node_filesystem_avail_bytes", 5e10, 1e6},
		{"http_inflight_requests", 4, 0.5},
		{"queue_length", 30, 2},
		{"cpu_temperature_celsius", 55, 0.2},
		{"db_connections_in_use", 20, 0.8},
		{"cache_hit_ratio", 0.92, 0.005},
	}
)

type measureKind int

const (
	measureCounter measureKind = iota
	measureGauge
	measureBucket
)

// measureSeries is one generated series and the state of its value.
type measureSeries struct {
	lset  labels.Labels
	kind  measureKind
	rate  float64 // counter: mean increase per second
	share float64 // bucket: share of the target's requests it counts
	step  float64 // gauge: standard deviation of a step
	v     float64
}

// measureTarget is a scrape target: its series share each scrape's timestamp.
type measureTarget struct {
	phase   int64   // offset of its scrapes in the interval
	reqRate float64 // requests per second
	series  []*measureSeries
}

func measureTargets(rng *rand.Rand) []*measureTarget {
	targets := make([]*measureTarget, measureInstances)
	for i := range targets {
		job := "api"
		switch {
		case i >= 16:
			job = "worker"
		case i >= 10:
			job = "frontend"
		}
		inst := fmt.Sprintf("10.0.%d.%d:9100", i/8, 10+i)
		t := &measureTarget{
			phase:   measureJitterMs + 1 + rng.Int64N(measureScrapeMs-2*measureJitterMs-2),
			reqRate: 5 + 95*rng.Float64(),
		}
		for m, method := range measureMethods {
			for c, code := range measureCodes {
				t.series = append(t.series, &measureSeries{
					lset: labels.FromStrings("__name__", "http_requests_total", "code", code, "instance", inst, "job", job, "method", method),
					kind: measureCounter,
					rate: t.reqRate * measureMethodShares[m] * measureCodeShares[c],
				})
			}
		}
		for _, g := range measureGauges {
			t.series = append(t.series, &measureSeries{
				lset: labels.FromStrings("__name__", g.name, "instance", inst, "job", job),
				kind: measureGauge,
				step: g.step,
				v:    g.start * (0.8 + 0.4*rng.Float64()),
			})
		}
		for _, bk := range measureBuckets {
			t.series = append(t.series, &measureSeries{
				lset:  labels.FromStrings("__name__", "http_request_duration_seconds_bucket", "instance", inst, "job", job, "le", bk.le),
				kind:  measureBucket,
				share: bk.share,
			})
		}
		targets[i] = t
	}
	return targets
}

// measurePoisson draws from a Poisson distribution of mean l (normal approximation above 30).
func measurePoisson(rng *rand.Rand, l float64) float64 {
	if l > 30 {
		return math.Max(0, math.Round(l+math.Sqrt(l)*rng.NormFloat64()))
	}
	limit, p, k := math.Exp(-l), 1.0, -1.0
	for p > limit {
		p *= rng.Float64()
		k++
	}
	return k
}

// scrape advances the target's series by one scrape interval.
func (t *measureTarget) scrape(rng *rand.Rand) {
	restart := rng.Float64() < measureRestartChance
	requests := measurePoisson(rng, t.reqRate*15)
	prev := 0.0 // cumulative increase of the previous (lower le) bucket
	for _, s := range t.series {
		if restart && s.kind != measureGauge {
			s.v = 0
		}
		switch s.kind {
		case measureCounter:
			s.v += measurePoisson(rng, s.rate*15)
		case measureGauge:
			s.v = math.Abs(s.v + s.step*rng.NormFloat64())
		case measureBucket:
			inc := requests
			if s.share < 1 {
				mean := requests * s.share
				inc = math.Round(mean + math.Sqrt(mean*(1-s.share))*rng.NormFloat64())
				inc = math.Min(requests, math.Max(prev, inc))
			}
			prev = inc
			s.v += inc
		}
	}
}

// measureReplicaBlocks writes the day starting at base as three ingesters would: each appends what it
// receives to a TSDB with 2h blocks, and cuts a block once the head holds the next window too. It returns
// the block directories by replica, oldest first.
func measureReplicaBlocks(b *testing.B, tenant string, base int64) [][]string {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	targets := measureTargets(rng)
	dbs := make([]*promtsdb.DB, measureReplicas)
	refs := make([]map[*measureSeries]storage.SeriesRef, measureReplicas)
	for r := range dbs {
		opts := promtsdb.DefaultOptions()
		opts.MinBlockDuration = 2 * hourMs
		opts.MaxBlockDuration = 2 * hourMs
		opts.WALSegmentSize = -1 // no WAL: it does not change the blocks
		db, err := promtsdb.Open(b.TempDir(), testLogger, nil, opts, nil)
		require.NoError(b, err)
		db.DisableCompactions()
		dbs[r] = db
		refs[r] = map[*measureSeries]storage.SeriesRef{}
	}
	compact := func(w int) {
		minT := base + int64(w)*2*hourMs
		for _, db := range dbs {
			require.NoError(b, db.CompactHead(promtsdb.NewRangeHead(db.Head(), minT, minT+2*hourMs-1)))
		}
	}
	for w := range measureWindows {
		minT := base + int64(w)*2*hourMs
		apps := make([]storage.Appender, measureReplicas)
		for r, db := range dbs {
			apps[r] = db.Appender(ctx)
		}
		for _, t := range targets {
			for ts := minT + t.phase; ts < minT+2*hourMs; ts += measureScrapeMs {
				at := ts + rng.Int64N(2*measureJitterMs+1) - measureJitterMs
				t.scrape(rng)
				for _, s := range t.series {
					for r, app := range apps {
						if r == measureLossyReplica && rng.Float64() < measureLossRate {
							continue
						}
						ref, err := app.Append(refs[r][s], s.lset, at, s.v)
						require.NoError(b, err)
						refs[r][s] = ref
					}
				}
			}
		}
		for _, app := range apps {
			require.NoError(b, app.Commit())
		}
		if w > 0 {
			compact(w - 1)
		}
	}
	compact(measureWindows - 1)

	dirs := make([][]string, measureReplicas)
	for r, db := range dbs {
		for _, blk := range db.Blocks() {
			dirs[r] = append(dirs[r], blk.Dir())
		}
		require.NoError(b, db.Close())
		require.Len(b, dirs[r], measureWindows)
		for _, dir := range dirs[r] {
			meta, err := blockstore.ReadMetaFromDir(dir)
			require.NoError(b, err)
			meta.Strata = blockstore.StrataMeta{TenantID: tenant, IngesterID: "ingester-" + strconv.Itoa(r), Source: blockstore.SourceIngester}
			require.NoError(b, meta.WriteToDir(dir))
		}
	}
	return dirs
}

// measureLocalBlockSize returns the sizes of a block directory's index and chunk files.
func measureLocalBlockSize(b *testing.B, dir string) (index, chunks int64) {
	fi, err := os.Stat(filepath.Join(dir, blockstore.BlockIndexFilename))
	require.NoError(b, err)
	entries, err := os.ReadDir(filepath.Join(dir, "chunks"))
	require.NoError(b, err)
	for _, e := range entries {
		info, err := e.Info()
		require.NoError(b, err)
		chunks += info.Size()
	}
	return fi.Size(), chunks
}

// measureBucketBlockSize returns the sizes of a block's index and chunk objects.
func measureBucketBlockSize(b *testing.B, bkt objstore.Bucket, id ulid.ULID) (index, chunks int64) {
	ctx := context.Background()
	attrs, err := bkt.Attributes(ctx, id.String()+"/"+blockstore.BlockIndexFilename)
	require.NoError(b, err)
	require.NoError(b, bkt.Iter(ctx, id.String()+"/chunks/", func(name string) error {
		a, err := bkt.Attributes(ctx, name)
		chunks += a.Size
		return err
	}))
	require.NotZero(b, chunks)
	return attrs.Size, chunks
}

// measureChunkBytesByKind returns the chunk bytes and samples of a block by kind of series.
func measureChunkBytesByKind(b *testing.B, dir string) map[string][2]float64 {
	blk, err := promtsdb.OpenBlock(testLogger, dir, nil, nil)
	require.NoError(b, err)
	defer blk.Close()
	ir, err := blk.Index()
	require.NoError(b, err)
	defer ir.Close()
	cr, err := blk.Chunks()
	require.NoError(b, err)
	defer cr.Close()
	name, value := index.AllPostingsKey()
	p, err := ir.Postings(context.Background(), name, value)
	require.NoError(b, err)
	out := map[string][2]float64{}
	var (
		builder labels.ScratchBuilder
		metas   []chunks.Meta
	)
	for p.Next() {
		require.NoError(b, ir.Series(p.At(), &builder, &metas))
		kind := "gauge"
		switch name := builder.Labels().Get("__name__"); {
		case name == "http_requests_total":
			kind = "counter"
		case strings.HasSuffix(name, "_bucket"):
			kind = "bucket"
		}
		for _, m := range metas {
			chk, _, err := cr.ChunkOrIterable(m)
			require.NoError(b, err)
			bs := out[kind]
			bs[0] += float64(len(chk.Bytes()))
			bs[1] += float64(chk.NumSamples())
			out[kind] = bs
		}
	}
	require.NoError(b, p.Err())
	return out
}

// BenchmarkCompactedBlock_BytesPerSample measures the object storage cost of a day of realistic data after
// the compactor merged the three replica copies and compacted 2h → 12h → 24h, against one 2h ingester
// block. The timed part is the compaction pass.
func BenchmarkCompactedBlock_BytesPerSample(b *testing.B) {
	ctx := context.Background()
	const tenant = "t1"
	base := testBase()
	dirs := measureReplicaBlocks(b, tenant, base)
	metas := map[string]*blockstore.Meta{}
	for _, rdirs := range dirs {
		for _, dir := range rdirs {
			meta, err := blockstore.ReadMetaFromDir(dir)
			require.NoError(b, err)
			metas[dir] = meta
		}
	}
	var daySamples uint64 // of a complete copy (replica 0)
	for _, dir := range dirs[0] {
		daySamples += metas[dir].Stats.NumSamples
	}

	var (
		dayMeta             *blockstore.Meta
		dayIndex, dayChunks int64
		dayBkt              objstore.Bucket
	)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		bkt := objstore.NewInMemBucket()
		tbkt := bucket.NewTenantBucket(bkt, tenant)
		for _, rdirs := range dirs {
			for _, dir := range rdirs {
				require.NoError(b, uploadBlock(ctx, tbkt, metas[dir], dir))
			}
		}
		cfg := Config{
			BlockRanges:        DurationList{2 * time.Hour, 12 * time.Hour, 24 * time.Hour},
			CompactionInterval: time.Hour,
			DataDir:            b.TempDir(),
			DeletionDelay:      12 * time.Hour,
			CleanupInterval:    15 * time.Minute,
		}
		c, err := New(cfg, nil, bkt, nil, "compactor-1", prometheus.NewRegistry(), testLogger)
		require.NoError(b, err)
		b.StartTimer()

		require.NoError(b, c.CompactAll(ctx))

		b.StopTimer()
		idx, err := blockstore.ReadIndex(ctx, tbkt)
		require.NoError(b, err)
		live := blockstore.BlocksToQuery(idx, nil)
		require.Len(b, live, 1, "one block for the day")
		require.Equal(b, base, live[0].MinTime)
		require.Equal(b, base+24*hourMs, live[0].MaxTime)
		dayMeta, err = blockstore.DownloadMeta(ctx, tbkt, live[0].ID)
		require.NoError(b, err)
		dayIndex, dayChunks = measureBucketBlockSize(b, tbkt, live[0].ID)
		dayBkt = tbkt
		b.StartTimer()
	}
	b.StopTimer()

	// The lossy copy misses only samples the complete ones have: the merge holds exactly a complete copy.
	require.Equal(b, daySamples, dayMeta.Stats.NumSamples)
	require.Equal(b, uint64(measureInstances*50), dayMeta.Stats.NumSeries)
	samples, series := float64(dayMeta.Stats.NumSamples), float64(dayMeta.Stats.NumSeries)
	b.ReportMetric(float64(dayIndex+dayChunks)/samples, "bytes/sample")
	b.ReportMetric(float64(dayChunks)/samples, "chunk-bytes/sample")
	b.ReportMetric(float64(dayIndex)/series, "index-bytes/series")
	dayDir := filepath.Join(b.TempDir(), dayMeta.ULID.String())
	require.NoError(b, downloadBlock(ctx, dayBkt, dayMeta.ULID, dayDir))
	for kind, bs := range measureChunkBytesByKind(b, dayDir) {
		b.ReportMetric(bs[0]/bs[1], kind+"-chunk-bytes/sample")
	}

	first := metas[dirs[0][0]]
	index2h, chunks2h := measureLocalBlockSize(b, dirs[0][0])
	b.ReportMetric(float64(index2h+chunks2h)/float64(first.Stats.NumSamples), "2h-bytes/sample")
	b.ReportMetric(float64(chunks2h)/float64(first.Stats.NumSamples), "2h-chunk-bytes/sample")
	b.ReportMetric(float64(index2h)/float64(first.Stats.NumSeries), "2h-index-bytes/series")
}
