package app

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
)

// The ingester's chunk bytes are valid only while its read is open: what the querier receives in process
// must be copies, which stay intact when the ingester's memory is reused after the stream ends.
func TestCopyingChunksStream_ReceivedChunksDoNotShareTheIngestersMemory(t *testing.T) {
	head := []byte{1, 2, 3, 4, 5, 6}
	handler := func(_ *ingesterpb.QueryRequest, srv grpc.ServerStreamingServer[ingesterpb.QueryStreamResponse]) error {
		return copyingChunksStream{srv}.Send(&ingesterpb.QueryStreamResponse{Series: []*seriespb.Series{
			{Chunks: []*seriespb.Chunk{{Data: head[:2]}, {Data: head[2:4]}}},
			{Chunks: []*seriespb.Chunk{{Data: head[4:]}}},
		}})
	}
	s := startLocalStream(context.Background(), &ingesterpb.QueryRequest{}, handler)
	m, err := s.Recv()
	require.NoError(t, err)
	for i := range head {
		head[i] = 0xff // the ingester's read is closed and its memory reused
	}
	require.Equal(t, []byte{1, 2}, m.Series[0].Chunks[0].Data)
	require.Equal(t, []byte{3, 4}, m.Series[0].Chunks[1].Data)
	require.Equal(t, []byte{5, 6}, m.Series[1].Chunks[0].Data)
	require.Len(t, m.Series[0].Chunks[0].Data[:cap(m.Series[0].Chunks[0].Data)], 2, "a chunk's copy cannot be appended into its neighbour's")
}
