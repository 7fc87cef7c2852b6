package querier

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// fakeStoreGateway holds some blocks, each contributing one sample (at the block's number) to series m.
type fakeStoreGateway struct {
	storegatewaypb.UnimplementedStoreGatewayServer
	blocks   map[string]int64 // block ID → timestamp of its sample
	requests [][]string
}

func (f *fakeStoreGateway) Series(req *storegatewaypb.SeriesRequest, srv storegatewaypb.StoreGateway_SeriesServer) error {
	f.requests = append(f.requests, req.BlockIds)
	chk := chunkenc.NewXORChunk()
	app, err := chk.Appender()
	if err != nil {
		return err
	}
	var queried []string
	for _, id := range req.BlockIds {
		if ts, ok := f.blocks[id]; ok {
			app.Append(0, ts, float64(ts))
			queried = append(queried, id)
		}
	}
	resp := &storegatewaypb.SeriesResponse{QueriedBlockIds: queried}
	if len(queried) > 0 {
		resp.Series = []*seriespb.Series{{
			Labels: []*seriespb.Label{{Name: "__name__", Value: "m"}},
			Chunks: []*seriespb.Chunk{{Encoding: uint32(chunkenc.EncXOR), Data: chk.Bytes()}},
		}}
	}
	return srv.Send(resp)
}

func startFakeStoreGateway(t *testing.T, sg storegatewaypb.StoreGatewayServer) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer(grpc.StreamInterceptor(tenant.StreamServerInterceptor))
	storegatewaypb.RegisterStoreGatewayServer(s, sg)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

type dialClients struct{ t *testing.T }

func (d dialClients) GetStoreGatewayClient(addr string) (storegatewaypb.StoreGatewayClient, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStreamInterceptor(tenant.StreamClientInterceptor))
	if err != nil {
		return nil, err
	}
	d.t.Cleanup(func() { _ = conn.Close() })
	return storegatewaypb.NewStoreGatewayClient(conn), nil
}

// blocksFixture writes a bucket index with blocks A (t=1000) and B (t=2000) for tenant "t".
func blocksFixture(t *testing.T) (objstore.Bucket, ulid.ULID, ulid.ULID) {
	t.Helper()
	bkt := objstore.NewInMemBucket()
	a, b := ulid.MustNew(1, nil), ulid.MustNew(2, nil)
	require.NoError(t, blockstore.WriteIndex(context.Background(), bucket.NewTenantBucket(bkt, "t"), &blockstore.Index{
		Version: blockstore.IndexVersion1,
		Blocks: []*blockstore.BlockEntry{
			{ID: a, MinTime: 0, MaxTime: 1500},
			{ID: b, MinTime: 1500, MaxTime: 3000},
		},
		UpdatedAt: time.Now().Unix(),
	}))
	return bkt, a, b
}

func selectAll(t *testing.T, q *BlocksQueryable) (map[int64]float64, error) {
	t.Helper()
	querier, err := q.Querier(0, 3000)
	require.NoError(t, err)
	set := querier.Select(tenant.NewContext(context.Background(), "t"), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	got := map[int64]float64{}
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != chunkenc.ValNone {
			ts, v := it.At()
			got[ts] = v
		}
	}
	return got, set.Err()
}

func TestBlocksQueryable_RetriesBlocksOnOtherReplicas(t *testing.T) {
	bkt, a, b := blocksFixture(t)
	first := &fakeStoreGateway{blocks: map[string]int64{a.String(): 1000}}                    // lost block B
	second := &fakeStoreGateway{blocks: map[string]int64{a.String(): 1000, b.String(): 2000}} // holds both
	r := fakeRing{set: ring.ReplicationSet{Instances: []ring.InstanceDesc{
		{ID: "sg-1", Addr: startFakeStoreGateway(t, first)},
		{ID: "sg-2", Addr: startFakeStoreGateway(t, second)},
	}}}
	q := NewBlocksQueryable(bkt, r, dialClients{t}, Config{}, nil, slog.New(slog.DiscardHandler))

	got, err := selectAll(t, q)
	require.NoError(t, err)
	require.Equal(t, map[int64]float64{1000: 1000, 2000: 2000}, got, "each block's sample, once")
	require.Len(t, first.requests, 1)
	require.Equal(t, [][]string{{b.String()}}, second.requests, "only the block the first replica lacked was retried")
}

func TestBlocksQueryable_FailsNamingBlocksNoStoreGatewayHas(t *testing.T) {
	bkt, a, b := blocksFixture(t)
	only := &fakeStoreGateway{blocks: map[string]int64{a.String(): 1000}}
	r := fakeRing{set: ring.ReplicationSet{Instances: []ring.InstanceDesc{{ID: "sg-1", Addr: startFakeStoreGateway(t, only)}}}}
	q := NewBlocksQueryable(bkt, r, dialClients{t}, Config{}, nil, slog.New(slog.DiscardHandler))

	_, err := selectAll(t, q)
	require.ErrorContains(t, err, "no store-gateway answered for blocks "+b.String())
	require.NotContains(t, err.Error(), a.String())
}

func TestBlocksQueryable_TenantWithoutIndexHasNoBlocks(t *testing.T) {
	q := NewBlocksQueryable(objstore.NewInMemBucket(), fakeRing{}, dialClients{t}, Config{}, nil, slog.New(slog.DiscardHandler))
	got, err := selectAll(t, q)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestBlocksQueryable_SkipsBlocksMarkedForDeletionOrReplaced(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	src1, src2, merged, marked := ulid.MustNew(1, nil), ulid.MustNew(2, nil), ulid.MustNew(3, nil), ulid.MustNew(4, nil)
	require.NoError(t, blockstore.WriteIndex(context.Background(), bucket.NewTenantBucket(bkt, "t"), &blockstore.Index{
		Version: blockstore.IndexVersion1,
		Blocks: []*blockstore.BlockEntry{
			{ID: src1, MaxTime: 1500, Sources: []ulid.ULID{src1}},
			{ID: src2, MaxTime: 1500, Sources: []ulid.ULID{src2}},
			{ID: merged, MaxTime: 1500, Sources: []ulid.ULID{src1, src2}},
			{ID: marked, MinTime: 1500, MaxTime: 3000},
		},
		DeletionMarks: []*blockstore.DeletionMark{{ID: marked}},
	}))
	sg := &fakeStoreGateway{blocks: map[string]int64{merged.String(): 1000}}
	r := fakeRing{set: ring.ReplicationSet{Instances: []ring.InstanceDesc{{ID: "sg-1", Addr: startFakeStoreGateway(t, sg)}}}}
	q := NewBlocksQueryable(bkt, r, dialClients{t}, Config{}, nil, slog.New(slog.DiscardHandler))
	got, err := selectAll(t, q)
	require.NoError(t, err)
	require.Equal(t, map[int64]float64{1000: 1000}, got)
	require.Len(t, sg.requests, 1)
	require.True(t, slices.Equal([]string{merged.String()}, sg.requests[0]), "asked only for the block that replaces the others: %v", sg.requests[0])
}

func TestBlocksQueryable_RecentBlocksOnlyWhenUploaded(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	now := time.UnixMilli(100 * 3600 * 1000)
	hour := int64(3600 * 1000)
	old, shipped, uploaded := ulid.MustNew(1, nil), ulid.MustNew(2, nil), ulid.MustNew(3, nil)
	require.NoError(t, blockstore.WriteIndex(context.Background(), bucket.NewTenantBucket(bkt, "t"), &blockstore.Index{
		Version: blockstore.IndexVersion1,
		Blocks: []*blockstore.BlockEntry{
			{ID: old, MinTime: now.UnixMilli() - 20*hour, MaxTime: now.UnixMilli() - 18*hour},
			{ID: shipped, MinTime: now.UnixMilli() - 4*hour, MaxTime: now.UnixMilli() - 2*hour, Source: blockstore.SourceIngester},
			{ID: uploaded, MinTime: now.UnixMilli() - 6*hour, MaxTime: now.UnixMilli() - 4*hour, UploadedData: true},
		},
	}))
	sg := &fakeStoreGateway{blocks: map[string]int64{}}
	r := fakeRing{set: ring.ReplicationSet{Instances: []ring.InstanceDesc{{ID: "sg-1", Addr: startFakeStoreGateway(t, sg)}}}}
	q := NewBlocksQueryable(bkt, r, dialClients{t}, Config{QueryStoreAfter: 12 * time.Hour}, nil, slog.New(slog.DiscardHandler))
	q.now = func() time.Time { return now }
	querier, err := q.Querier(0, now.UnixMilli())
	require.NoError(t, err)
	set := querier.Select(tenant.NewContext(context.Background(), "t"), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	for set.Next() {
	}
	// The fake holds none of them, so the error names exactly the blocks the querier asked for.
	require.ErrorContains(t, set.Err(), "blocks "+old.String()+", "+uploaded.String())
	require.NotContains(t, set.Err().Error(), shipped.String(), "a recent block shipped by an ingester is left to the ingesters")
}

var _ storage.Queryable = (*BlocksQueryable)(nil)
