package ingester

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/querysharding"
	"github.com/strata-metrics/strata/pkg/seriespb"
)

// shardTestSeries pushes n series of metric "m" (label id) and n of metric "other", and returns their
// rendered label sets by the shard of count they fall in (index 0 is shard 1), computed from the hash
// directly rather than through querysharding.
func shardTestSeries(t *testing.T, ing *testIngester, n int, count uint64) (all []string, byShard [][]string) {
	t.Helper()
	var series []prompb.TimeSeries
	byShard = make([][]string, count)
	for _, name := range []string{"m", "other"} {
		for i := range n {
			id := fmt.Sprintf("%04d", i)
			series = append(series, floatSeries(lbls("__name__", name, "id", id), sample{t: baseTs, v: float64(i)}))
			rendered := fmt.Sprintf("{__name__=%q, id=%q}", name, id)
			all = append(all, rendered)
			h := labels.StableHash(labels.FromStrings("__name__", name, "id", id)) % count
			byShard[h] = append(byShard[h], rendered)
		}
	}
	require.NoError(t, ing.push(t, tenantA, series))
	return all, byShard
}

func shardMatcher(i, n uint64) *seriespb.LabelMatcher {
	return equal(querysharding.Label, querysharding.Shard{Index: i, Count: n}.String())
}

// onlyMetric keeps the rendered series of metric m.
func onlyMetric(series []string, m string) []string {
	prefix := fmt.Sprintf("{__name__=%q", m)
	return slices.DeleteFunc(slices.Clone(series), func(s string) bool { return len(s) < len(prefix) || s[:len(prefix)] != prefix })
}

func TestQueryStream_ShardsPartitionTheMatchingSeries(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	const count = 5
	all, byShard := shardTestSeries(t, ing, 200, count)

	var union []string
	for i := uint64(1); i <= count; i++ {
		got := slices.Sorted(maps.Keys(ing.queryStream(t, tenantA, everything, forever, equal("__name__", "m"), shardMatcher(i, count))))
		want := onlyMetric(byShard[i-1], "m")
		slices.Sort(want)
		require.NotEmpty(t, want)
		require.Equal(t, want, got, "shard %d of %d", i, count)
		union = append(union, got...)
	}
	slices.Sort(union)
	require.Equal(t, slices.Sorted(slices.Values(onlyMetric(all, "m"))), union, "the shards together are every series once")

	t.Run("the shard selector alone selects the shard's series of every metric", func(t *testing.T) {
		got := slices.Sorted(maps.Keys(ing.queryStream(t, tenantA, everything, forever, shardMatcher(2, count))))
		require.Equal(t, slices.Sorted(slices.Values(byShard[1])), got)
	})
	t.Run("one shard of one is everything", func(t *testing.T) {
		got := ing.queryStream(t, tenantA, everything, forever, equal("__name__", "other"), shardMatcher(1, 1))
		require.Len(t, got, 200)
	})
}

func TestReads_MalformedShardSelectorIsInvalidArgument(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	shardTestSeries(t, ing, 10, 2)
	for _, bad := range [][]*seriespb.LabelMatcher{
		{equal("__name__", "m"), equal(querysharding.Label, "3_of_2")},
		{equal("__name__", "m"), {Type: seriespb.MatchType_REGEX_MATCH, Name: querysharding.Label, Value: "1_of_2"}},
		{equal("__name__", "m"), shardMatcher(1, 2), shardMatcher(2, 2)},
	} {
		err := ing.QueryStream(&ingesterpb.QueryRequest{StartMs: everything, EndMs: forever, Matchers: bad},
			&sentStream[ingesterpb.QueryStreamResponse]{ctx: tenantCtx(tenantA)})
		require.Equal(t, codes.InvalidArgument, status.Code(err), err)
		require.Contains(t, err.Error(), querysharding.Label)

		_, err = ing.LabelNames(tenantCtx(tenantA), &ingesterpb.LabelNamesRequest{StartMs: everything, EndMs: forever, Matchers: bad})
		require.Equal(t, codes.InvalidArgument, status.Code(err), err)
	}
}

// A shard's series limit is about the series the shard sends: the early refusal counts only the
// shard's series in the head, and so does the stream.
func TestQueryStream_OnlyTheShardsSeriesCountTowardTheSeriesLimit(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	const count = 4
	_, byShard := shardTestSeries(t, ing, 400, count)
	inShard := len(onlyMetric(byShard[0], "m"))
	require.Less(t, inShard, 300, "the shard holds fewer series than the metric, so the postings count alone cannot decide")

	query := func(maxSeries int) (int, error) {
		stream := &sentStream[ingesterpb.QueryStreamResponse]{ctx: tenantCtx(tenantA)}
		err := ing.QueryStream(&ingesterpb.QueryRequest{StartMs: everything, EndMs: forever,
			Matchers: []*seriespb.LabelMatcher{equal("__name__", "m"), shardMatcher(1, count)},
			Limits:   &seriespb.FetchLimits{MaxSeries: int64(maxSeries)}}, stream)
		return queryStreamSent(stream).series, err
	}
	sent, err := query(inShard)
	require.NoError(t, err, "400 series match, but only the shard's %d are read", inShard)
	require.Equal(t, inShard, sent)

	sent, err = query(inShard - 1)
	requireLimitError(t, err, "max_fetched_series_per_query")
	require.Zero(t, sent, "refused before any series is sent")
}

func TestSeries_ShardIsPickedOutBeforeTheRequestsLimit(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	const count = 3
	_, byShard := shardTestSeries(t, ing, 100, count)
	want := slices.Sorted(slices.Values(onlyMetric(byShard[2], "m")))

	series := func(limit int64, limits *seriespb.FetchLimits) ([]string, error) {
		resp, err := ing.Series(tenantCtx(tenantA), &ingesterpb.SeriesRequest{StartMs: everything, EndMs: forever, Limit: limit, Limits: limits,
			Matchers: []*seriespb.LabelMatcher{equal("__name__", "m"), shardMatcher(3, count)}})
		if err != nil {
			return nil, err
		}
		var out []string
		for _, s := range resp.Series {
			out = append(out, renderLabels(s.Labels))
		}
		return out, nil
	}
	got, err := series(0, nil)
	require.NoError(t, err)
	require.Equal(t, want, got)

	got, err = series(5, nil)
	require.NoError(t, err)
	require.Equal(t, want[:5], got, "the first 5 series of the shard, not the shard's among the first 5")

	got, err = series(0, &seriespb.FetchLimits{MaxSeries: int64(len(want))})
	require.NoError(t, err)
	require.Equal(t, want, got)
	_, err = series(0, &seriespb.FetchLimits{MaxSeries: int64(len(want) - 1)})
	requireLimitError(t, err, "max_fetched_series_per_query")
}

func TestLabelNamesAndValues_AnswerForTheShardsSeriesOnly(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	const count = 4
	_, byShard := shardTestSeries(t, ing, 50, count)
	// A label only one series has: only its shard knows the name.
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(lbls("__name__", "m", "id", "0000", "rare", "yes"), sample{t: baseTs, v: 1})}))
	rareShard := labels.StableHash(labels.FromStrings("__name__", "m", "id", "0000", "rare", "yes"))%count + 1

	var allIDs []string
	for i := uint64(1); i <= count; i++ {
		vs, err := ing.LabelValues(tenantCtx(tenantA), &ingesterpb.LabelValuesRequest{Name: "id", StartMs: everything, EndMs: forever,
			Matchers: []*seriespb.LabelMatcher{equal("__name__", "other"), shardMatcher(i, count)}})
		require.NoError(t, err)
		var want []string
		for _, s := range onlyMetric(byShard[i-1], "other") {
			want = append(want, s[len(`{__name__="other", id="`):len(s)-2])
		}
		slices.Sort(want)
		require.Equal(t, want, vs.Values, "shard %d", i)
		allIDs = append(allIDs, vs.Values...)

		names, err := ing.LabelNames(tenantCtx(tenantA), &ingesterpb.LabelNamesRequest{StartMs: everything, EndMs: forever,
			Matchers: []*seriespb.LabelMatcher{shardMatcher(i, count)}})
		require.NoError(t, err)
		if i == rareShard {
			require.Equal(t, []string{"__name__", "id", "rare"}, names.Names)
		} else {
			require.Equal(t, []string{"__name__", "id"}, names.Names)
		}
	}
	require.Len(t, allIDs, 50)

	limited, err := ing.LabelValues(tenantCtx(tenantA), &ingesterpb.LabelValuesRequest{Name: "id", StartMs: everything, EndMs: forever, Limit: 2,
		Matchers: []*seriespb.LabelMatcher{equal("__name__", "other"), shardMatcher(1, count)}})
	require.NoError(t, err)
	require.Len(t, limited.Values, 2)
}
