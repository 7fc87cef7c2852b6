package seriespb

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/validation"
)

func TestNewFetchLimits_NilWithoutLimits(t *testing.T) {
	require.Nil(t, NewFetchLimits(&validation.Limits{}))
	require.Equal(t, &FetchLimits{MaxSeries: 5}, NewFetchLimits(&validation.Limits{MaxFetchedSeriesPerQuery: 5}))
	require.Equal(t, &FetchLimits{MaxChunkBytes: 7}, NewFetchLimits(&validation.Limits{MaxFetchedChunkBytesPerQuery: 7}))
}

func TestLimitStatus_CarriesTheLimitError(t *testing.T) {
	want := ChunkBytesLimitError(1024)
	err := LimitStatus(want)
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "err-strata-max-fetched-chunk-bytes-per-query")

	// As the querier receives it: the status rebuilt from its wire form, wrapped on the way.
	wire := status.FromProto(status.Convert(err).Proto()).Err()
	got, ok := LimitErrorOf(fmt.Errorf("ingester-1: %w", wire))
	require.True(t, ok)
	require.Equal(t, want, got)
	require.Equal(t, want.Error(), got.Error())

	got, ok = LimitErrorOf(fmt.Errorf("merge: %w", want))
	require.True(t, ok, "a limit error in the chain")
	require.Same(t, want, got)
}

func TestLimitErrorOf_OtherErrorsAreNoLimit(t *testing.T) {
	for _, err := range []error{
		// What gRPC itself answers for a message over the size limit.
		status.Error(codes.ResourceExhausted, "grpc: received message larger than max (200000000 vs. 104857600)"),
		status.Error(codes.Unavailable, "connection refused"),
		fmt.Errorf("plain"),
	} {
		_, ok := LimitErrorOf(err)
		require.False(t, ok, "%v", err)
	}
}

func TestFetchCounter_FailsOnceTheAnswerCrossesALimit(t *testing.T) {
	unlimited := NewFetchCounter(nil)
	for range 1000 {
		require.NoError(t, unlimited.Add(1<<20))
	}

	series := NewFetchCounter(&FetchLimits{MaxSeries: 2})
	require.NoError(t, series.Add(100))
	require.NoError(t, series.Add(100))
	err := series.Add(0)
	limitErr, ok := LimitErrorOf(err)
	require.True(t, ok)
	require.Equal(t, "max_fetched_series_per_query", limitErr.Key)

	bytes := NewFetchCounter(&FetchLimits{MaxChunkBytes: 150})
	require.NoError(t, bytes.Add(100))
	require.NoError(t, bytes.Add(50), "at the limit")
	limitErr, ok = LimitErrorOf(bytes.Add(1))
	require.True(t, ok)
	require.Equal(t, "max_fetched_chunk_bytes_per_query", limitErr.Key)
}
