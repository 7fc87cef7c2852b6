package app

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
)

func TestLocalStream_DeliversMessagesInOrderThenEOF(t *testing.T) {
	handler := func(req *storegatewaypb.LabelValuesRequest, srv grpc.ServerStreamingServer[storegatewaypb.LabelValuesResponse]) error {
		for _, v := range []string{"a", "b", "c"} {
			if err := srv.Send(&storegatewaypb.LabelValuesResponse{Values: []string{req.Name + v}}); err != nil {
				return err
			}
		}
		return nil
	}
	s := startLocalStream(context.Background(), &storegatewaypb.LabelValuesRequest{Name: "x"}, handler)
	var got []string
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, m.Values...)
	}
	require.Equal(t, []string{"xa", "xb", "xc"}, got)
	_, err := s.Recv()
	require.ErrorIs(t, err, io.EOF, "a finished stream stays finished")
}

func TestLocalStream_HandlerErrorReachesTheCallerAfterItsMessages(t *testing.T) {
	refused := status.Error(codes.InvalidArgument, "too many series")
	handler := func(_ *storegatewaypb.LabelValuesRequest, srv grpc.ServerStreamingServer[storegatewaypb.LabelValuesResponse]) error {
		if err := srv.Send(&storegatewaypb.LabelValuesResponse{Values: []string{"v"}}); err != nil {
			return err
		}
		return refused
	}
	s := startLocalStream(context.Background(), &storegatewaypb.LabelValuesRequest{}, handler)
	m, err := s.Recv()
	require.NoError(t, err)
	require.Equal(t, []string{"v"}, m.Values)
	_, err = s.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

// A querier that stops reading cancels its context; the handler blocked in Send must then return, or
// it would hold its goroutine and the blocks it acquired forever.
func TestLocalStream_CancelledCallerReleasesABlockedHandler(t *testing.T) {
	returned := make(chan error, 1)
	handler := func(_ *storegatewaypb.LabelValuesRequest, srv grpc.ServerStreamingServer[storegatewaypb.LabelValuesResponse]) error {
		for {
			if err := srv.Send(&storegatewaypb.LabelValuesResponse{Values: []string{"v"}}); err != nil {
				returned <- err
				return err
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := startLocalStream(ctx, &storegatewaypb.LabelValuesRequest{}, handler)
	_, err := s.Recv()
	require.NoError(t, err)
	cancel()
	select {
	case err := <-returned:
		require.Equal(t, codes.Canceled, status.Code(err))
	case <-time.After(10 * time.Second):
		t.Fatal("the handler is still blocked in Send after its caller cancelled")
	}
}
