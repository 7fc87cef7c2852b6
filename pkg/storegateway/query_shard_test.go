package storegateway

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/querysharding"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// shardedBlocks is a tenant's blocks holding 100 series of "requests_total" and 100 of "errors_total"
// over several 2h blocks, served by a store-gateway.
type shardedBlocks struct {
	client storegatewaypb.StoreGatewayClient
	pushed []testSeries
	blocks []string
	end    int64
}

const shardTenant = "tenant-1"

func newShardedBlocks(t *testing.T) *shardedBlocks {
	t.Helper()
	var lsets []labels.Labels
	for _, name := range []string{"requests_total", "errors_total"} {
		for i := range 100 {
			lsets = append(lsets, labels.FromStrings("__name__", name, "instance", fmt.Sprintf("host-%03d", i)))
		}
	}
	bkt := objstore.NewInMemBucket()
	sb := &shardedBlocks{pushed: makeSeries(0, 7*time.Hour.Milliseconds(), lsets...)}
	sb.blocks = idStrings(uploadBlocks(t, bkt, shardTenant, createBlocks(t, sb.pushed)))
	sb.end = blocksEnd(writeBucketIndex(t, bkt, shardTenant))
	require.GreaterOrEqual(t, len(sb.blocks), 2, "series are merged across blocks")
	sb.client = serveGRPC(t, startStoreGateway(t, testConfig(t), bkt))
	return sb
}

// inShard is the expected answer for matchers ms and shard i of n, the shard computed from the hash
// directly rather than through querysharding.
func (sb *shardedBlocks) inShard(ms []*labels.Matcher, i, n uint64) []testSeries {
	all := expectedSeries(sb.pushed, ms, 0, sb.end, sb.end)
	return slices.DeleteFunc(all, func(s testSeries) bool { return labels.StableHash(s.lset)%n != i-1 })
}

func withShard(ms []*labels.Matcher, i, n uint64) []*seriespb.LabelMatcher {
	return seriespb.FromLabelMatchers(append(slices.Clone(ms), querysharding.Shard{Index: i, Count: n}.Matcher()))
}

func TestSeries_ShardsPartitionTheMatchingSeries(t *testing.T) {
	sb := newShardedBlocks(t)
	requests := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "requests_total")}
	const n = 4
	var union []testSeries
	for i := uint64(1); i <= n; i++ {
		got := callSeries(t, sb.client, shardTenant, &storegatewaypb.SeriesRequest{
			MinTimeMs: 0, MaxTimeMs: sb.end, BlockIds: sb.blocks, Matchers: withShard(requests, i, n),
		})
		want := sb.inShard(requests, i, n)
		require.NotEmpty(t, want)
		require.Equal(t, want, got.series, "shard %d of %d, with every block's samples", i, n)
		union = append(union, got.series...)
	}
	slices.SortFunc(union, func(a, b testSeries) int { return labels.Compare(a.lset, b.lset) })
	require.Equal(t, expectedSeries(sb.pushed, requests, 0, sb.end, sb.end), union, "the shards together are every series once")

	t.Run("the shard selector alone selects the shard's series of every metric", func(t *testing.T) {
		got := callSeries(t, sb.client, shardTenant, &storegatewaypb.SeriesRequest{
			MinTimeMs: 0, MaxTimeMs: sb.end, BlockIds: sb.blocks, Matchers: withShard(nil, 3, n), SkipChunks: true,
		})
		want := sb.inShard(nil, 3, n)
		require.Len(t, got.series, len(want))
		for j := range want {
			require.Equal(t, want[j].lset, got.series[j].lset)
		}
	})
}

// A shard's series limit is about the series the shard sends, not those its matchers select.
func TestSeries_OnlyTheShardsSeriesCountTowardTheSeriesLimit(t *testing.T) {
	sb := newShardedBlocks(t)
	errors := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "errors_total")}
	want := sb.inShard(errors, 2, 3)
	require.Less(t, len(want), 100)

	ctx := tenant.NewContext(context.Background(), shardTenant)
	series := func(maxSeries int64) error {
		stream, err := sb.client.Series(ctx, &storegatewaypb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: sb.end, BlockIds: sb.blocks,
			Matchers: withShard(errors, 2, 3), Limits: &seriespb.FetchLimits{MaxSeries: maxSeries}})
		require.NoError(t, err)
		for {
			if _, err := stream.Recv(); err != nil {
				return err
			}
		}
	}
	require.Equal(t, "EOF", series(int64(len(want))).Error(), "100 series match, the shard's %d are read", len(want))
	err := series(int64(len(want) - 1))
	require.Equal(t, codes.ResourceExhausted, status.Code(err), err)
}

func TestLabelNamesAndValues_AnswerForTheShardsSeriesOnly(t *testing.T) {
	sb := newShardedBlocks(t)
	ctx := tenant.NewContext(context.Background(), shardTenant)
	const n = 3
	var allInstances []string
	for i := uint64(1); i <= n; i++ {
		var want []string
		for _, s := range sb.inShard(nil, i, n) {
			if s.lset.Get("__name__") == "requests_total" {
				want = append(want, s.lset.Get("instance"))
			}
		}
		slices.Sort(want)
		values, queried := callLabelValues(t, sb.client, ctx, &storegatewaypb.LabelValuesRequest{Name: "instance", MinTimeMs: 0, MaxTimeMs: sb.end,
			BlockIds: sb.blocks, Matchers: withShard([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "requests_total")}, i, n)})
		require.Equal(t, want, values, "shard %d", i)
		require.ElementsMatch(t, sb.blocks, queried)
		allInstances = append(allInstances, values...)

		// With the shard selector as the only matcher, names come from the shard's series, not the index.
		names, err := sb.client.LabelNames(ctx, &storegatewaypb.LabelNamesRequest{MinTimeMs: 0, MaxTimeMs: sb.end, BlockIds: sb.blocks, Matchers: withShard(nil, i, n)})
		require.NoError(t, err)
		require.Equal(t, []string{"__name__", "instance"}, names.Names)
		values, _ = callLabelValues(t, sb.client, ctx, &storegatewaypb.LabelValuesRequest{Name: "__name__", MinTimeMs: 0, MaxTimeMs: sb.end,
			BlockIds: sb.blocks, Matchers: withShard(nil, i, n)})
		require.Equal(t, []string{"errors_total", "requests_total"}, values)
	}
	require.Len(t, allInstances, 100)
}

func TestReads_MalformedShardSelectorIsInvalidArgument(t *testing.T) {
	sb := newShardedBlocks(t)
	ctx := tenant.NewContext(context.Background(), shardTenant)
	for _, bad := range [][]*seriespb.LabelMatcher{
		{{Type: seriespb.MatchType_EQUAL, Name: querysharding.Label, Value: "0_of_2"}},
		{{Type: seriespb.MatchType_REGEX_MATCH, Name: querysharding.Label, Value: "1_of_2"}},
		withShard([]*labels.Matcher{querysharding.Shard{Index: 1, Count: 2}.Matcher()}, 2, 2),
	} {
		stream, err := sb.client.Series(ctx, &storegatewaypb.SeriesRequest{MinTimeMs: 0, MaxTimeMs: sb.end, BlockIds: sb.blocks, Matchers: bad})
		require.NoError(t, err)
		_, err = stream.Recv()
		require.Equal(t, codes.InvalidArgument, status.Code(err), err)
		require.Contains(t, err.Error(), querysharding.Label)

		_, err = sb.client.LabelNames(ctx, &storegatewaypb.LabelNamesRequest{MinTimeMs: 0, MaxTimeMs: sb.end, BlockIds: sb.blocks, Matchers: bad})
		require.Equal(t, codes.InvalidArgument, status.Code(err), err)
	}
}
