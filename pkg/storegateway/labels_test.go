package storegateway

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

func TestLabelNamesAndValues(t *testing.T) {
	tt := newTwoTenants(t, objstore.NewInMemBucket())
	client := serveGRPC(t, startStoreGateway(t, testConfig(t), tt.bkt))
	ctx1 := tenant.NewContext(context.Background(), "tenant-1")
	ctx2 := tenant.NewContext(context.Background(), "tenant-2")
	all := idStrings(tt.blocks1)
	day := 24 * time.Hour.Milliseconds()
	m := func(t labels.MatchType, n, v string) []*seriespb.LabelMatcher {
		return seriespb.FromLabelMatchers([]*labels.Matcher{labels.MustNewMatcher(t, n, v)})
	}

	for _, tc := range []struct {
		name      string
		ctx       context.Context
		blocks    []string
		matchers  []*seriespb.LabelMatcher
		mint      int64
		wantNames []string
		wantJobs  []string
		queried   []string
	}{
		{"all", ctx1, all, nil, 0, []string{"__name__", "instance", "job", "path"}, []string{"a", "b", "c"}, all},
		{"matchers", ctx1, all, m(labels.MatchEqual, "__name__", "up"), 0, []string{"__name__", "instance", "job"}, []string{"a", "b", "c"}, all},
		{"regex matcher", ctx1, all, m(labels.MatchRegexp, "path", "/a.*"), 0, []string{"__name__", "job", "path"}, []string{"a"}, all},
		{"other tenant", ctx2, idStrings(tt.blocks2), m(labels.MatchEqual, "instance", "9"), 0, []string{"__name__", "instance", "job"}, []string{"z"}, idStrings(tt.blocks2)},
		{"another tenant's blocks", ctx2, all, nil, 0, []string{}, []string{}, []string{}},
		{"unknown block", ctx1, []string{ulid.MustNew(1, nil).String()}, nil, 0, []string{}, []string{}, []string{}},
		{"range after the blocks", ctx1, all, m(labels.MatchEqual, "__name__", "up"), day, []string{}, []string{}, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names, err := client.LabelNames(tc.ctx, &storegatewaypb.LabelNamesRequest{
				MinTimeMs: tc.mint, MaxTimeMs: tc.mint + day, Matchers: tc.matchers, BlockIds: tc.blocks,
			})
			require.NoError(t, err)
			require.Equal(t, tc.wantNames, nonNil(names.Names))
			require.ElementsMatch(t, tc.queried, names.QueriedBlockIds)

			values, queried := callLabelValues(t, client, tc.ctx, &storegatewaypb.LabelValuesRequest{
				Name: "job", MinTimeMs: tc.mint, MaxTimeMs: tc.mint + day, Matchers: tc.matchers, BlockIds: tc.blocks,
			})
			require.Equal(t, tc.wantJobs, nonNil(values))
			require.ElementsMatch(t, tc.queried, queried)
		})
	}
}

// callLabelValues collects a LabelValues stream: the values of every message, and the queried blocks that
// the first one lists.
func callLabelValues(t *testing.T, client storegatewaypb.StoreGatewayClient, ctx context.Context, req *storegatewaypb.LabelValuesRequest) (values, queried []string) {
	t.Helper()
	stream, err := client.LabelValues(ctx, req)
	require.NoError(t, err)
	for i := 0; ; i++ {
		resp, err := stream.Recv()
		if err == io.EOF {
			require.Positive(t, i, "the first message lists the queried blocks, even without values")
			return values, queried
		}
		require.NoError(t, err)
		if i > 0 {
			require.Nil(t, resp.QueriedBlockIds, "queried blocks after the first message")
		}
		values = append(values, resp.Values...)
		queried = append(queried, resp.QueriedBlockIds...)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
