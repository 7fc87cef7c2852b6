package querier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// QueryExemplars makes fakeIngester an IngesterClient; exemplarIngester answers it.
func (f *fakeIngester) QueryExemplars(context.Context, *ingesterpb.ExemplarQueryRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.ExemplarQueryResponse], error) {
	return nil, errors.New("not implemented")
}

// exemplarIngester answers QueryExemplars with fixed messages, or err.
type exemplarIngester struct {
	fakeIngester
	msgs []*ingesterpb.ExemplarQueryResponse
	err  error
	reqs []*ingesterpb.ExemplarQueryRequest
}

func (f *exemplarIngester) QueryExemplars(_ context.Context, req *ingesterpb.ExemplarQueryRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.ExemplarQueryResponse], error) {
	f.reqs = append(f.reqs, req)
	if f.err != nil {
		return nil, f.err
	}
	return &fakeStream[ingesterpb.ExemplarQueryResponse]{msgs: f.msgs}, nil
}

type exemplarClients map[string]*exemplarIngester

func (c exemplarClients) GetClientFor(addr string) (ingesterpb.IngesterClient, error) {
	if ing, ok := c[addr]; ok {
		return ing, nil
	}
	return nil, fmt.Errorf("no ingester at %s", addr)
}

// exemplarQueryable puts the ingesters in a read set of RF = len(ingesters) that tolerates one failure.
func exemplarQueryable(ingesters ...*exemplarIngester) *IngesterQueryable {
	clients := exemplarClients{}
	set := ring.ReplicationSet{MaxErrors: 1}
	for i, ing := range ingesters {
		addr := fmt.Sprintf("10.0.0.%d:9095", i)
		clients[addr] = ing
		set.Instances = append(set.Instances, ring.InstanceDesc{ID: fmt.Sprintf("ingester-%d", i), Addr: addr, State: ring.ACTIVE})
	}
	return NewIngesterQueryable(fakeRing{set: set}, clients)
}

func wireExemplars(ls labels.Labels, exemplars ...exemplar.Exemplar) *seriespb.SeriesExemplars {
	out := &seriespb.SeriesExemplars{Labels: seriespb.FromLabels(ls)}
	for _, e := range exemplars {
		out.Exemplars = append(out.Exemplars, &seriespb.Exemplar{Labels: seriespb.FromLabels(e.Labels), Value: e.Value, TimestampMs: e.Ts})
	}
	return out
}

func ex(trace string, v float64, ts int64) exemplar.Exemplar {
	return exemplar.Exemplar{Labels: labels.FromStrings("trace_id", trace), Value: v, Ts: ts, HasTs: true}
}

// Three replicas (RF=3) of the same series answer overlapping exemplars, one of them split over two
// messages and one missing the newest exemplar (it was down then): the answer holds each series once,
// in label order, each exemplar once, oldest first.
func TestQueryExemplars_MergesAndDedupesReplicas(t *testing.T) {
	api := labels.FromStrings("__name__", "requests_total", "job", "api")
	db := labels.FromStrings("__name__", "requests_total", "job", "db")
	nan := ex("n", math.NaN(), 5000)
	ing0 := &exemplarIngester{msgs: []*ingesterpb.ExemplarQueryResponse{
		{Series: []*seriespb.SeriesExemplars{wireExemplars(api, ex("a", 1, 1000), ex("b", 2, 2000))}},
		{Series: []*seriespb.SeriesExemplars{wireExemplars(api, ex("c", 3, 3000)), wireExemplars(db, ex("d", 4, 1500), nan)}},
	}}
	ing1 := &exemplarIngester{msgs: []*ingesterpb.ExemplarQueryResponse{
		{Series: []*seriespb.SeriesExemplars{wireExemplars(api, ex("a", 1, 1000), ex("b", 2, 2000)), wireExemplars(db, ex("d", 4, 1500), nan)}},
	}}
	ing2 := &exemplarIngester{msgs: []*ingesterpb.ExemplarQueryResponse{
		// The same timestamp with another value or trace is another exemplar.
		{Series: []*seriespb.SeriesExemplars{wireExemplars(api, ex("a", 1, 1000), ex("b", 2, 2000), ex("c", 3, 3000), ex("c2", 3, 3000)), wireExemplars(db, ex("d", 4, 1500), ex("d", 4.5, 1500), nan)}},
	}}
	q := exemplarQueryable(ing0, ing1, ing2)
	ms := [][]*labels.Matcher{
		{labels.MustNewMatcher(labels.MatchEqual, "__name__", "requests_total")},
		{labels.MustNewMatcher(labels.MatchRegexp, "job", "a.*")},
	}
	got, err := q.QueryExemplars(context.Background(), 0, 10_000, ms, ExemplarLimits{})
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, api, got[0].SeriesLabels)
	require.Equal(t, []exemplar.Exemplar{ex("a", 1, 1000), ex("b", 2, 2000), ex("c", 3, 3000), ex("c2", 3, 3000)}, got[0].Exemplars)
	require.Equal(t, db, got[1].SeriesLabels)
	require.Len(t, got[1].Exemplars, 3, "d twice (two values) and NaN once: %v", got[1].Exemplars)
	require.Equal(t, []float64{4, 4.5}, []float64{got[1].Exemplars[0].Value, got[1].Exemplars[1].Value})
	require.True(t, math.IsNaN(got[1].Exemplars[2].Value))

	// Every ingester got the range and both matcher sets.
	for _, ing := range []*exemplarIngester{ing0, ing1, ing2} {
		require.Len(t, ing.reqs, 1)
		require.Equal(t, int64(0), ing.reqs[0].StartMs)
		require.Equal(t, int64(10_000), ing.reqs[0].EndMs)
		require.Len(t, ing.reqs[0].MatcherSets, 2)
		require.Nil(t, ing.reqs[0].Limits)
	}
}

func TestQueryExemplars_ToleratesTheSetsBudgetOnly(t *testing.T) {
	api := labels.FromStrings("__name__", "up")
	answer := []*ingesterpb.ExemplarQueryResponse{{Series: []*seriespb.SeriesExemplars{wireExemplars(api, ex("a", 1, 1000))}}}
	down := status.Error(codes.Unavailable, "down")
	ms := [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")}}

	got, err := exemplarQueryable(&exemplarIngester{msgs: answer}, &exemplarIngester{err: down}, &exemplarIngester{msgs: answer}).
		QueryExemplars(context.Background(), 0, 10_000, ms, ExemplarLimits{})
	require.NoError(t, err, "one of three down is within RF=3's budget")
	require.Len(t, got, 1)

	_, err = exemplarQueryable(&exemplarIngester{msgs: answer}, &exemplarIngester{err: down}, &exemplarIngester{err: down}).
		QueryExemplars(context.Background(), 0, 10_000, ms, ExemplarLimits{})
	require.Error(t, err)
	var doErr *ring.DoError
	require.ErrorAs(t, err, &doErr)

	// No selector, no exemplars, and no ingester asked.
	idle := &exemplarIngester{msgs: answer}
	got, err = exemplarQueryable(idle).QueryExemplars(context.Background(), 0, 10_000, nil, ExemplarLimits{})
	require.NoError(t, err)
	require.Empty(t, got)
	require.Empty(t, idle.reqs)
}

// The tenant's max_fetched_series_per_query goes with the request; an ingester that stops at it fails the
// query even within the failure budget, and so does a union of answers over it.
func TestQueryExemplars_SeriesLimit(t *testing.T) {
	ms := [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")}}
	over := seriespb.LimitStatus(seriespb.SeriesLimitError(2))
	okAnswer := func(names ...string) []*ingesterpb.ExemplarQueryResponse {
		msg := &ingesterpb.ExemplarQueryResponse{}
		for _, n := range names {
			msg.Series = append(msg.Series, wireExemplars(labels.FromStrings("__name__", n), ex("t", 1, 1000)))
		}
		return []*ingesterpb.ExemplarQueryResponse{msg}
	}
	ing := &exemplarIngester{msgs: okAnswer("a", "b")}
	_, err := exemplarQueryable(ing, &exemplarIngester{err: over}, &exemplarIngester{msgs: okAnswer("a", "b")}).
		QueryExemplars(context.Background(), 0, 10_000, ms, ExemplarLimits{MaxSeries: 2})
	var limitErr *validation.LimitError
	require.ErrorAs(t, err, &limitErr)
	require.Equal(t, "max_fetched_series_per_query", limitErr.Key)
	require.Equal(t, int64(2), ing.reqs[0].Limits.MaxSeries)

	// Two ingesters with two different series each: three series together.
	_, err = exemplarQueryable(&exemplarIngester{msgs: okAnswer("a", "b")}, &exemplarIngester{msgs: okAnswer("b", "c")}).
		QueryExemplars(context.Background(), 0, 10_000, ms, ExemplarLimits{MaxSeries: 2})
	require.ErrorAs(t, err, &limitErr)

	got, err := exemplarQueryable(&exemplarIngester{msgs: okAnswer("a", "b")}, &exemplarIngester{msgs: okAnswer("a", "b")}).
		QueryExemplars(context.Background(), 0, 10_000, ms, ExemplarLimits{MaxSeries: 2})
	require.NoError(t, err)
	require.Len(t, got, 2)
}

// max_fetched_exemplars_per_query counts every exemplar received, replicas' copies included: they are
// all held until merged.
func TestQueryExemplars_ExemplarLimitCountsEveryCopy(t *testing.T) {
	ms := [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")}}
	answer := func() *exemplarIngester {
		return &exemplarIngester{msgs: []*ingesterpb.ExemplarQueryResponse{
			{Series: []*seriespb.SeriesExemplars{wireExemplars(labels.FromStrings("__name__", "a"), ex("1", 1, 1000), ex("2", 2, 2000))}},
			{Series: []*seriespb.SeriesExemplars{wireExemplars(labels.FromStrings("__name__", "b"), ex("3", 3, 3000))}},
		}}
	}
	got, err := exemplarQueryable(answer(), answer()).QueryExemplars(context.Background(), 0, 10_000, ms, ExemplarLimits{MaxExemplars: 6})
	require.NoError(t, err)
	require.Len(t, got, 2, "6 copies of 3 exemplars are within 6")

	_, err = exemplarQueryable(answer(), answer()).QueryExemplars(context.Background(), 0, 10_000, ms, ExemplarLimits{MaxExemplars: 5})
	var limitErr *validation.LimitError
	require.ErrorAs(t, err, &limitErr)
	require.Equal(t, "max_fetched_exemplars_per_query", limitErr.Key)
}

// exemplarStoreGateway answers QueryExemplars for the blocks it holds with each block's series, or fails
// with err.
type exemplarStoreGateway struct {
	storegatewaypb.UnimplementedStoreGatewayServer
	blocks   map[string][]*seriespb.SeriesExemplars
	err      error
	requests [][]string
}

func (f *exemplarStoreGateway) QueryExemplars(req *storegatewaypb.ExemplarsRequest, srv storegatewaypb.StoreGateway_QueryExemplarsServer) error {
	f.requests = append(f.requests, req.BlockIds)
	if f.err != nil {
		return f.err
	}
	var queried []string
	var series []*seriespb.SeriesExemplars
	for _, id := range req.BlockIds {
		if s, ok := f.blocks[id]; ok {
			queried = append(queried, id)
			series = append(series, s...)
		}
	}
	if err := srv.Send(&storegatewaypb.ExemplarsResponse{QueriedBlockIds: queried}); err != nil {
		return err
	}
	return srv.Send(&storegatewaypb.ExemplarsResponse{Series: series})
}

// The querier's answer unites the ingesters' exemplars and those of the blocks that have an exemplar
// file (others are not asked), each once; a block one store-gateway lacks is asked of another; a
// store-gateway's limit error fails the query with that limit's error.
func TestExemplarQueryable_UnitesIngestersAndBlocks(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	withEx, withEx2, without := ulid.MustNew(1, nil), ulid.MustNew(2, nil), ulid.MustNew(3, nil)
	require.NoError(t, blockstore.WriteIndex(context.Background(), bucket.NewTenantBucket(bkt, "t"), &blockstore.Index{
		Version: blockstore.IndexVersion1,
		Blocks: []*blockstore.BlockEntry{
			{ID: withEx, MinTime: 0, MaxTime: 1500, HasExemplars: true},
			{ID: withEx2, MinTime: 1500, MaxTime: 3000, HasExemplars: true},
			{ID: without, MinTime: 3000, MaxTime: 4500},
		},
	}))
	api := labels.FromStrings("__name__", "requests_total", "job", "api")
	db := labels.FromStrings("__name__", "requests_total", "job", "db")
	lacking := &exemplarStoreGateway{blocks: map[string][]*seriespb.SeriesExemplars{
		withEx.String(): {wireExemplars(api, ex("a", 1, 1000))},
	}}
	holding := &exemplarStoreGateway{blocks: map[string][]*seriespb.SeriesExemplars{
		withEx.String():  {wireExemplars(api, ex("a", 1, 1000))},
		withEx2.String(): {wireExemplars(api, ex("b", 2, 2000)), wireExemplars(db, ex("c", 3, 2500))},
	}}
	sgRing := fakeRing{set: ring.ReplicationSet{Instances: []ring.InstanceDesc{
		{ID: "sg-1", Addr: startFakeStoreGateway(t, lacking)},
		{ID: "sg-2", Addr: startFakeStoreGateway(t, holding)},
	}}}
	blocks := NewBlocksQueryable(bkt, sgRing, dialClients{t}, Config{}, nil, slog.New(slog.DiscardHandler))
	// The ingester still holds the newest block's exemplar and one of its own.
	ing := &exemplarIngester{msgs: []*ingesterpb.ExemplarQueryResponse{
		{Series: []*seriespb.SeriesExemplars{wireExemplars(api, ex("b", 2, 2000), ex("d", 4, 4000))}},
	}}
	q := ExemplarQueryable{IngesterQueryable: exemplarQueryable(ing), Blocks: blocks}
	ctx := tenant.NewContext(context.Background(), "t")
	ms := [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchEqual, "__name__", "requests_total")}}

	got, err := q.QueryExemplars(ctx, 0, 5000, ms, ExemplarLimits{})
	require.NoError(t, err)
	require.Equal(t, []exemplar.QueryResult{
		{SeriesLabels: api, Exemplars: []exemplar.Exemplar{ex("a", 1, 1000), ex("b", 2, 2000), ex("d", 4, 4000)}},
		{SeriesLabels: db, Exemplars: []exemplar.Exemplar{ex("c", 3, 2500)}},
	}, got)
	require.Equal(t, [][]string{{withEx2.String()}}, holding.requests, "only the block the first store-gateway lacked was asked again")
	for _, sg := range []*exemplarStoreGateway{lacking, holding} {
		for _, r := range sg.requests {
			require.NotContains(t, r, without.String(), "a block without exemplars is not asked for")
		}
	}

	// A store-gateway at the series limit fails the query with that limit's error, not a retry's.
	limited := &exemplarStoreGateway{err: seriespb.LimitStatus(seriespb.SeriesLimitError(1))}
	q.Blocks = NewBlocksQueryable(bkt, fakeRing{set: ring.ReplicationSet{Instances: []ring.InstanceDesc{
		{ID: "sg-3", Addr: startFakeStoreGateway(t, limited)},
	}}}, dialClients{t}, Config{}, nil, slog.New(slog.DiscardHandler))
	_, err = q.QueryExemplars(ctx, 0, 5000, ms, ExemplarLimits{MaxSeries: 1})
	var limitErr *validation.LimitError
	require.ErrorAs(t, err, &limitErr)
	require.Equal(t, "max_fetched_series_per_query", limitErr.Key)

	// A store-gateway that fails: the query fails naming the blocks, not with the ingesters' cancellation.
	q.Blocks = NewBlocksQueryable(bkt, fakeRing{set: ring.ReplicationSet{Instances: []ring.InstanceDesc{
		{ID: "sg-4", Addr: startFakeStoreGateway(t, &exemplarStoreGateway{err: errors.New("disk on fire")})},
	}}}, dialClients{t}, Config{}, nil, slog.New(slog.DiscardHandler))
	_, err = q.QueryExemplars(ctx, 0, 5000, ms, ExemplarLimits{})
	require.ErrorContains(t, err, "no store-gateway answered for blocks")
	require.ErrorContains(t, err, "disk on fire")
}
