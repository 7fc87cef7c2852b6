package storegateway

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// largeAnswer is a block of 3000 series of metric "m", each with a 1000-byte "id" label and a chunk of
// 120 random values (about 1 KiB): an answer of several MiB, streamed in several messages.
type largeAnswer struct {
	bkt    *readBytesBucket
	blocks []string
	req    *storegatewaypb.SeriesRequest
}

func newLargeAnswer(t *testing.T) *largeAnswer {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	hour := time.Hour.Milliseconds()
	lsets := make([]labels.Labels, 3000)
	for i := range lsets {
		id := fmt.Sprintf("%06d", i)
		lsets[i] = labels.FromStrings("__name__", "m", "id", id+strings.Repeat("x", 1000-len(id)))
	}
	// Samples up to 3.5h, so that the head cuts the first 2h range into a block.
	series := makeSeries(0, 3*hour+hour/2, lsets...)
	for i := range series {
		for j := range series[i].samples {
			series[i].samples[j].v = rng.Float64()
		}
	}
	bkt := &readBytesBucket{Bucket: objstore.NewInMemBucket()}
	ids := uploadBlocks(t, bkt, "tenant-1", createBlocks(t, series))
	writeBucketIndex(t, bkt, "tenant-1")
	return &largeAnswer{bkt: bkt, blocks: idStrings(ids), req: &storegatewaypb.SeriesRequest{
		MinTimeMs: 0, MaxTimeMs: 2*hour - 1,
		Matchers: seriespb.FromLabelMatchers([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")}),
		BlockIds: idStrings(ids),
	}}
}

// readBytesBucket counts the bytes read by range reads, which is how chunks are fetched.
type readBytesBucket struct {
	objstore.Bucket
	mu   sync.Mutex
	read int64
}

func (b *readBytesBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	rc, err := b.Bucket.GetRange(ctx, name, off, length)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	_ = rc.Close()
	b.mu.Lock()
	b.read += int64(len(data))
	b.mu.Unlock()
	return io.NopCloser(strings.NewReader(string(data))), err
}

func (b *readBytesBucket) bytesRead() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.read
}

// sentSeries is the server side of a Series stream: it keeps what was sent, and calls afterSend, when
// set, with the number of messages sent so far.
type sentSeries struct {
	grpc.ServerStream
	ctx       context.Context
	sent      []*storegatewaypb.SeriesResponse
	afterSend func(n int)
}

func (s *sentSeries) Context() context.Context { return s.ctx }

func (s *sentSeries) Send(resp *storegatewaypb.SeriesResponse) error {
	s.sent = append(s.sent, proto.Clone(resp).(*storegatewaypb.SeriesResponse))
	if s.afterSend != nil {
		s.afterSend(len(s.sent))
	}
	return nil
}

// answered is what a Series stream sent, and what the store-gateway read from the bucket for it.
type answered struct {
	messages, series, chunkBytes int
	bucketBytes                  int64
}

// request is the Series request for every series of the block, with limits.
func (a *largeAnswer) request(limits *seriespb.FetchLimits, skipChunks bool) *storegatewaypb.SeriesRequest {
	req := proto.Clone(a.req).(*storegatewaypb.SeriesRequest)
	req.Limits, req.SkipChunks = limits, skipChunks
	return req
}

// series runs req on a store-gateway without a chunks cache, so that every chunk it sends is read from
// the bucket by this request.
func (a *largeAnswer) series(t *testing.T, ctx context.Context, req *storegatewaypb.SeriesRequest, afterSend func(int)) (answered, error) {
	t.Helper()
	cfg := testConfig(t)
	cfg.ChunksCacheMaxSizeBytes = 0
	sg := startStoreGateway(t, cfg, a.bkt)
	before := a.bkt.bytesRead()
	stream := &sentSeries{ctx: ctx, afterSend: afterSend}
	err := sg.Series(req, stream)
	out := answered{messages: len(stream.sent), bucketBytes: a.bkt.bytesRead() - before}
	for _, resp := range stream.sent {
		out.series += len(resp.Series)
		for _, s := range resp.Series {
			for _, c := range s.Chunks {
				out.chunkBytes += len(c.Data)
			}
		}
	}
	return out, err
}

func requireLimitStatus(t *testing.T, err error, key string) {
	t.Helper()
	require.Equal(t, codes.ResourceExhausted, status.Code(err), err)
	limitErr, ok := seriespb.LimitErrorOf(err)
	require.True(t, ok, "the status carries the limit: %v", err)
	require.Equal(t, key, limitErr.Key)
	require.Contains(t, err.Error(), validation.ErrorID(key))
}

func TestSeries_StopsSendingAtTheFetchLimits(t *testing.T) {
	a := newLargeAnswer(t)
	ctx := tenant.NewContext(context.Background(), "tenant-1")
	all, err := a.series(t, ctx, a.request(nil, false), nil)
	require.NoError(t, err)
	require.Equal(t, 3000, all.series)
	require.Greater(t, all.messages, 4, "the answer spans several messages")

	t.Run("series: refused before any chunk is fetched", func(t *testing.T) {
		got, err := a.series(t, ctx, a.request(&seriespb.FetchLimits{MaxSeries: 1000}, false), nil)
		requireLimitStatus(t, err, "max_fetched_series_per_query")
		require.Equal(t, 1, got.messages, "only the queried blocks")
		require.Zero(t, got.bucketBytes)
	})
	t.Run("chunk bytes", func(t *testing.T) {
		limit := all.chunkBytes / 3
		got, err := a.series(t, ctx, a.request(&seriespb.FetchLimits{MaxChunkBytes: int64(limit)}, false), nil)
		requireLimitStatus(t, err, "max_fetched_chunk_bytes_per_query")
		require.LessOrEqual(t, got.chunkBytes, limit)
		require.Less(t, got.messages, all.messages)
		require.Less(t, got.bucketBytes, all.bucketBytes*3/4, "the chunks past the limit are not fetched")
	})
	t.Run("an answer at the limits is sent whole", func(t *testing.T) {
		got, err := a.series(t, ctx, a.request(&seriespb.FetchLimits{MaxSeries: int64(all.series), MaxChunkBytes: int64(all.chunkBytes)}, false), nil)
		require.NoError(t, err)
		require.Equal(t, all.series, got.series)
		require.Equal(t, all.chunkBytes, got.chunkBytes)
	})
	t.Run("label sets only count series", func(t *testing.T) {
		got, err := a.series(t, ctx, a.request(&seriespb.FetchLimits{MaxSeries: 3000, MaxChunkBytes: 1}, true), nil)
		require.NoError(t, err)
		require.Equal(t, 3000, got.series)
		_, err = a.series(t, ctx, a.request(&seriespb.FetchLimits{MaxSeries: 2999}, true), nil)
		requireLimitStatus(t, err, "max_fetched_series_per_query")
	})
	t.Run("a canceled query stops the stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		got, err := a.series(t, ctx, a.request(nil, false), func(n int) {
			if n == 2 { // the queried blocks, then one message of series
				cancel()
			}
		})
		require.Equal(t, codes.Canceled, status.Code(err), err)
		require.Equal(t, 2, got.messages)
		require.Less(t, got.bucketBytes, all.bucketBytes*3/4)
	})
}

func TestLabelValues_StreamsBoundedMessages(t *testing.T) {
	a := newLargeAnswer(t)
	client := serveGRPC(t, startStoreGateway(t, testConfig(t), a.bkt))
	stream, err := client.LabelValues(tenant.NewContext(context.Background(), "tenant-1"), &storegatewaypb.LabelValuesRequest{
		Name: "id", MinTimeMs: a.req.MinTimeMs, MaxTimeMs: a.req.MaxTimeMs, BlockIds: a.blocks,
	})
	require.NoError(t, err)
	var values, queried []string
	messages := 0
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		messages++
		require.Less(t, proto.Size(resp), labelValuesBatchBytes*21/20)
		values = append(values, resp.Values...)
		queried = append(queried, resp.QueriedBlockIds...)
	}
	require.Greater(t, messages, 2)
	require.Len(t, values, 3000)
	require.Equal(t, a.blocks, queried)
}
