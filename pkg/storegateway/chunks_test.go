package storegateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
)

func TestSeries_ChunksCachePreventsRefetching(t *testing.T) {
	counting := &countingBucket{Bucket: objstore.NewInMemBucket()}
	tt := newTwoTenants(t, counting)
	reg := prometheus.NewRegistry()
	sg, err := New(testConfig(t), counting, nil, "", reg, testLogger)
	require.NoError(t, err)
	require.NoError(t, sg.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, sg.Stop(context.Background())) })
	client := serveGRPC(t, sg)

	req := &storegatewaypb.SeriesRequest{
		MinTimeMs: 0, MaxTimeMs: 24 * time.Hour.Milliseconds(),
		Matchers: seriespb.FromLabelMatchers([]*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "job", ".+")}),
		BlockIds: idStrings(tt.blocks1),
	}
	before := counting.rangeReads()
	first := callSeries(t, client, "tenant-1", req)
	reads := counting.rangeReads() - before
	require.NotZero(t, first.chunks)
	// The chunks of a block are next to each other in its one segment file: one read per block.
	require.Equal(t, len(tt.blocks1), reads)
	require.Equal(t, float64(reads), testutil.ToFloat64(sg.metrics.bucketRangeReads))

	second := callSeries(t, client, "tenant-1", req)
	require.Equal(t, reads, counting.rangeReads()-before, "the second query is served from the cache")
	require.Equal(t, first, second)
	require.Equal(t, float64(first.chunks), testutil.ToFloat64(sg.metrics.cacheHits.WithLabelValues("chunks")))
}

// putChunk appends a chunk in the segment format: uvarint length, encoding, data, CRC32.
func putChunk(buf *bytes.Buffer, enc chunkenc.Encoding, data []byte) chunks.ChunkRef {
	ref := chunks.ChunkRef(chunks.NewBlockChunkRef(0, uint64(buf.Len())))
	buf.Write(binary.AppendUvarint(nil, uint64(len(data))))
	buf.WriteByte(byte(enc))
	buf.Write(data)
	sum := crc32.Checksum(append([]byte{byte(enc)}, data...), castagnoli)
	buf.Write(binary.BigEndian.AppendUint32(nil, sum))
	return ref
}

// segmentFixture uploads one segment file for a fake block and returns a store-gateway and that block.
func segmentFixture(t *testing.T, segment []byte) (*StoreGateway, *block, *countingBucket) {
	counting := &countingBucket{Bucket: objstore.NewInMemBucket()}
	id := ulid.MustNew(1, nil)
	require.NoError(t, counting.Upload(context.Background(), "t/"+id.String()+"/chunks/000001", bytes.NewReader(segment)))
	sg, err := New(testConfig(t), counting, nil, "", nil, testLogger)
	require.NoError(t, err)
	b := &block{tenant: "t", meta: &blockstore.Meta{BlockMeta: promtsdb.BlockMeta{ULID: id}}, bkt: bucket.NewTenantBucket(counting, "t")}
	return sg, b, counting
}

func TestFetchChunks_ReadsLongChunksExactly(t *testing.T) {
	var seg bytes.Buffer
	seg.Write(make([]byte, 8)) // segment header
	small := []byte("small chunk")
	long := bytes.Repeat([]byte{7}, chunkReadEstimateBytes+chunkRangeMaxGapBytes+100)
	refSmall := putChunk(&seg, chunkenc.EncXOR, small)
	refLong := putChunk(&seg, chunkenc.EncHistogram, long)
	refLast := putChunk(&seg, chunkenc.EncXOR, []byte("last"))
	sg, b, counting := segmentFixture(t, seg.Bytes())

	var got [3]chunkData
	require.NoError(t, sg.fetchChunks(context.Background(), []chunkRequest{
		{block: b, ref: refLast, out: &got[2]},
		{block: b, ref: refSmall, out: &got[0]},
		{block: b, ref: refLong, out: &got[1]},
	}))
	require.Equal(t, chunkData{enc: chunkenc.EncXOR, data: small}, got[0])
	require.Equal(t, chunkData{enc: chunkenc.EncHistogram, data: long}, got[1])
	require.Equal(t, chunkData{enc: chunkenc.EncXOR, data: []byte("last")}, got[2])
	// Small and long share the first range; last (past the long chunk) gets its own; the long chunk
	// needs its header and then its exact length.
	require.Equal(t, 4, counting.rangeReads())
}

// Range buffers are used again by later reads: the chunks a read returns and caches must be copies, and
// a cached chunk must hold only its own bytes, not the range around it.
func TestFetchChunks_ChunksOutliveTheirRangeBuffer(t *testing.T) {
	var seg bytes.Buffer
	seg.Write(make([]byte, 8))
	first := putChunk(&seg, chunkenc.EncXOR, []byte("first chunk"))
	seg.Write(bytes.Repeat([]byte{0xee}, chunkRangeMaxGapBytes+1)) // another series' chunks: a range of its own
	second := putChunk(&seg, chunkenc.EncXOR, bytes.Repeat([]byte{0x55}, 64))
	sg, b, counting := segmentFixture(t, seg.Bytes())

	var got chunkData
	require.NoError(t, sg.fetchChunks(context.Background(), []chunkRequest{{block: b, ref: first, out: &got}}))
	// Many more reads of the same size class, each through a recycled buffer, overwrite what a shared
	// buffer would have held.
	for range 50 {
		sg.chunksCache = newLRUCache("chunks", 1<<20, chunkSize, sg.metrics)
		var other chunkData
		require.NoError(t, sg.fetchChunks(context.Background(), []chunkRequest{{block: b, ref: second, out: &other}}))
		require.Equal(t, bytes.Repeat([]byte{0x55}, 64), other.data)
	}
	require.Equal(t, []byte("first chunk"), got.data)
	require.Equal(t, len("first chunk"), cap(got.data), "the chunk pins only its own bytes")
	require.Equal(t, 51, counting.rangeReads())
}

func TestRangeBuffers_FitEveryRangeAndAreReused(t *testing.T) {
	// The largest range the planner makes has a class of its own.
	require.Less(t, rangeBufferClass(chunkRangeMaxBytes), len(rangeBuffers))
	b := getRangeBuffer(100)
	require.Len(t, *b, 100)
	require.Equal(t, 128, cap(*b))
	putRangeBuffer(b)
	require.Len(t, *getRangeBuffer(chunkRangeMaxBytes + 1), chunkRangeMaxBytes+1, "above the classes: allocated")
}

func TestFetchChunks_RejectsCorruptChunks(t *testing.T) {
	var seg bytes.Buffer
	seg.Write(make([]byte, 8))
	ref := putChunk(&seg, chunkenc.EncXOR, []byte("data"))
	corrupt := seg.Bytes()
	corrupt[len(corrupt)-1] ^= 0xff
	sg, b, _ := segmentFixture(t, corrupt)
	var got chunkData
	err := sg.fetchChunks(context.Background(), []chunkRequest{{block: b, ref: ref, out: &got}})
	require.ErrorContains(t, err, "checksum mismatch")

	missing := chunks.ChunkRef(chunks.NewBlockChunkRef(1, 8)) // segment 000002 does not exist
	err = sg.fetchChunks(context.Background(), []chunkRequest{{block: b, ref: missing, out: &got}})
	require.ErrorContains(t, err, "000002")
}

func TestPlanChunkRanges(t *testing.T) {
	b1 := &block{meta: &blockstore.Meta{BlockMeta: promtsdb.BlockMeta{ULID: ulid.MustNew(1, nil)}}}
	b2 := &block{meta: &blockstore.Meta{BlockMeta: promtsdb.BlockMeta{ULID: ulid.MustNew(2, nil)}}}
	ref := func(seg, off uint64) chunks.ChunkRef { return chunks.ChunkRef(chunks.NewBlockChunkRef(seg, off)) }
	ranges := planChunkRanges([]chunkRequest{
		{block: b2, ref: ref(0, 8)},
		{block: b1, ref: ref(0, 1000)},
		{block: b1, ref: ref(0, 8)},
		{block: b1, ref: ref(1, 8)}, // another segment
		{block: b1, ref: ref(0, 1000+chunkReadEstimateBytes+chunkRangeMaxGapBytes+1)}, // too far
	})
	type span struct {
		block      ulid.ULID
		seg        int
		start, end int64
		n          int
	}
	var got []span
	for _, r := range ranges {
		got = append(got, span{r.block.id(), r.segment, r.start, r.end, len(r.reqs)})
	}
	far := int64(1000 + chunkReadEstimateBytes + chunkRangeMaxGapBytes + 1)
	require.Equal(t, []span{
		{b1.id(), 0, 8, 1000 + chunkReadEstimateBytes, 2},
		{b1.id(), 0, far, far + chunkReadEstimateBytes, 1},
		{b1.id(), 1, 8, 8 + chunkReadEstimateBytes, 1},
		{b2.id(), 0, 8, 8 + chunkReadEstimateBytes, 1},
	}, got)
}

// FuzzDecodeChunk feeds arbitrary segment bytes to the chunk decoder: it must return a chunk or an error,
// never panic or allocate beyond its input.
func FuzzDecodeChunk(f *testing.F) {
	var seg bytes.Buffer
	putChunk(&seg, chunkenc.EncXOR, []byte("data"))
	f.Add(seg.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeChunk(b)
		if err == nil {
			require.LessOrEqual(t, len(c.data), len(b))
		}
	})
}
