package ingester

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/validation"
)

// sentStream is the server side of a server-streaming call: it keeps a copy of each message sent, made
// as gRPC's marshalling makes one (the ingester may reuse the memory behind a message once Send has
// returned), and calls afterSend, when set, with the number of messages sent so far.
type sentStream[T any] struct {
	grpc.ServerStream
	ctx       context.Context
	sent      []*T
	afterSend func(n int)
}

func (s *sentStream[T]) Context() context.Context { return s.ctx }

func (s *sentStream[T]) Send(msg *T) error {
	s.sent = append(s.sent, any(proto.Clone(any(msg).(proto.Message))).(*T))
	if s.afterSend != nil {
		s.afterSend(len(s.sent))
	}
	return nil
}

// LabelValues is the streaming LabelValues gathered into one answer, so that tests read it like a call.
func (ti *testIngester) LabelValues(ctx context.Context, req *ingesterpb.LabelValuesRequest) (*ingesterpb.LabelValuesResponse, error) {
	stream := &sentStream[ingesterpb.LabelValuesResponse]{ctx: ctx}
	if err := ti.Ingester.LabelValues(req, stream); err != nil {
		return nil, err
	}
	out := &ingesterpb.LabelValuesResponse{}
	for _, msg := range stream.sent {
		out.Values = append(out.Values, msg.Values...)
	}
	return out, nil
}

// Series is the streaming Series gathered into one answer, so that tests read it like a call.
func (ti *testIngester) Series(ctx context.Context, req *ingesterpb.SeriesRequest) (*ingesterpb.SeriesResponse, error) {
	stream := &sentStream[ingesterpb.SeriesResponse]{ctx: ctx}
	if err := ti.Ingester.Series(req, stream); err != nil {
		return nil, err
	}
	out := &ingesterpb.SeriesResponse{}
	for _, msg := range stream.sent {
		out.Series = append(out.Series, msg.Series...)
	}
	return out, nil
}

// pushSeries writes n series of metric "m", each with a label "id" of padTo bytes (or its own short
// value) and samples at baseTs and a minute later, and returns the matcher that selects them all.
func pushSeries(tb testing.TB, ing *testIngester, tenantID string, n, padTo int) []*seriespb.LabelMatcher {
	tb.Helper()
	series := make([]prompb.TimeSeries, n)
	for i := range series {
		id := fmt.Sprintf("%06d", i)
		if len(id) < padTo {
			id += strings.Repeat("x", padTo-len(id))
		}
		series[i] = floatSeries(lbls("__name__", "m", "id", id), sample{t: baseTs, v: float64(i)}, sample{t: baseTs + minute, v: float64(i) * 1.5})
	}
	require.NoError(tb, ing.push(tb, tenantID, series))
	return []*seriespb.LabelMatcher{equal("__name__", "m")}
}

// streamed is what a QueryStream sent: messages, series, and bytes of chunk data.
type streamed struct {
	messages, series, chunkBytes int
}

func queryStreamSent(stream *sentStream[ingesterpb.QueryStreamResponse]) streamed {
	out := streamed{messages: len(stream.sent)}
	for _, msg := range stream.sent {
		out.series += len(msg.Series)
		for _, s := range msg.Series {
			for _, c := range s.Chunks {
				out.chunkBytes += len(c.Data)
			}
		}
	}
	return out
}

// requireLimitError checks that err is the read status of limit key, and that its message names the
// limit's error ID.
func requireLimitError(t *testing.T, err error, key string) {
	t.Helper()
	require.Equal(t, codes.ResourceExhausted, status.Code(err), err)
	limitErr, ok := seriespb.LimitErrorOf(err)
	require.True(t, ok, "the status carries the limit: %v", err)
	require.Equal(t, key, limitErr.Key)
	require.Contains(t, err.Error(), validation.ErrorID(key))
}

// The early check counts only the head's series with samples in the range: series outside it never make
// a read over the limit.
func TestQueryStream_SeriesOutsideTheRangeDoNotCountTowardTheLimit(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	matchers := pushSeries(t, ing, tenantA, 1000, 0)
	later := &sentStream[ingesterpb.QueryStreamResponse]{ctx: tenantCtx(tenantA)}
	// One more series, an hour later: the only one in a range that starts after the 1000 end.
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(lbls("__name__", "m", "id", "late"), sample{t: baseTs + 60*minute, v: 1})}))
	err := ing.QueryStream(&ingesterpb.QueryRequest{StartMs: baseTs + 30*minute, EndMs: forever, Matchers: matchers,
		Limits: &seriespb.FetchLimits{MaxSeries: 10}}, later)
	require.NoError(t, err)
	require.Equal(t, 1, queryStreamSent(later).series)
}

func TestQueryStream_StopsSendingAtTheFetchLimits(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	matchers := pushSeries(t, ing, tenantA, 1000, 0)
	query := func(limits *seriespb.FetchLimits) (streamed, error) {
		stream := &sentStream[ingesterpb.QueryStreamResponse]{ctx: tenantCtx(tenantA)}
		err := ing.QueryStream(&ingesterpb.QueryRequest{StartMs: everything, EndMs: forever, Matchers: matchers, Limits: limits}, stream)
		return queryStreamSent(stream), err
	}
	all, err := query(nil)
	require.NoError(t, err)
	require.Equal(t, 1000, all.series)
	require.Greater(t, all.messages, 3, "the answer spans several messages")

	t.Run("series", func(t *testing.T) {
		// The head alone holds more matching series than the limit: refused before any is selected.
		sent, err := query(&seriespb.FetchLimits{MaxSeries: int64(all.series / 3)})
		requireLimitError(t, err, "max_fetched_series_per_query")
		require.Equal(t, streamed{}, sent)
	})
	t.Run("chunk bytes", func(t *testing.T) {
		limit := all.chunkBytes / 3
		sent, err := query(&seriespb.FetchLimits{MaxChunkBytes: int64(limit)})
		requireLimitError(t, err, "max_fetched_chunk_bytes_per_query")
		require.Positive(t, sent.chunkBytes)
		require.LessOrEqual(t, sent.chunkBytes, limit)
		require.Less(t, sent.messages, all.messages)
	})
	t.Run("an answer at the limits is sent whole", func(t *testing.T) {
		sent, err := query(&seriespb.FetchLimits{MaxSeries: int64(all.series), MaxChunkBytes: int64(all.chunkBytes)})
		require.NoError(t, err)
		require.Equal(t, all, sent)
	})
	t.Run("a canceled query stops the stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(tenantCtx(tenantA))
		defer cancel()
		stream := &sentStream[ingesterpb.QueryStreamResponse]{ctx: ctx, afterSend: func(int) { cancel() }}
		err := ing.QueryStream(&ingesterpb.QueryRequest{StartMs: everything, EndMs: forever, Matchers: matchers}, stream)
		require.Equal(t, codes.Canceled, status.Code(err), err)
		require.Len(t, stream.sent, 1)
	})
}

func TestSeries_StreamsBoundedMessagesAndStopsAtTheSeriesLimit(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	// 3000 label sets of over 1 KiB: over 3 MiB, a message of its own in no more than about 1 MiB.
	matchers := pushSeries(t, ing, tenantA, 3000, 1024)
	series := func(req *ingesterpb.SeriesRequest) (*sentStream[ingesterpb.SeriesResponse], error) {
		stream := &sentStream[ingesterpb.SeriesResponse]{ctx: tenantCtx(tenantA)}
		req.StartMs, req.EndMs, req.Matchers = everything, forever, matchers
		return stream, ing.Ingester.Series(req, stream)
	}
	sentSeries := func(stream *sentStream[ingesterpb.SeriesResponse]) []string {
		var out []string
		for _, msg := range stream.sent {
			require.Less(t, proto.Size(msg), labelBatchBytes*21/20, "a message holds about labelBatchBytes")
			for _, s := range msg.Series {
				out = append(out, renderLabels(s.Labels))
			}
		}
		return out
	}

	all, err := series(&ingesterpb.SeriesRequest{})
	require.NoError(t, err)
	require.Greater(t, len(all.sent), 2)
	got := sentSeries(all)
	require.Len(t, got, 3000)
	require.True(t, slices.IsSorted(got), "label order across messages")

	limited, err := series(&ingesterpb.SeriesRequest{Limits: &seriespb.FetchLimits{MaxSeries: 1500}})
	requireLimitError(t, err, "max_fetched_series_per_query")
	require.LessOrEqual(t, len(sentSeries(limited)), 1500)
	require.Less(t, len(limited.sent), len(all.sent))

	atLimit, err := series(&ingesterpb.SeriesRequest{Limits: &seriespb.FetchLimits{MaxSeries: 3000, MaxChunkBytes: 1}})
	require.NoError(t, err, "label sets have no chunks to count")
	require.Equal(t, got, sentSeries(atLimit))

	truncated, err := series(&ingesterpb.SeriesRequest{Limit: 10, Limits: &seriespb.FetchLimits{MaxSeries: 5}})
	requireLimitError(t, err, "max_fetched_series_per_query")
	require.LessOrEqual(t, len(sentSeries(truncated)), 5)
	truncated, err = series(&ingesterpb.SeriesRequest{Limit: 10, Limits: &seriespb.FetchLimits{MaxSeries: 10}})
	require.NoError(t, err, "the request's own limit ends the answer before the fetch limit")
	require.Equal(t, got[:10], sentSeries(truncated))
}

func TestLabelValues_StreamsBoundedMessages(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	pushSeries(t, ing, tenantA, 3000, 1024)
	stream := &sentStream[ingesterpb.LabelValuesResponse]{ctx: tenantCtx(tenantA)}
	require.NoError(t, ing.Ingester.LabelValues(&ingesterpb.LabelValuesRequest{Name: "id", StartMs: everything, EndMs: forever}, stream))
	require.Greater(t, len(stream.sent), 2)
	var values []string
	for _, msg := range stream.sent {
		require.Less(t, proto.Size(msg), labelBatchBytes*21/20)
		values = append(values, msg.Values...)
	}
	require.Len(t, values, 3000)
	require.True(t, slices.IsSorted(values))
	require.Equal(t, slices.Compact(slices.Clone(values)), values, "each value once")
}
