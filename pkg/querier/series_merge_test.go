package querier

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// numberedSeries is series i of a test answer: m{i="0042"}, in label order with i.
func numberedSeries(i int) labels.Labels {
	return labels.FromStrings("__name__", "m", "i", fmt.Sprintf("%04d", i))
}

// oneSampleSeries is series i with one sample at ts, as one XOR chunk.
func oneSampleSeries(t testing.TB, i int, ts int64) *seriespb.Series {
	chk := chunkenc.NewXORChunk()
	app, err := chk.Appender()
	require.NoError(t, err)
	app.Append(0, ts, float64(i))
	return &seriespb.Series{
		Labels: seriespb.FromLabels(numberedSeries(i)),
		Chunks: []*seriespb.Chunk{{MinTimeMs: ts, MaxTimeMs: ts, Encoding: uint32(chk.Encoding()), Data: chk.Bytes()}},
	}
}

// collect reads a series set whole: each series' samples as "ts=value".
func collect(t *testing.T, set storage.SeriesSet) (map[string][]string, error) {
	t.Helper()
	out := map[string][]string{}
	var it chunkenc.Iterator
	for set.Next() {
		key := set.At().Labels().String()
		require.NotContains(t, out, key, "a series returned twice")
		out[key] = []string{}
		it = set.At().Iterator(it)
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			out[key] = append(out[key], fmt.Sprintf("%d=%g", ts, v))
		}
		require.NoError(t, it.Err())
	}
	return out, set.Err()
}

// scriptedIngester streams n series (one sample each at ts 1000) in messages of 10, and fails with
// Unavailable after failAfter messages when failAfter >= 0.
type scriptedIngester struct {
	ingesterpb.IngesterClient
	n, failAfter int
	t            testing.TB

	mtx  sync.Mutex
	ctxs []context.Context
}

func (s *scriptedIngester) QueryStream(ctx context.Context, _ *ingesterpb.QueryRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.QueryStreamResponse], error) {
	s.mtx.Lock()
	s.ctxs = append(s.ctxs, ctx)
	s.mtx.Unlock()
	stream := &scriptedStream{ctx: ctx}
	for i := 0; i < s.n; i += 10 {
		msg := &ingesterpb.QueryStreamResponse{}
		for j := i; j < min(i+10, s.n); j++ {
			msg.Series = append(msg.Series, oneSampleSeries(s.t, j, 1000))
		}
		stream.msgs = append(stream.msgs, msg)
	}
	if s.failAfter >= 0 {
		stream.msgs, stream.err = stream.msgs[:s.failAfter], status.Error(codes.Unavailable, "ingester restarting")
	}
	return stream, nil
}

type scriptedStream struct {
	grpc.ClientStream
	ctx  context.Context
	msgs []*ingesterpb.QueryStreamResponse
	err  error
}

func (s *scriptedStream) Recv() (*ingesterpb.QueryStreamResponse, error) {
	if len(s.msgs) == 0 {
		if s.err != nil {
			return nil, s.err
		}
		return nil, io.EOF
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}

type scriptedClients map[string]*scriptedIngester

func (c scriptedClients) GetClientFor(addr string) (ingesterpb.IngesterClient, error) {
	return c[addr], nil
}

func scriptedQueryable(maxErrors int, ingesters ...*scriptedIngester) *IngesterQueryable {
	clients := scriptedClients{}
	set := ring.ReplicationSet{MaxErrors: maxErrors}
	for i, ing := range ingesters {
		addr := fmt.Sprintf("10.0.0.%d:9095", i)
		clients[addr] = ing
		set.Instances = append(set.Instances, ring.InstanceDesc{ID: fmt.Sprintf("ingester-%d", i), Addr: addr, State: ring.ACTIVE})
	}
	return NewIngesterQueryable(fakeRing{set: set}, clients)
}

func expectedNumbered(n int, ts int64) map[string][]string {
	want := map[string][]string{}
	for i := range n {
		want[numberedSeries(i).String()] = []string{fmt.Sprintf("%d=%d", ts, i)}
	}
	return want
}

func TestIngesterQueryable_StreamFailingMidwayIsCoveredByTheOtherReplicas(t *testing.T) {
	const n = 95
	selectAll := func(q *IngesterQueryable) (map[string][]string, error) {
		querier, err := q.Querier(0, 5000)
		require.NoError(t, err)
		defer querier.Close()
		return collect(t, querier.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")))
	}

	got, err := selectAll(scriptedQueryable(1,
		&scriptedIngester{t: t, n: n, failAfter: 3},
		&scriptedIngester{t: t, n: n, failAfter: -1},
		&scriptedIngester{t: t, n: n, failAfter: -1},
	))
	require.NoError(t, err, "one of three replicas may fail")
	require.Equal(t, expectedNumbered(n, 1000), got, "every series once, with its sample once")

	_, err = selectAll(scriptedQueryable(1,
		&scriptedIngester{t: t, n: n, failAfter: 3},
		&scriptedIngester{t: t, n: n, failAfter: -1},
		&scriptedIngester{t: t, n: n, failAfter: 7},
	))
	require.Error(t, err, "two of three replicas failed")
	var doErr *ring.DoError
	require.ErrorAs(t, err, &doErr)
	require.Contains(t, err.Error(), "ingester-0")
	require.Contains(t, err.Error(), "ingester-2")
	require.Contains(t, err.Error(), "ingester restarting")
}

func TestIngesterQueryable_CloseEndsTheStreamsOfAnUnfinishedSelect(t *testing.T) {
	ing := &scriptedIngester{t: t, n: 1000, failAfter: -1}
	q := scriptedQueryable(0, ing)
	querier, err := q.Querier(0, 5000)
	require.NoError(t, err)
	set := querier.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	require.True(t, set.Next(), "the engine reads one series and stops")
	require.NoError(t, querier.Close())
	require.Len(t, ing.ctxs, 1)
	require.Error(t, ing.ctxs[0].Err(), "the stream's context ends with the querier")
}

// streamingStoreGateway serves n series, m{i=...}, one sample each per block it holds (at the block's
// timestamp), in messages of 10 series after the message listing its blocks; with failAfter >= 0 it fails
// after that many series messages.
type streamingStoreGateway struct {
	storegatewaypb.UnimplementedStoreGatewayServer
	t         testing.TB
	n         int
	blocks    map[string]int64
	failAfter int

	mtx      sync.Mutex
	requests [][]string
}

func (f *streamingStoreGateway) Series(req *storegatewaypb.SeriesRequest, srv storegatewaypb.StoreGateway_SeriesServer) error {
	f.mtx.Lock()
	f.requests = append(f.requests, req.BlockIds)
	f.mtx.Unlock()
	var held []int64
	header := &storegatewaypb.SeriesResponse{QueriedBlockIds: []string{}}
	for _, id := range req.BlockIds {
		if ts, ok := f.blocks[id]; ok {
			held = append(held, ts)
			header.QueriedBlockIds = append(header.QueriedBlockIds, id)
		}
	}
	if err := srv.Send(header); err != nil {
		return err
	}
	for i, sent := 0, 0; i < f.n; i, sent = i+10, sent+1 {
		if f.failAfter >= 0 && sent == f.failAfter {
			return status.Error(codes.Unavailable, "store-gateway stopping")
		}
		msg := &storegatewaypb.SeriesResponse{}
		for j := i; j < min(i+10, f.n); j++ {
			s := &seriespb.Series{Labels: seriespb.FromLabels(numberedSeries(j))}
			for _, ts := range held {
				s.Chunks = append(s.Chunks, oneSampleSeries(f.t, j, ts).Chunks...)
			}
			msg.Series = append(msg.Series, s)
		}
		if err := srv.Send(msg); err != nil {
			return err
		}
	}
	return nil
}

func TestBlocksQueryable_StoreGatewayFailingMidwayIsReplacedByAnotherReplica(t *testing.T) {
	const n = 95
	bkt, a, b := blocksFixture(t)
	blocks := map[string]int64{a.String(): 1000, b.String(): 2000}
	failing := &streamingStoreGateway{t: t, n: n, blocks: blocks, failAfter: 4}
	healthy := &streamingStoreGateway{t: t, n: n, blocks: blocks, failAfter: -1}
	r := fakeRing{set: ring.ReplicationSet{Instances: []ring.InstanceDesc{
		{ID: "sg-1", Addr: startFakeStoreGateway(t, failing)},
		{ID: "sg-2", Addr: startFakeStoreGateway(t, healthy)},
	}}}
	q := NewBlocksQueryable(bkt, r, dialClients{t}, Config{}, nil, slog.New(slog.DiscardHandler))
	querier, err := q.Querier(0, 3000)
	require.NoError(t, err)
	defer querier.Close()
	got, err := collect(t, querier.Select(tenant.NewContext(context.Background(), "t"), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")))
	require.NoError(t, err)
	want := map[string][]string{}
	for i := range n {
		want[numberedSeries(i).String()] = []string{fmt.Sprintf("1000=%d", i), fmt.Sprintf("2000=%d", i)}
	}
	require.Equal(t, want, got, "every series once, with both blocks' samples once")
	require.Len(t, failing.requests, 1)
	require.Len(t, healthy.requests, 1, "the replacement asked for the failed stream's blocks")
	require.ElementsMatch(t, []string{a.String(), b.String()}, healthy.requests[0])

	// With no other replica left, the query fails naming the store-gateway and the blocks.
	r = fakeRing{set: ring.ReplicationSet{Instances: []ring.InstanceDesc{{ID: "sg-1", Addr: startFakeStoreGateway(t, &streamingStoreGateway{t: t, n: n, blocks: blocks, failAfter: 2})}}}}
	q = NewBlocksQueryable(bkt, r, dialClients{t}, Config{}, nil, slog.New(slog.DiscardHandler))
	querier, err = q.Querier(0, 3000)
	require.NoError(t, err)
	defer querier.Close()
	_, err = collect(t, querier.Select(tenant.NewContext(context.Background(), "t"), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")))
	require.ErrorContains(t, err, "store-gateway stopping")
	require.ErrorContains(t, err, "no store-gateway answered for blocks")
}
