package querier

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
	"github.com/strata-metrics/strata/pkg/validation/validationtest"
)

// tenantLimits gives the tenants in it their own limits.
type tenantLimits map[string]*validation.Limits

func (t tenantLimits) ByTenant(id string) *validation.Limits      { return t[id] }
func (t tenantLimits) AllByTenant() map[string]*validation.Limits { return t }

// fetchLimited is q with the fetch limits of tenant "limited"; other tenants have none.
func fetchLimited(q storage.Queryable, maxSeries, maxChunkBytes int) *FetchLimitedQueryable {
	return NewFetchLimitedQueryable(q, validation.NewOverrides(validation.Limits{}, tenantLimits{
		"limited": {MaxFetchedSeriesPerQuery: maxSeries, MaxFetchedChunkBytesPerQuery: maxChunkBytes},
	}), 0)
}

// selectTenant reads every series matching ms as tenantID and returns each one's sample timestamps.
func selectTenant(t *testing.T, q storage.Queryable, tenantID string, hints *storage.SelectHints, ms ...*labels.Matcher) (map[string][]int64, error) {
	t.Helper()
	querier, err := q.Querier(0, 100_000)
	require.NoError(t, err)
	defer querier.Close()
	set := querier.Select(tenant.NewContext(context.Background(), tenantID), true, hints, ms...)
	out := map[string][]int64{}
	var it chunkenc.Iterator
	for set.Next() {
		var ts []int64
		it = set.At().Iterator(it)
		for it.Next() != chunkenc.ValNone {
			ts = append(ts, it.AtT())
		}
		require.NoError(t, it.Err())
		out[set.At().Labels().String()] = ts
	}
	return out, set.Err()
}

// replicas are three fake ingesters holding the same ten series of "up" (one 4-sample chunk each), which
// ignore the limits they are sent: what they send is the querier's to count.
func replicas() []*fakeIngester {
	var series []fakeSeries
	for i := range 10 {
		series = append(series, fakeSeries{labels: labels.FromStrings("__name__", "up", "instance", fmt.Sprint(i)), samples: samplesFrom(1000, 4000)})
	}
	return []*fakeIngester{{series: series}, {series: series}, {series: series}}
}

var upMatcher = labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")

// chunkBytesOfOneReplica is what replicas() hold, counted once.
func chunkBytesOfOneReplica() int {
	n := 0
	for _, s := range replicas()[0].series {
		for _, c := range encodeChunks(s.samples, 0, 100_000, 4) {
			n += len(c.Data)
		}
	}
	return n
}

func TestFetchLimitedQueryable_RefusesAQueryOverTheLimits(t *testing.T) {
	chunkBytes := chunkBytesOfOneReplica()
	for _, tc := range []struct {
		name                     string
		maxSeries, maxChunkBytes int
		fn                       string // the Select hints' Func: "series" for label sets only
		errKey                   string // "": the query succeeds
	}{
		{name: "series: replicas count once", maxSeries: 10},
		{name: "series over the limit", maxSeries: 9, errKey: "max_fetched_series_per_query"},
		{name: "chunk bytes: identical replicas count once", maxChunkBytes: chunkBytes},
		{name: "chunk bytes over the limit", maxChunkBytes: chunkBytes - 1, errKey: "max_fetched_chunk_bytes_per_query"},
		{name: "label sets at the series limit", maxSeries: 10, maxChunkBytes: 1, fn: "series"},
		{name: "label sets over the series limit", maxSeries: 9, fn: "series", errKey: "max_fetched_series_per_query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hints := &storage.SelectHints{Start: 0, End: 100_000, Func: tc.fn}
			q := fetchLimited(newQueryable(1, replicas()...), tc.maxSeries, tc.maxChunkBytes)
			got, err := selectTenant(t, q, "limited", hints, upMatcher)
			if tc.errKey != "" {
				validationtest.RequireLimitError(t, err, tc.errKey)
				return
			}
			require.NoError(t, err)
			require.Len(t, got, 10)
			unlimited, err := selectTenant(t, q, "unlimited", hints, upMatcher)
			require.NoError(t, err)
			require.Equal(t, unlimited, got, "below the limits the answer is unchanged")
		})
	}
}

func TestFetchLimitedQueryable_LimitsOfOneTenantDoNotApplyToAnother(t *testing.T) {
	ingesters := replicas()
	q := fetchLimited(newQueryable(1, ingesters...), 5, 0)

	_, err := selectTenant(t, q, "limited", nil, upMatcher)
	validationtest.RequireLimitError(t, err, "max_fetched_series_per_query")
	for _, ing := range ingesters {
		require.Equal(t, []*seriespb.FetchLimits{{MaxSeries: 5}}, ing.requestLimits(), "the reads carry the tenant's limits")
	}

	for _, ing := range ingesters {
		ing.limits = nil
	}
	got, err := selectTenant(t, q, "other", nil, upMatcher)
	require.NoError(t, err)
	require.Len(t, got, 10)
	_, err = selectTenant(t, q, "other", &storage.SelectHints{Func: "series"}, upMatcher)
	require.NoError(t, err)
	for _, ing := range ingesters {
		require.Equal(t, []*seriespb.FetchLimits{nil, nil}, ing.requestLimits(), "an unlimited tenant's reads carry no limits")
	}
}

func TestFetchLimitedQueryable_SelectsOfOneQueryShareTheLimit(t *testing.T) {
	ing := replicas()[0]
	for i := range 10 {
		ing.series = append(ing.series, fakeSeries{labels: labels.FromStrings("__name__", "down", "instance", fmt.Sprint(i)), samples: samplesFrom(1000, 2000)})
	}
	q := fetchLimited(newQueryable(0, ing), 15, 0)
	ctx := tenant.NewContext(context.Background(), "limited")
	drain := func(set storage.SeriesSet) error {
		for set.Next() {
		}
		return set.Err()
	}

	querier, err := q.Querier(0, 100_000)
	require.NoError(t, err)
	defer querier.Close()
	// The same ten series selected twice (as in up / up{instance=~".+"}) count ten times, not twenty.
	require.NoError(t, drain(querier.Select(ctx, true, nil, upMatcher)))
	require.NoError(t, drain(querier.Select(ctx, true, nil, upMatcher, labels.MustNewMatcher(labels.MatchRegexp, "instance", ".+"))))
	down := labels.MustNewMatcher(labels.MatchEqual, "__name__", "down")
	validationtest.RequireLimitError(t, drain(querier.Select(ctx, true, nil, down)), "max_fetched_series_per_query")

	another, err := q.Querier(0, 100_000)
	require.NoError(t, err)
	defer another.Close()
	require.NoError(t, drain(another.Select(ctx, true, nil, down)), "another query counts afresh")
}

func TestIngesterQueryable_AnIngesterAtTheLimitFailsTheQuery(t *testing.T) {
	limitErr := seriespb.SeriesLimitError(10)
	ingesters := replicas()
	ingesters[1].streamErr = seriespb.LimitStatus(limitErr)
	for _, q := range map[string]storage.Queryable{
		"with the tenant's limits": fetchLimited(newQueryable(1, ingesters...), 10, 0),
		// A source that refused is believed even where the querier has no limits of its own.
		"without": newQueryable(1, ingesters...),
	} {
		// The set tolerates one failed ingester, but a limit is not a failure another replica can hide.
		_, err := selectTenant(t, q, "limited", nil, upMatcher)
		validationtest.RequireLimitError(t, err, "max_fetched_series_per_query")
		require.Equal(t, limitErr.Error(), err.Error())
		_, err = selectTenant(t, q, "limited", &storage.SelectHints{Func: "series"}, upMatcher)
		validationtest.RequireLimitError(t, err, "max_fetched_series_per_query")
	}
}

// limitedStoreGateway answers for its blocks, then stops at a limit.
type limitedStoreGateway struct {
	storegatewaypb.UnimplementedStoreGatewayServer
	blocks   map[string]int64
	requests atomic.Int32
}

func (f *limitedStoreGateway) Series(req *storegatewaypb.SeriesRequest, srv storegatewaypb.StoreGateway_SeriesServer) error {
	f.requests.Add(1)
	var queried []string
	for _, id := range req.BlockIds {
		if _, ok := f.blocks[id]; ok {
			queried = append(queried, id)
		}
	}
	if err := srv.Send(&storegatewaypb.SeriesResponse{QueriedBlockIds: queried}); err != nil {
		return err
	}
	return seriespb.LimitStatus(seriespb.ChunkBytesLimitError(req.GetLimits().GetMaxChunkBytes()))
}

func TestBlocksQueryable_AStoreGatewayAtTheLimitIsNotReplaced(t *testing.T) {
	bkt, a, b := blocksFixture(t)
	limited := &limitedStoreGateway{blocks: map[string]int64{a.String(): 1000, b.String(): 2000}}
	replica := &fakeStoreGateway{blocks: map[string]int64{a.String(): 1000, b.String(): 2000}}
	r := fakeRing{set: ring.ReplicationSet{Instances: []ring.InstanceDesc{
		{ID: "sg-1", Addr: startFakeStoreGateway(t, limited)},
		{ID: "sg-2", Addr: startFakeStoreGateway(t, replica)},
	}}}
	blocks := NewBlocksQueryable(bkt, r, dialClients{t}, Config{}, nil, slog.New(slog.DiscardHandler))
	q := NewFetchLimitedQueryable(blocks, validation.NewOverrides(validation.Limits{}, tenantLimits{"t": {MaxFetchedChunkBytesPerQuery: 100}}), 0)

	_, err := selectTenant(t, q, "t", nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	validationtest.RequireLimitError(t, err, "max_fetched_chunk_bytes_per_query")
	require.ErrorContains(t, err, "more than 100 bytes")
	require.EqualValues(t, 1, limited.requests.Load())
	require.Empty(t, replica.requests, "the blocks are not asked of another replica")
}

// endlessIngester is a gRPC ingester that streams the same message until its stream ends, counting what it
// sent; done is closed when QueryStream returns.
type endlessIngester struct {
	ingesterpb.UnimplementedIngesterServer
	msg  *ingesterpb.QueryStreamResponse
	sent atomic.Int64
	done chan struct{}
}

func (s *endlessIngester) QueryStream(_ *ingesterpb.QueryRequest, stream grpc.ServerStreamingServer[ingesterpb.QueryStreamResponse]) error {
	defer close(s.done)
	// Series come in label order: a label second only to the name, "a_batch", numbers the messages.
	for i := 0; ; i++ {
		msg := &ingesterpb.QueryStreamResponse{}
		for _, series := range s.msg.Series {
			lset := append([]*seriespb.Label{series.Labels[0], {Name: "a_batch", Value: fmt.Sprintf("%09d", i)}}, series.Labels[1:]...)
			msg.Series = append(msg.Series, &seriespb.Series{Labels: lset, Chunks: series.Chunks})
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
		s.sent.Add(1)
	}
}

// startEndlessIngesters serves n endless ingesters over gRPC and returns a queryable over them. The
// client's flow-control windows are gRPC's initial ones, without growing them to the bandwidth, so that
// how far ingesters send ahead of the querier is bounded the same way on any machine.
func startEndlessIngesters(t *testing.T, n int) (*IngesterQueryable, []*endlessIngester) {
	msg := benchmarkStreamChunks(nil, 128, 1)[0]
	clients := connClients{}
	set := ring.ReplicationSet{MaxErrors: n / 2}
	var servers []*endlessIngester
	for i := range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := grpc.NewServer()
		ing := &endlessIngester{msg: msg, done: make(chan struct{})}
		ingesterpb.RegisterIngesterServer(srv, ing)
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		clients[lis.Addr().String()] = ingesterpb.NewIngesterClient(conn)
		set.Instances = append(set.Instances, ring.InstanceDesc{ID: fmt.Sprintf("ingester-%d", i), Addr: lis.Addr().String(), State: ring.ACTIVE})
		servers = append(servers, ing)
	}
	return NewIngesterQueryable(fakeRing{set: set}, clients), servers
}

// requireStopped waits until every ingester's stream has ended, and checks that each sent few messages.
func requireStopped(t *testing.T, servers []*endlessIngester, atMost int64) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i, s := range servers {
		select {
		case <-s.done:
		case <-deadline:
			t.Fatalf("ingester %d still streams after %d messages", i, s.sent.Load())
		}
		require.LessOrEqual(t, s.sent.Load(), atMost, "ingester %d", i)
	}
}

func TestFetchLimitedQueryable_CrossingALimitEndsEveryStream(t *testing.T) {
	ingesters, servers := startEndlessIngesters(t, 3)
	q := fetchLimited(ingesters, 1000, 0)
	querier, err := q.Querier(0, 100_000)
	require.NoError(t, err)
	set := querier.Select(tenant.NewContext(context.Background(), "limited"), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "node_cpu_seconds_total"))
	n := 0
	for set.Next() {
		n++
	}
	validationtest.RequireLimitError(t, set.Err(), "max_fetched_series_per_query")
	require.Equal(t, 1000, n, "the series up to the limit")
	// The streams end although the querier is not closed yet. What each ingester sent is the 1000 series
	// (8 messages) plus what gRPC's flow control let it send ahead.
	requireStopped(t, servers, 30)
	require.NoError(t, querier.Close())
}

func TestIngesterQueryable_ACanceledQueryEndsEveryStream(t *testing.T) {
	ingesters, servers := startEndlessIngesters(t, 3)
	querier, err := ingesters.Querier(0, 100_000)
	require.NoError(t, err)
	defer querier.Close()
	ctx, cancel := context.WithCancel(tenant.NewContext(context.Background(), "t"))
	set := querier.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "node_cpu_seconds_total"))
	for range 500 {
		require.True(t, set.Next())
	}
	cancel()
	for set.Next() {
	}
	require.ErrorIs(t, set.Err(), context.Canceled)
	requireStopped(t, servers, 30)
}

// The queries in flight together hold at most -querier.max-fetched-series-in-flight series: one over it
// is refused with a SeriesInFlightError (503, retried later), and a closed query gives its series back.
func TestFetchLimitedQueryable_BoundsTheSeriesAllQueriesHoldTogether(t *testing.T) {
	q := NewFetchLimitedQueryable(newQueryable(1, replicas()...), validation.NewOverrides(validation.Limits{}, nil), 15)
	ctx := tenant.NewContext(context.Background(), "unlimited")
	hints := &storage.SelectHints{Start: 0, End: 100_000}

	first, err := q.Querier(0, 100_000)
	require.NoError(t, err)
	set := first.Select(ctx, true, hints, upMatcher)
	for set.Next() {
	}
	require.NoError(t, set.Err(), "10 series fit")

	second, err := q.Querier(0, 100_000)
	require.NoError(t, err)
	set = second.Select(ctx, true, hints, upMatcher)
	for set.Next() {
	}
	var overload *SeriesInFlightError
	require.ErrorAs(t, set.Err(), &overload, "10 more do not, while the first query holds its 10")
	require.ErrorContains(t, set.Err(), "err-strata-querier-max-fetched-series-in-flight")
	require.NoError(t, second.Close())
	require.NoError(t, first.Close())
	require.Zero(t, q.inFlight.Load(), "closed queries give their series back")

	_, err = selectTenant(t, q, "unlimited", hints, upMatcher)
	require.NoError(t, err)
}
