package querier

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-metrics/strata/pkg/ingester"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// The fake ingester of the read tests has no cardinality answers: those are tested against real ones.

func (f *fakeIngester) TSDBStatus(context.Context, *ingesterpb.TSDBStatusRequest, ...grpc.CallOption) (*ingesterpb.TSDBStatusResponse, error) {
	return nil, errors.New("not implemented")
}

func (f *fakeIngester) LabelNamesCardinality(context.Context, *ingesterpb.LabelNamesCardinalityRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.LabelNamesCardinalityResponse], error) {
	return nil, errors.New("not implemented")
}

func (f *fakeIngester) LabelValuesCardinality(context.Context, *ingesterpb.LabelValuesCardinalityRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.LabelValuesCardinalityResponse], error) {
	return nil, errors.New("not implemented")
}

func (f *fakeIngester) ActiveSeries(context.Context, *ingesterpb.ActiveSeriesRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.ActiveSeriesResponse], error) {
	return nil, errors.New("not implemented")
}

// replicatedRing is a read set with a replication factor of its own, in a ring of instances instances.
type replicatedRing struct {
	fakeRing
	rf, instances int
}

func (r replicatedRing) ReplicationFactor() int { return r.rf }
func (r replicatedRing) InstancesCount() int    { return r.instances }

// startHoldingIngesters starts one real ingester per entry of holdings, served over gRPC on 127.0.0.1, each
// holding the series of its entry by tenant, and returns the clients and the instances of a read set.
func startHoldingIngesters(t *testing.T, holdings []map[string][]prompb.TimeSeries) (mapClients, []ring.InstanceDesc) {
	t.Helper()
	clients := mapClients{}
	var instances []ring.InstanceDesc
	for i, held := range holdings {
		reg := prometheus.NewRegistry()
		ing, err := ingester.New(ingester.Config{TSDBDir: t.TempDir(), BlockRangesPeriod: 2 * time.Hour, MetadataRetainPeriod: time.Minute},
			validation.NewOverrides(validation.DefaultLimits(), nil), nil, nil, nil, validation.NewDiscardedSamples(reg), reg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.NoError(t, ing.Start(context.Background()))
		t.Cleanup(func() { _ = ing.Stop(context.Background()) })
		for tenantID, series := range held {
			raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
			require.NoError(t, err)
			_, err = ing.Push(tenant.NewContext(context.Background(), tenantID), &ingesterpb.PushRequest{WriteRequest: raw})
			require.NoError(t, err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := grpc.NewServer(grpc.UnaryInterceptor(tenant.UnaryServerInterceptor), grpc.StreamInterceptor(tenant.StreamServerInterceptor))
		ingesterpb.RegisterIngesterServer(srv, ing)
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithUnaryInterceptor(tenant.UnaryClientInterceptor), grpc.WithStreamInterceptor(tenant.StreamClientInterceptor))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		clients[lis.Addr().String()] = ingesterpb.NewIngesterClient(conn)
		instances = append(instances, ring.InstanceDesc{ID: fmt.Sprintf("ingester-%d", i), Addr: lis.Addr().String(), State: ring.ACTIVE})
	}
	return clients, instances
}

// replicated spreads the series over n ingesters, each series on rf consecutive ones, as a ring does.
func replicated(series []prompb.TimeSeries, n, rf int) []map[string][]prompb.TimeSeries {
	holdings := make([]map[string][]prompb.TimeSeries, n)
	for i := range holdings {
		holdings[i] = map[string][]prompb.TimeSeries{}
	}
	for i, s := range series {
		for r := range rf {
			holdings[(i+r)%n]["team-a"] = append(holdings[(i+r)%n]["team-a"], s)
		}
	}
	return holdings
}

func promSeries(ts int64, nameValues ...string) prompb.TimeSeries {
	s := prompb.TimeSeries{Samples: []prompb.Sample{{Timestamp: ts, Value: 1}, {Timestamp: ts + 60_000, Value: 2}}}
	for i := 0; i+1 < len(nameValues); i += 2 {
		s.Labels = append(s.Labels, prompb.Label{Name: nameValues[i], Value: nameValues[i+1]})
	}
	return s
}

// cardinalityFixture is a tenant's series whose TSDB status lists have distinct counts around their cuts.
func cardinalityFixture(ts int64) []prompb.TimeSeries {
	var series []prompb.TimeSeries
	for i := range 12 {
		series = append(series, promSeries(ts, "__name__", "http_requests_total", "code", []string{"200", "500"}[i%2], "instance", fmt.Sprintf("host-%02d", i), "job", "api"))
	}
	for i := range 5 {
		series = append(series, promSeries(ts, "__name__", "up", "instance", fmt.Sprintf("host-%02d", i), "job", "node"))
	}
	for i := range 3 {
		series = append(series, promSeries(ts, "__name__", "process_start_time_seconds", "instance", fmt.Sprintf("host-%02d", i), "job", "node", "version", "v1.2.3"))
	}
	return series
}

// referenceHead holds the series in one plain Prometheus TSDB head.
func referenceHead(t *testing.T, series []prompb.TimeSeries) *tsdb.Head {
	t.Helper()
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkDirRoot = t.TempDir()
	head, err := tsdb.NewHead(nil, nil, nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = head.Close() })
	require.NoError(t, head.Init(math.MinInt64))
	app := head.Appender(context.Background())
	for _, s := range series {
		var b labels.ScratchBuilder
		for _, l := range s.Labels {
			b.Add(l.Name, l.Value)
		}
		for _, smp := range s.Samples {
			_, err := app.Append(0, b.Labels(), smp.Timestamp, smp.Value)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	return head
}

// referenceList is one of the head's Stats lists as the TSDB status shows it: largest first, then by name
// (Prometheus leaves ties in map order), cut at limit.
func referenceList(stats []index.Stat, limit int) []TSDBStat {
	out := make([]TSDBStat, 0, len(stats))
	for _, s := range stats {
		out = append(out, TSDBStat{Name: s.Name, Value: s.Count})
	}
	slices.SortFunc(out, func(a, b TSDBStat) int {
		if c := cmp.Compare(b.Value, a.Value); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out[:min(limit, len(out))]
}

// requireStatusOf checks that the status is what one Prometheus TSDB holding the series reports.
func requireStatusOf(t *testing.T, head *tsdb.Head, limit int, got *TSDBStatus) {
	t.Helper()
	ref := head.Stats(model.MetricNameLabel, 1000)
	require.Equal(t, ref.NumSeries, got.HeadStats.NumSeries, "each series counted once")
	require.Equal(t, ref.IndexPostingStats.NumLabelPairs, got.HeadStats.NumLabelPairs)
	require.Equal(t, ref.MinTime, got.HeadStats.MinTime)
	require.Equal(t, ref.MaxTime, got.HeadStats.MaxTime)
	require.Equal(t, referenceList(ref.IndexPostingStats.CardinalityMetricsStats, limit), got.SeriesCountByMetricName)
	require.Equal(t, referenceList(ref.IndexPostingStats.CardinalityLabelStats, limit), got.LabelValueCountByLabelName)
	require.Equal(t, referenceList(ref.IndexPostingStats.LabelValueStats, limit), got.MemoryInBytesByLabelName)
	require.Equal(t, referenceList(ref.IndexPostingStats.LabelValuePairsStats, limit), got.SeriesCountByLabelValuePair)
}

// requireLabelsOf checks the label names and values cardinality against one Prometheus TSDB head.
func requireLabelsOf(t *testing.T, head *tsdb.Head, c *Cardinality) {
	t.Helper()
	ctx := tenant.NewContext(context.Background(), "team-a")
	ir, err := head.Index()
	require.NoError(t, err)
	defer ir.Close()
	names, err := ir.LabelNames(ctx)
	require.NoError(t, err)

	got, err := c.LabelNames(ctx, nil, CountInMemory, 500)
	require.NoError(t, err)
	want := &LabelNamesCardinality{LabelNamesCount: len(names)}
	for _, name := range names {
		values, err := ir.LabelValues(ctx, name, nil)
		require.NoError(t, err)
		want.LabelValuesCountTotal += len(values)
		want.Cardinality = append(want.Cardinality, LabelNameCardinality{LabelName: name, LabelValuesCount: len(values)})
	}
	slices.SortStableFunc(want.Cardinality, func(a, b LabelNameCardinality) int { return cmp.Compare(b.LabelValuesCount, a.LabelValuesCount) })
	require.Equal(t, want, got)

	values, err := c.LabelValues(ctx, []string{"job", "instance"}, nil, CountInMemory, 500)
	require.NoError(t, err)
	require.Equal(t, head.NumSeries(), values.SeriesCountTotal)
	for _, l := range values.Labels {
		refValues, err := ir.SortedLabelValues(ctx, l.LabelName, nil)
		require.NoError(t, err)
		require.Equal(t, len(refValues), l.LabelValuesCount)
		var total uint64
		for _, v := range l.Cardinality {
			p, err := ir.Postings(ctx, l.LabelName, v.LabelValue)
			require.NoError(t, err)
			refs, err := index.ExpandPostings(p)
			require.NoError(t, err)
			require.EqualValues(t, len(refs), v.SeriesCount, "%s=%s", l.LabelName, v.LabelValue)
			total += v.SeriesCount
		}
		require.Equal(t, total, l.SeriesCount)
	}
}

// With three ingesters each holding every series (RF=3), every answer is one Prometheus TSDB's.
func TestCardinality_ThreeReplicasAnswerAsOnePrometheusTSDB(t *testing.T) {
	series := cardinalityFixture(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	holdings := replicated(series, 3, 3)
	holdings[1]["team-b"] = []prompb.TimeSeries{promSeries(0, "__name__", "other_tenant", "secret", "x")}
	clients, instances := startHoldingIngesters(t, holdings)
	c := NewCardinality(fakeRing{set: ring.ReplicationSet{Instances: instances, MaxErrors: 1}}, clients, nil)
	head := referenceHead(t, series)
	ctx := tenant.NewContext(context.Background(), "team-a")

	for _, limit := range []int{1, 4, 10, 500} {
		got, err := c.TSDBStatus(ctx, limit)
		require.NoError(t, err)
		requireStatusOf(t, head, limit, got)
	}
	requireLabelsOf(t, head, c)
}

// With four ingesters and RF=2 no ingester holds every series: the merged answers still count each once.
func TestCardinality_SpreadSeriesCountOnce(t *testing.T) {
	series := cardinalityFixture(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	clients, instances := startHoldingIngesters(t, replicated(series, 4, 2))
	c := NewCardinality(replicatedRing{fakeRing: fakeRing{set: ring.ReplicationSet{Instances: instances, MaxErrors: 1}}, rf: 2, instances: 4}, clients, nil)
	head := referenceHead(t, series)

	got, err := c.TSDBStatus(tenant.NewContext(context.Background(), "team-a"), 500)
	require.NoError(t, err)
	requireStatusOf(t, head, 500, got)
	requireLabelsOf(t, head, c)
}

// With one of three replicas down, the two that answer hold two copies of each series, not three.
func TestCardinality_OneReplicaDownStillCountsExactly(t *testing.T) {
	series := cardinalityFixture(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	clients, instances := startHoldingIngesters(t, replicated(series, 2, 2))
	instances = append(instances, ring.InstanceDesc{ID: "ingester-down", Addr: "127.0.0.1:1", State: ring.ACTIVE})
	clients["127.0.0.1:1"] = downIngester{}
	c := NewCardinality(fakeRing{set: ring.ReplicationSet{Instances: instances, MaxErrors: 1}}, clients, nil)
	head := referenceHead(t, series)

	got, err := c.TSDBStatus(tenant.NewContext(context.Background(), "team-a"), 10)
	require.NoError(t, err)
	requireStatusOf(t, head, 10, got)
	requireLabelsOf(t, head, c)

	// Unhealthy in the ring, and so left out of the set beforehand, it counts as missing the same way.
	c = NewCardinality(replicatedRing{fakeRing: fakeRing{set: ring.ReplicationSet{Instances: instances[:2], Excluded: []string{"ingester-down (127.0.0.1:1)"}}}, rf: 3, instances: 3}, clients, nil)
	got, err = c.TSDBStatus(tenant.NewContext(context.Background(), "team-a"), 10)
	require.NoError(t, err)
	requireStatusOf(t, head, 10, got)
}

// downIngester fails every call, as an unreachable ingester does.
type downIngester struct{ ingesterpb.IngesterClient }

var errDown = errors.New("connection refused")

func (downIngester) TSDBStatus(context.Context, *ingesterpb.TSDBStatusRequest, ...grpc.CallOption) (*ingesterpb.TSDBStatusResponse, error) {
	return nil, errDown
}

func (downIngester) LabelNamesCardinality(context.Context, *ingesterpb.LabelNamesCardinalityRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.LabelNamesCardinalityResponse], error) {
	return nil, errDown
}

func (downIngester) LabelValuesCardinality(context.Context, *ingesterpb.LabelValuesCardinalityRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.LabelValuesCardinalityResponse], error) {
	return nil, errDown
}

func (downIngester) ActiveSeries(context.Context, *ingesterpb.ActiveSeriesRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.ActiveSeriesResponse], error) {
	return nil, errDown
}

func TestCardinality_TooManyIngestersDownFails(t *testing.T) {
	clients, instances := startHoldingIngesters(t, replicated(cardinalityFixture(0), 1, 1))
	for _, addr := range []string{"127.0.0.1:1", "127.0.0.1:2"} {
		instances = append(instances, ring.InstanceDesc{ID: addr, Addr: addr, State: ring.ACTIVE})
		clients[addr] = downIngester{}
	}
	c := NewCardinality(fakeRing{set: ring.ReplicationSet{Instances: instances, MaxErrors: 1}}, clients, nil)
	_, err := c.TSDBStatus(tenant.NewContext(context.Background(), "team-a"), 10)
	require.ErrorIs(t, err, errDown)
	_, err = c.LabelValues(tenant.NewContext(context.Background(), "team-a"), []string{"job"}, nil, CountInMemory, 10)
	require.ErrorIs(t, err, errDown)
}

// Active series are the ones with a sample within the ingesters' idle timeout (10m by default), each once
// across the replicas, in label order; the tenant's series limit bounds the answer.
func TestCardinality_ActiveSeriesAndCountMethodActive(t *testing.T) {
	now := time.Now()
	var series []prompb.TimeSeries
	for i := range 4 {
		series = append(series, promSeries(now.Add(-2*time.Minute).UnixMilli(), "__name__", "up", "instance", fmt.Sprintf("fresh-%d", i), "job", "node"))
	}
	for i := range 3 {
		s := promSeries(now.Add(-time.Hour).UnixMilli(), "__name__", "up", "instance", fmt.Sprintf("stale-%d", i), "job", "old")
		series = append(series, s)
	}
	holdings := replicated(series, 3, 3)
	holdings[0]["team-b"] = []prompb.TimeSeries{promSeries(now.UnixMilli(), "__name__", "up", "instance", "b", "job", "node")}
	clients, instances := startHoldingIngesters(t, holdings)
	r := fakeRing{set: ring.ReplicationSet{Instances: instances, MaxErrors: 1}}
	ctx := tenant.NewContext(context.Background(), "team-a")
	up := labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")

	c := NewCardinality(r, clients, validation.NewOverrides(validation.DefaultLimits(), nil))
	active, err := c.ActiveSeries(ctx, []*labels.Matcher{up})
	require.NoError(t, err)
	require.Equal(t, []labels.Labels{
		labels.FromStrings("__name__", "up", "instance", "fresh-0", "job", "node"),
		labels.FromStrings("__name__", "up", "instance", "fresh-1", "job", "node"),
		labels.FromStrings("__name__", "up", "instance", "fresh-2", "job", "node"),
		labels.FromStrings("__name__", "up", "instance", "fresh-3", "job", "node"),
	}, active)

	names, err := c.LabelNames(ctx, nil, CountActive, 10)
	require.NoError(t, err)
	require.Equal(t, &LabelNamesCardinality{LabelValuesCountTotal: 6, LabelNamesCount: 3, Cardinality: []LabelNameCardinality{
		{LabelName: "instance", LabelValuesCount: 4}, {LabelName: "__name__", LabelValuesCount: 1}, {LabelName: "job", LabelValuesCount: 1},
	}}, names)
	values, err := c.LabelValues(ctx, []string{"job"}, nil, CountActive, 10)
	require.NoError(t, err)
	require.Equal(t, &LabelValuesCardinality{SeriesCountTotal: 4, Labels: []LabelValuesOfLabelName{
		{LabelName: "job", LabelValuesCount: 1, SeriesCount: 4, Cardinality: []LabelValueCardinality{{LabelValue: "node", SeriesCount: 4}}},
	}}, values)
	values, err = c.LabelValues(ctx, []string{"job", "missing"}, []*labels.Matcher{up}, CountInMemory, 1)
	require.NoError(t, err)
	require.Equal(t, &LabelValuesCardinality{SeriesCountTotal: 7, Labels: []LabelValuesOfLabelName{
		{LabelName: "job", LabelValuesCount: 2, SeriesCount: 7, Cardinality: []LabelValueCardinality{{LabelValue: "node", SeriesCount: 4}}},
		{LabelName: "missing", Cardinality: []LabelValueCardinality{}},
	}}, values, "cut at the limit, a name no series has answered too")

	limits := validation.DefaultLimits()
	limits.MaxFetchedSeriesPerQuery = 3
	c = NewCardinality(r, clients, validation.NewOverrides(limits, nil))
	_, err = c.ActiveSeries(ctx, []*labels.Matcher{up})
	var limitErr *validation.LimitError
	require.ErrorAs(t, err, &limitErr)
	require.Equal(t, "max_fetched_series_per_query", limitErr.Key)

	// A tenant without a series limit is still bounded by the querier's own.
	limits.MaxFetchedSeriesPerQuery = 0
	c = NewCardinality(r, clients, validation.NewOverrides(limits, nil))
	c.bounds.activeSeries = 3
	_, err = c.ActiveSeries(ctx, []*labels.Matcher{up})
	var tooLarge *TooLargeError
	require.ErrorAs(t, err, &tooLarge)
	require.ErrorContains(t, err, "more than 3 active series")
}

// An answer over the querier's bounds fails the request even where the read set tolerates a failure: the
// other ingesters' answers are not the whole.
func TestCardinality_AnswersOverTheQueriersBoundsFail(t *testing.T) {
	clients, instances := startHoldingIngesters(t, replicated(cardinalityFixture(0), 3, 3))
	c := NewCardinality(fakeRing{set: ring.ReplicationSet{Instances: instances, MaxErrors: 2}}, clients, nil)
	ctx := tenant.NewContext(context.Background(), "team-a")
	c.bounds.hashes = 40 // each ingester holds 20 distinct label pairs
	_, err := c.LabelNames(ctx, nil, CountInMemory, 10)
	var tooLarge *TooLargeError
	require.ErrorAs(t, err, &tooLarge)
	_, err = c.TSDBStatus(ctx, 10)
	require.ErrorAs(t, err, &tooLarge)

	c.bounds.values = 20 // 12 instances and 2 jobs per ingester
	_, err = c.LabelValues(ctx, []string{"instance", "job"}, nil, CountInMemory, 10)
	require.ErrorAs(t, err, &tooLarge)
	require.ErrorContains(t, err, "more than 20 label values; narrow the request with a selector")
}
