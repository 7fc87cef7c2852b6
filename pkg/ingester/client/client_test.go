package client

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/grpcclient"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// flakyIngester answers Unavailable to the first call of each method, then succeeds.
type flakyIngester struct {
	ingesterpb.UnimplementedIngesterServer
	labelNameCalls, pushCalls atomic.Int32
}

func (f *flakyIngester) LabelNames(context.Context, *ingesterpb.LabelNamesRequest) (*ingesterpb.LabelNamesResponse, error) {
	if f.labelNameCalls.Add(1) == 1 {
		return nil, status.Error(codes.Unavailable, "restarting")
	}
	return &ingesterpb.LabelNamesResponse{Names: []string{"job"}}, nil
}

func (f *flakyIngester) Push(context.Context, *ingesterpb.PushRequest) (*ingesterpb.PushResponse, error) {
	if f.pushCalls.Add(1) == 1 {
		return nil, status.Error(codes.Unavailable, "restarting")
	}
	return &ingesterpb.PushResponse{}, nil
}

func startServer(t *testing.T, srv ingesterpb.IngesterServer) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	ingesterpb.RegisterIngesterServer(s, srv)
	healthpb.RegisterHealthServer(s, health.NewServer())
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String(), s.Stop
}

func testConfig(t *testing.T) grpcclient.Config {
	var cfg grpcclient.Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlagsWithPrefix("ingester.client", "ingester", fs)
	require.NoError(t, cfg.Validate())
	return cfg
}

func TestPool_RetriesReadsButNotPushes(t *testing.T) {
	fake := &flakyIngester{}
	addr, _ := startServer(t, fake)
	pool := NewPool(testConfig(t), nil, slog.New(slog.DiscardHandler))
	defer pool.Close()
	client, err := pool.GetClientFor(addr)
	require.NoError(t, err)
	ctx := tenant.NewContext(context.Background(), "t1")

	resp, err := client.LabelNames(ctx, &ingesterpb.LabelNamesRequest{})
	require.NoError(t, err, "a read is retried after Unavailable")
	require.Equal(t, []string{"job"}, resp.Names)
	require.EqualValues(t, 2, fake.labelNameCalls.Load())

	_, err = client.Push(ctx, &ingesterpb.PushRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "a push is not retried by the client")
	require.EqualValues(t, 1, fake.pushCalls.Load())
}

// slowIngester never answers LabelNames before the caller gives up.
type slowIngester struct {
	ingesterpb.UnimplementedIngesterServer
}

func (slowIngester) LabelNames(ctx context.Context, _ *ingesterpb.LabelNamesRequest) (*ingesterpb.LabelNamesResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestPool_ReadCallsHaveATimeout(t *testing.T) {
	addr, _ := startServer(t, slowIngester{})
	cfg := testConfig(t)
	cfg.ReadTimeout = 50 * time.Millisecond
	pool := NewPool(cfg, nil, slog.New(slog.DiscardHandler))
	defer pool.Close()
	client, err := pool.GetClientFor(addr)
	require.NoError(t, err)
	_, err = client.LabelNames(tenant.NewContext(context.Background(), "t1"), &ingesterpb.LabelNamesRequest{})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
}

// recordingIngester keeps the write requests pushed to it.
type recordingIngester struct {
	ingesterpb.UnimplementedIngesterServer
	received chan []byte
}

func (r *recordingIngester) Push(_ context.Context, req *ingesterpb.PushRequest) (*ingesterpb.PushResponse, error) {
	r.received <- req.WriteRequest
	return &ingesterpb.PushResponse{}, nil
}

// countingPool records when a buffer's last reference is freed.
type countingPool struct{ puts atomic.Int32 }

func (p *countingPool) Get(n int) *[]byte { b := make([]byte, n); return &b }
func (p *countingPool) Put(*[]byte)       { p.puts.Add(1) }

func TestIngesterClient_PushEncodedSendsThePartsAndFreesTheBody(t *testing.T) {
	fake := &recordingIngester{received: make(chan []byte, 1)}
	addr, _ := startServer(t, fake)
	pool := NewPool(testConfig(t), nil, slog.New(slog.DiscardHandler))
	defer pool.Close()

	// A body above gRPC's pooling threshold, so that it is reference-counted.
	raw := make([]byte, 8<<10)
	for i := range raw {
		raw[i] = byte(i)
	}
	bodyPool := &countingPool{}
	body := mem.NewBuffer(&raw, bodyPool)
	own := []byte("own bytes")
	req := &ingesterpb.EncodedPushRequest{Body: body, Own: own}
	req.Add(ingesterpb.EncodedPart{Start: 100, End: 200})
	req.Add(ingesterpb.EncodedPart{Start: 200, End: 5000}) // merged with the previous range
	req.Add(ingesterpb.EncodedPart{Start: 4, End: 9, InOwn: true})
	req.Add(ingesterpb.EncodedPart{Start: 7000, End: 8192})
	req.Add(ingesterpb.EncodedPart{Start: 0, End: 3, InOwn: true})
	want := slices.Concat(raw[100:5000], own[4:9], raw[7000:], own[0:3])
	require.Equal(t, want, req.WriteRequest())

	pusher, err := pool.PusherFor(addr)
	require.NoError(t, err)
	require.NoError(t, pusher.PushEncoded(tenant.NewContext(context.Background(), "t1"), req))
	require.Equal(t, want, <-fake.received)

	// gRPC has freed its views of the body; the last reference is the caller's.
	require.Zero(t, bodyPool.puts.Load())
	body.Free()
	require.EqualValues(t, 1, bodyPool.puts.Load())
}
