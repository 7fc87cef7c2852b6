package app

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/storegateway"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
)

// storeGatewayClients gives the querier a client per store-gateway address: the pool's connection, or,
// for the store-gateway of this process (-target=all), the store-gateway itself. A query's chunks then
// reach the engine without being encoded, sent over loopback and decoded again, which was a quarter of a
// cold 7-day dashboard's CPU. The store-gateway runs the same handlers with the same tenant context and
// limits; its answers are built afresh per call and its chunk bytes are never written after they are
// read, so the querier may keep them.
type storeGatewayClients struct{ app *App }

func (c storeGatewayClients) GetStoreGatewayClient(addr string) (storegatewaypb.StoreGatewayClient, error) {
	// Both fields are set while the modules are built, before any query is served.
	if sg := c.app.storeGateway; sg != nil && addr == c.app.localStoreGatewayAddr {
		return localStoreGateway{sg}, nil
	}
	conn, err := c.app.storeGatewayClients.Conn(addr)
	if err != nil {
		return nil, err
	}
	return storegatewaypb.NewStoreGatewayClient(conn), nil
}

type localStoreGateway struct{ sg *storegateway.StoreGateway }

func (l localStoreGateway) Series(ctx context.Context, req *storegatewaypb.SeriesRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[storegatewaypb.SeriesResponse], error) {
	return startLocalStream(ctx, req, l.sg.Series), nil
}

func (l localStoreGateway) LabelNames(ctx context.Context, req *storegatewaypb.LabelNamesRequest, _ ...grpc.CallOption) (*storegatewaypb.LabelNamesResponse, error) {
	return l.sg.LabelNames(ctx, req)
}

func (l localStoreGateway) LabelValues(ctx context.Context, req *storegatewaypb.LabelValuesRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[storegatewaypb.LabelValuesResponse], error) {
	return startLocalStream(ctx, req, l.sg.LabelValues), nil
}

func (l localStoreGateway) QueryExemplars(ctx context.Context, req *storegatewaypb.ExemplarsRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[storegatewaypb.ExemplarsResponse], error) {
	return startLocalStream(ctx, req, l.sg.QueryExemplars), nil
}

// localStream runs a server-streaming handler in its own goroutine and hands each message it sends to
// the caller's Recv, as a gRPC stream would, without encoding it. One message is in flight at a time, so a
// slow reader holds the handler back as gRPC's flow control does. Cancelling the caller's context ends
// the handler's Send with the context's status, as a cancelled call does on a server.
type localStream[Res any] struct {
	ctx  context.Context
	msgs chan *Res
	err  error // the handler's result; read after msgs is closed
}

func startLocalStream[Req, Res any](ctx context.Context, req *Req, handler func(*Req, grpc.ServerStreamingServer[Res]) error) *localStream[Res] {
	s := &localStream[Res]{ctx: ctx, msgs: make(chan *Res)}
	go func() {
		defer close(s.msgs)
		s.err = handler(req, localServerStream[Res]{s})
	}()
	return s
}

// Recv implements grpc.ServerStreamingClient: io.EOF once the handler has returned nil.
func (s *localStream[Res]) Recv() (*Res, error) {
	m, ok := <-s.msgs
	if ok {
		return m, nil
	}
	if s.err != nil {
		return nil, s.err
	}
	return nil, io.EOF
}

func (s *localStream[Res]) Header() (metadata.MD, error) { return nil, nil }
func (s *localStream[Res]) Trailer() metadata.MD         { return nil }
func (s *localStream[Res]) CloseSend() error             { return nil }
func (s *localStream[Res]) Context() context.Context     { return s.ctx }
func (s *localStream[Res]) SendMsg(any) error            { return errors.New("a server stream takes no messages") }

// RecvMsg is not used: the querier calls Recv.
func (s *localStream[Res]) RecvMsg(any) error { return errors.New("use Recv on an in-process stream") }

// localServerStream is the handler's side of a localStream.
type localServerStream[Res any] struct{ s *localStream[Res] }

func (ss localServerStream[Res]) Send(m *Res) error {
	select {
	case ss.s.msgs <- m:
		return nil
	case <-ss.s.ctx.Done():
		return status.FromContextError(ss.s.ctx.Err()).Err()
	}
}

func (ss localServerStream[Res]) SetHeader(metadata.MD) error  { return nil }
func (ss localServerStream[Res]) SendHeader(metadata.MD) error { return nil }
func (ss localServerStream[Res]) SetTrailer(metadata.MD)       {}
func (ss localServerStream[Res]) Context() context.Context     { return ss.s.ctx }
func (ss localServerStream[Res]) RecvMsg(any) error {
	return errors.New("a server stream takes no messages")
}

func (ss localServerStream[Res]) SendMsg(m any) error {
	msg, ok := m.(*Res)
	if !ok {
		return errors.New("wrong message type for this stream")
	}
	return ss.Send(msg)
}
