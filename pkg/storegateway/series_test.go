package storegateway

import (
	"context"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// twoTenants is a bucket with blocks of two tenants whose series have the same names but different values.
type twoTenants struct {
	bkt                    objstore.Bucket
	pushed1, pushed2       []testSeries
	blocks1, blocks2       []ulid.ULID
	blocksEnd1, blocks2End int64
}

func newTwoTenants(t testing.TB, bkt objstore.Bucket) *twoTenants {
	tt := &twoTenants{bkt: bkt}
	end := 7 * time.Hour.Milliseconds()
	tt.pushed1 = makeSeries(0, end,
		labels.FromStrings("__name__", "up", "job", "a", "instance", "1"),
		labels.FromStrings("__name__", "up", "job", "b", "instance", "1"),
		labels.FromStrings("__name__", "up", "job", "c", "instance", "2"),
		labels.FromStrings("__name__", "requests_total", "job", "a", "path", "/api"),
	)
	// Tenant 2's series start 10 minutes later so its samples differ from tenant 1's.
	tt.pushed2 = makeSeries(10*testStep, end,
		labels.FromStrings("__name__", "up", "job", "a", "instance", "1"),
		labels.FromStrings("__name__", "up", "job", "z", "instance", "9"),
	)
	for i := range tt.pushed2 {
		for j := range tt.pushed2[i].samples {
			tt.pushed2[i].samples[j].v += 0.5
		}
	}
	tt.blocks1 = uploadBlocks(t, bkt, "tenant-1", createBlocks(t, tt.pushed1))
	tt.blocks2 = uploadBlocks(t, bkt, "tenant-2", createBlocks(t, tt.pushed2))
	tt.blocksEnd1 = blocksEnd(writeBucketIndex(t, bkt, "tenant-1"))
	tt.blocks2End = blocksEnd(writeBucketIndex(t, bkt, "tenant-2"))
	require.GreaterOrEqual(t, len(tt.blocks1), 2)
	return tt
}

func blocksEnd(idx *blockstore.Index) int64 {
	var end int64
	for _, b := range idx.Blocks {
		end = max(end, b.MaxTime)
	}
	return end
}

func TestSeries_ReturnsPushedSamples(t *testing.T) {
	tt := newTwoTenants(t, objstore.NewInMemBucket())
	sg := startStoreGateway(t, testConfig(t), tt.bkt)
	client := serveGRPC(t, sg)
	hour := time.Hour.Milliseconds()

	for _, tc := range []struct {
		name       string
		matchers   []*labels.Matcher
		mint, maxt int64
	}{
		{"all up series, whole range", []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")}, 0, 10 * hour},
		{"one series", []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"),
			labels.MustNewMatcher(labels.MatchEqual, "job", "b"),
		}, 0, 10 * hour},
		{"regex across metrics, inside one block", []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "job", "a|c")}, 30 * 60_000, 90 * 60_000},
		{"spanning the block boundary", []*labels.Matcher{labels.MustNewMatcher(labels.MatchNotEqual, "instance", "2")}, 2*hour - 5*60_000, 2*hour + 5*60_000},
		{"negative regex only", []*labels.Matcher{labels.MustNewMatcher(labels.MatchNotRegexp, "job", "a")}, 0, 3 * hour},
		{"no match", []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "nope")}, 0, 10 * hour},
		{"range after the blocks", []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")}, 5 * hour, 6 * hour},
		{"single timestamp", []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")}, hour, hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := callSeries(t, client, "tenant-1", &storegatewaypb.SeriesRequest{
				MinTimeMs: tc.mint, MaxTimeMs: tc.maxt,
				Matchers: seriespb.FromLabelMatchers(tc.matchers),
				BlockIds: idStrings(tt.blocks1),
			})
			want := expectedSeries(tt.pushed1, tc.matchers, tc.mint, tc.maxt, tt.blocksEnd1)
			requireSameSeries(t, want, res.series)
			require.ElementsMatch(t, idStrings(tt.blocks1), res.queried)
		})
	}

	t.Run("other tenant", func(t *testing.T) {
		ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")}
		res := callSeries(t, client, "tenant-2", &storegatewaypb.SeriesRequest{
			MinTimeMs: 0, MaxTimeMs: 10 * hour,
			Matchers: seriespb.FromLabelMatchers(ms),
			BlockIds: idStrings(tt.blocks2),
		})
		requireSameSeries(t, expectedSeries(tt.pushed2, ms, 0, 10*hour, tt.blocks2End), res.series)
		require.ElementsMatch(t, idStrings(tt.blocks2), res.queried)
	})
}

func TestSeries_NeverReturnsAnotherTenantsBlocks(t *testing.T) {
	tt := newTwoTenants(t, objstore.NewInMemBucket())
	client := serveGRPC(t, startStoreGateway(t, testConfig(t), tt.bkt))
	res := callSeries(t, client, "tenant-2", &storegatewaypb.SeriesRequest{
		MinTimeMs: 0, MaxTimeMs: time.Hour.Milliseconds() * 10,
		Matchers: seriespb.FromLabelMatchers([]*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "job", ".+")}),
		BlockIds: idStrings(tt.blocks1), // tenant 1's blocks
	})
	require.Empty(t, res.series)
	require.Empty(t, res.queried)
}

func TestSeries_UnknownBlocksAreNotListed(t *testing.T) {
	tt := newTwoTenants(t, objstore.NewInMemBucket())
	client := serveGRPC(t, startStoreGateway(t, testConfig(t), tt.bkt))
	unknown := ulid.MustNew(1, nil).String()
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "a")}
	res := callSeries(t, client, "tenant-1", &storegatewaypb.SeriesRequest{
		MinTimeMs: 0, MaxTimeMs: time.Hour.Milliseconds(),
		Matchers: seriespb.FromLabelMatchers(ms),
		BlockIds: []string{unknown, tt.blocks1[0].String(), tt.blocks1[0].String()},
	})
	require.Equal(t, []string{tt.blocks1[0].String()}, res.queried)
	require.NotEmpty(t, res.series)
}

func TestSeries_SkipChunks(t *testing.T) {
	tt := newTwoTenants(t, objstore.NewInMemBucket())
	client := serveGRPC(t, startStoreGateway(t, testConfig(t), tt.bkt))
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")}
	res := callSeries(t, client, "tenant-1", &storegatewaypb.SeriesRequest{
		MinTimeMs: 0, MaxTimeMs: time.Hour.Milliseconds(),
		Matchers:   seriespb.FromLabelMatchers(ms),
		BlockIds:   idStrings(tt.blocks1),
		SkipChunks: true,
	})
	require.Zero(t, res.chunks)
	var got []labels.Labels
	for _, s := range res.series {
		got = append(got, s.lset)
	}
	require.Equal(t, []labels.Labels{tt.pushed1[0].lset, tt.pushed1[1].lset, tt.pushed1[2].lset}, got)
}

func TestSeries_RejectsBadRequests(t *testing.T) {
	tt := newTwoTenants(t, objstore.NewInMemBucket())
	client := serveGRPC(t, startStoreGateway(t, testConfig(t), tt.bkt))
	ctx := tenant.NewContext(context.Background(), "tenant-1")
	for name, req := range map[string]*storegatewaypb.SeriesRequest{
		"bad block ID": {MaxTimeMs: 1, BlockIds: []string{"not-a-ulid"}},
		"bad regex": {MaxTimeMs: 1, Matchers: []*seriespb.LabelMatcher{
			{Type: seriespb.MatchType_REGEX_MATCH, Name: "job", Value: "("}}},
		"unknown matcher type": {MaxTimeMs: 1, Matchers: []*seriespb.LabelMatcher{{Type: 42, Name: "job"}}},
		"inverted range":       {MinTimeMs: 10, MaxTimeMs: 1},
	} {
		t.Run(name, func(t *testing.T) {
			stream, err := client.Series(ctx, req)
			require.NoError(t, err)
			_, err = stream.Recv()
			require.Equal(t, codes.InvalidArgument, status.Code(err), err)
		})
	}
	t.Run("no tenant", func(t *testing.T) {
		stream, err := client.Series(context.Background(), &storegatewaypb.SeriesRequest{})
		require.NoError(t, err)
		_, err = stream.Recv()
		require.Equal(t, codes.Unauthenticated, status.Code(err), err)
	})
}

// requireSameSeries compares series in order: labels and every sample.
func requireSameSeries(t *testing.T, want, got []testSeries) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].lset.String(), got[i].lset.String())
		require.Equal(t, want[i].samples, got[i].samples, want[i].lset.String())
	}
}
