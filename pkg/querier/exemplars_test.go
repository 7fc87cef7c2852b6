package querier

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
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
