package ingester

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// serveGRPC serves the ingester on 127.0.0.1 with the tenant interceptors and returns a client of it, so
// that streams go through gRPC's encoding and message limits as in production.
func serveGRPC(t *testing.T, ing *Ingester) ingesterpb.IngesterClient {
	t.Helper()
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
	return ingesterpb.NewIngesterClient(conn)
}

// recvAll reads a stream to its end.
func recvAll[T any](stream grpc.ServerStreamingClient[T], err error) ([]*T, error) {
	if err != nil {
		return nil, err
	}
	var out []*T
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, msg)
	}
}

// cardinalitySeries is a tenant's series with counts that make every list of the TSDB status distinct at
// its cut, plus ties among the label pairs with one series each.
func cardinalitySeries() []prompb.TimeSeries {
	var series []prompb.TimeSeries
	add := func(ls ...string) {
		series = append(series, floatSeries(ls, sample{t: baseTs, v: 1}, sample{t: baseTs + minute, v: 2}))
	}
	for i := range 12 {
		add("__name__", "http_requests_total", "code", []string{"200", "500"}[i%2], "instance", fmt.Sprintf("host-%02d", i), "job", "api")
	}
	for i := range 5 {
		add("__name__", "up", "instance", fmt.Sprintf("host-%02d", i), "job", "node")
	}
	for i := range 3 {
		add("__name__", "process_start_time_seconds", "instance", fmt.Sprintf("host-%02d", i), "job", "node", "version", "v1.2.3-a-rather-long-build-string")
	}
	return series
}

// referenceHead holds the series in a plain Prometheus TSDB head, and returns it with its registry.
func referenceHead(t *testing.T, series []prompb.TimeSeries) (*tsdb.Head, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkDirRoot = t.TempDir()
	head, err := tsdb.NewHead(reg, nil, nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = head.Close() })
	require.NoError(t, head.Init(math.MinInt64))
	app := head.Appender(context.Background())
	for _, ts := range series {
		var b labels.ScratchBuilder
		for _, l := range ts.Labels {
			b.Add(l.Name, l.Value)
		}
		b.Sort()
		ls := b.Labels()
		for _, s := range ts.Samples {
			_, err := app.Append(0, ls, s.Timestamp, s.Value)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	return head, reg
}

// referenceStats returns a list of the head's Stats, complete, in the order of the TSDB status lists
// (largest first, then by name), cut at limit: the answer a Prometheus holding the series would give,
// with its ties at the cut settled by name.
func referenceStats(stats []index.Stat, limit int) []*ingesterpb.CardinalityStat {
	out := make([]*ingesterpb.CardinalityStat, 0, len(stats))
	for _, s := range stats {
		out = append(out, &ingesterpb.CardinalityStat{Name: s.Name, Value: s.Count})
	}
	slices.SortFunc(out, func(a, b *ingesterpb.CardinalityStat) int {
		if c := cmp.Compare(b.Value, a.Value); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out[:min(limit, len(out))]
}

func requireStats(t *testing.T, want, got []*ingesterpb.CardinalityStat, msg string) {
	t.Helper()
	render := func(stats []*ingesterpb.CardinalityStat) []string {
		var out []string
		for _, s := range stats {
			out = append(out, fmt.Sprintf("%s=%d", s.Name, s.Value))
		}
		return out
	}
	require.Equal(t, render(want), render(got), msg)
}

func TestTSDBStatus_EqualsPrometheusHeadStats(t *testing.T) {
	ti := startIngester(t, testConfig(t.TempDir()))
	series := cardinalitySeries()
	require.NoError(t, ti.push(t, "team-a", series))
	require.NoError(t, ti.push(t, "team-b", []prompb.TimeSeries{floatSeries(lbls("__name__", "other_tenant", "secret", "x"), sample{t: baseTs, v: 1})}))
	client := serveGRPC(t, ti.Ingester)
	head, reg := referenceHead(t, series)
	ref := head.Stats(model.MetricNameLabel, 1000)

	for _, limit := range []int{1, 3, 10, 1000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			got, err := client.TSDBStatus(tenantCtx("team-a"), &ingesterpb.TSDBStatusRequest{Limit: int32(limit)})
			require.NoError(t, err)
			require.Equal(t, ref.NumSeries, got.NumSeries)
			require.Equal(t, ref.MinTime, got.MinTimeMs)
			require.Equal(t, ref.MaxTime, got.MaxTimeMs)
			require.Equal(t, int64(testutil.ToFloat64(gaugeNamed(t, reg, "prometheus_tsdb_head_chunks"))), got.ChunkCount)
			requireStats(t, referenceStats(ref.IndexPostingStats.CardinalityMetricsStats, limit), got.SeriesCountByMetricName, "series by metric name")
			requireStats(t, referenceStats(ref.IndexPostingStats.LabelValueStats, limit), got.MemoryInBytesByLabelName, "memory by label name")
			requireStats(t, referenceStats(ref.IndexPostingStats.LabelValuePairsStats, limit), got.SeriesCountByLabelValuePair, "series by label pair")
		})
	}
}

// gaugeNamed returns the registry's gauge of that name, as a collector testutil can read.
func gaugeNamed(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "copy"})
			g.Set(f.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// Two ingesters holding the same series answer the same lists, however the TSDB's maps are ordered:
// among label pairs with one series each, the cut keeps the first names.
func TestTSDBStatus_TiesAtTheCutAreSettledByName(t *testing.T) {
	var series []prompb.TimeSeries
	for i := range 50 {
		series = append(series, floatSeries(lbls("__name__", "m", "id", fmt.Sprintf("%03d", i)), sample{t: baseTs, v: 1}))
	}
	var answers []*ingesterpb.TSDBStatusResponse
	for range 3 {
		ti := startIngester(t, testConfig(t.TempDir()))
		require.NoError(t, ti.push(t, "team-a", series))
		got, err := ti.TSDBStatus(tenantCtx("team-a"), &ingesterpb.TSDBStatusRequest{Limit: 4})
		require.NoError(t, err)
		answers = append(answers, got)
	}
	requireStats(t, []*ingesterpb.CardinalityStat{{Name: "__name__=m", Value: 50}, {Name: "id=000", Value: 1}, {Name: "id=001", Value: 1}, {Name: "id=002", Value: 1}},
		answers[0].SeriesCountByLabelValuePair, "pairs")
	for _, a := range answers[1:] {
		requireStats(t, answers[0].SeriesCountByLabelValuePair, a.SeriesCountByLabelValuePair, "the same lists on every replica")
	}
}

func TestTSDBStatus_UnknownTenantHasAnEmptyHead(t *testing.T) {
	ti := startIngester(t, testConfig(t.TempDir()))
	got, err := ti.TSDBStatus(tenantCtx("nobody"), &ingesterpb.TSDBStatusRequest{Limit: 10})
	require.NoError(t, err)
	require.Zero(t, got.NumSeries)
	require.Equal(t, int64(math.MaxInt64), got.MinTimeMs)
	require.Equal(t, int64(math.MinInt64), got.MaxTimeMs)
}

func TestCardinalityRPCs_RefuseBadRequests(t *testing.T) {
	ti := startIngester(t, testConfig(t.TempDir()))
	client := serveGRPC(t, ti.Ingester)
	ctx := tenantCtx("team-a")
	badMatcher := []*seriespb.LabelMatcher{{Type: seriespb.MatchType_REGEX_MATCH, Name: "job", Value: "("}}
	manyNames := make([]string, MaxCardinalityLabelNames+1)
	for i := range manyNames {
		manyNames[i] = fmt.Sprintf("l%d", i)
	}
	for name, call := range map[string]func() error{
		"status limit 0": func() error {
			_, err := client.TSDBStatus(ctx, &ingesterpb.TSDBStatusRequest{Limit: 0})
			return err
		},
		"status limit too large": func() error {
			_, err := client.TSDBStatus(ctx, &ingesterpb.TSDBStatusRequest{Limit: MaxTSDBStatusLimit + 1})
			return err
		},
		"label names bad matcher": func() error {
			_, err := recvAll(client.LabelNamesCardinality(ctx, &ingesterpb.LabelNamesCardinalityRequest{Matchers: badMatcher}))
			return err
		},
		"label values without names": func() error {
			_, err := recvAll(client.LabelValuesCardinality(ctx, &ingesterpb.LabelValuesCardinalityRequest{}))
			return err
		},
		"label values too many names": func() error {
			_, err := recvAll(client.LabelValuesCardinality(ctx, &ingesterpb.LabelValuesCardinalityRequest{LabelNames: manyNames}))
			return err
		},
		"active series without selector": func() error {
			_, err := recvAll(client.ActiveSeries(ctx, &ingesterpb.ActiveSeriesRequest{}))
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, codes.InvalidArgument, status.Code(call()))
		})
	}
	_, err := client.TSDBStatus(context.Background(), &ingesterpb.TSDBStatusRequest{Limit: 10})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "no tenant, no answer")
}

// activeFixture holds, for team-a, series with a recent sample and series whose newest sample is older
// than the idle timeout, with the ingester's clock at baseTs.
func activeFixture(t *testing.T) *testIngester {
	t.Helper()
	cfg := testConfig(t.TempDir())
	cfg.ActiveSeries = ActiveSeriesConfig{IdleTimeout: 10 * time.Minute, UpdatePeriod: time.Minute}
	ti := startIngester(t, cfg)
	now := time.UnixMilli(baseTs)
	ti.now = func() time.Time { return now }
	var series []prompb.TimeSeries
	for i := range 4 {
		series = append(series, floatSeries(lbls("__name__", "up", "instance", fmt.Sprintf("fresh-%d", i), "job", "node"),
			sample{t: baseTs - 30*minute, v: 1}, sample{t: baseTs - minute, v: 1}))
	}
	for i := range 3 {
		series = append(series, floatSeries(lbls("__name__", "up", "instance", fmt.Sprintf("stale-%d", i), "job", "old"), sample{t: baseTs - 30*minute, v: 1}))
	}
	require.NoError(t, ti.push(t, "team-a", series))
	require.NoError(t, ti.push(t, "team-b", []prompb.TimeSeries{floatSeries(lbls("__name__", "up", "instance", "b", "job", "node"), sample{t: baseTs, v: 1})}))
	return ti
}

// hashesOf reads a LabelNamesCardinality answer as label name → sorted value hashes.
func hashesOf(msgs []*ingesterpb.LabelNamesCardinalityResponse) map[string][]uint64 {
	out := map[string][]uint64{}
	for _, m := range msgs {
		for _, l := range m.Labels {
			out[l.LabelName] = append(out[l.LabelName], l.ValueHashes...)
		}
	}
	for _, h := range out {
		slices.Sort(h)
	}
	return out
}

func hashes(values ...string) []uint64 {
	out := make([]uint64, 0, len(values))
	for _, v := range values {
		out = append(out, xxhash.Sum64String(v))
	}
	slices.Sort(out)
	return out
}

func TestLabelNamesCardinality_HashesEachValueOnceByCountMethod(t *testing.T) {
	ti := activeFixture(t)
	client := serveGRPC(t, ti.Ingester)
	for _, tc := range []struct {
		name     string
		matchers []*seriespb.LabelMatcher
		method   ingesterpb.CountMethod
		want     map[string][]uint64
	}{
		{"in memory", nil, ingesterpb.CountMethod_IN_MEMORY, map[string][]uint64{
			"__name__": hashes("up"), "job": hashes("node", "old"),
			"instance": hashes("fresh-0", "fresh-1", "fresh-2", "fresh-3", "stale-0", "stale-1", "stale-2"),
		}},
		{"in memory with a selector", []*seriespb.LabelMatcher{equal("job", "old")}, ingesterpb.CountMethod_IN_MEMORY, map[string][]uint64{
			"__name__": hashes("up"), "job": hashes("old"), "instance": hashes("stale-0", "stale-1", "stale-2"),
		}},
		{"active", nil, ingesterpb.CountMethod_ACTIVE, map[string][]uint64{
			"__name__": hashes("up"), "job": hashes("node"), "instance": hashes("fresh-0", "fresh-1", "fresh-2", "fresh-3"),
		}},
		{"active with a selector", []*seriespb.LabelMatcher{equal("job", "old")}, ingesterpb.CountMethod_ACTIVE, map[string][]uint64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := recvAll(client.LabelNamesCardinality(tenantCtx("team-a"), &ingesterpb.LabelNamesCardinalityRequest{Matchers: tc.matchers, CountMethod: tc.method}))
			require.NoError(t, err)
			require.Equal(t, tc.want, hashesOf(msgs))
		})
	}
}

// valueCountsOf reads a LabelValuesCardinality answer as the total and label name → value → series.
func valueCountsOf(msgs []*ingesterpb.LabelValuesCardinalityResponse) (uint64, map[string]map[string]uint64) {
	out := map[string]map[string]uint64{}
	var total uint64
	for i, m := range msgs {
		if i == 0 {
			total = m.SeriesCountTotal
		}
		for _, l := range m.Labels {
			if out[l.LabelName] == nil {
				out[l.LabelName] = map[string]uint64{}
			}
			for _, v := range l.Values {
				out[l.LabelName][v.Value] += v.SeriesCount
			}
		}
	}
	return total, out
}

func TestLabelValuesCardinality_CountsSeriesPerValueByCountMethod(t *testing.T) {
	ti := activeFixture(t)
	client := serveGRPC(t, ti.Ingester)
	for _, tc := range []struct {
		name      string
		matchers  []*seriespb.LabelMatcher
		method    ingesterpb.CountMethod
		wantTotal uint64
		want      map[string]map[string]uint64
	}{
		{"in memory", nil, ingesterpb.CountMethod_IN_MEMORY, 7, map[string]map[string]uint64{"job": {"node": 4, "old": 3}}},
		{"in memory with a selector", []*seriespb.LabelMatcher{equal("job", "old")}, ingesterpb.CountMethod_IN_MEMORY, 3, map[string]map[string]uint64{"job": {"old": 3}}},
		{"active", nil, ingesterpb.CountMethod_ACTIVE, 4, map[string]map[string]uint64{"job": {"node": 4}}},
		{"active with a selector", []*seriespb.LabelMatcher{equal("job", "old")}, ingesterpb.CountMethod_ACTIVE, 0, map[string]map[string]uint64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := recvAll(client.LabelValuesCardinality(tenantCtx("team-a"), &ingesterpb.LabelValuesCardinalityRequest{
				LabelNames: []string{"job", "missing", "job"}, Matchers: tc.matchers, CountMethod: tc.method}))
			require.NoError(t, err)
			total, counts := valueCountsOf(msgs)
			require.Equal(t, tc.wantTotal, total)
			require.Equal(t, tc.want, counts)
		})
	}
}

// A label with more values than one message holds is split across messages, each within the bound.
func TestLabelValuesCardinality_StreamsManyValuesInBoundedMessages(t *testing.T) {
	ti := startIngester(t, testConfig(t.TempDir()))
	long := strings.Repeat("v", 1000)
	var series []prompb.TimeSeries
	for i := range 3000 {
		series = append(series, floatSeries(lbls("__name__", "m", "id", fmt.Sprintf("%s-%04d", long, i)), sample{t: baseTs, v: 1}))
	}
	require.NoError(t, ti.push(t, "team-a", series))
	client := serveGRPC(t, ti.Ingester)

	msgs, err := recvAll(client.LabelValuesCardinality(tenantCtx("team-a"), &ingesterpb.LabelValuesCardinalityRequest{LabelNames: []string{"id"}}))
	require.NoError(t, err)
	require.Greater(t, len(msgs), 1)
	for _, m := range msgs {
		require.Less(t, len(m.String()), 2*labelBatchBytes)
	}
	total, counts := valueCountsOf(msgs)
	require.EqualValues(t, 3000, total)
	require.Len(t, counts["id"], 3000)
}

func TestActiveSeries_StreamsOnlyRecentSeriesOfTheTenant(t *testing.T) {
	ti := activeFixture(t)
	client := serveGRPC(t, ti.Ingester)
	msgs, err := recvAll(client.ActiveSeries(tenantCtx("team-a"), &ingesterpb.ActiveSeriesRequest{
		Matchers: []*seriespb.LabelMatcher{equal("__name__", "up")}}))
	require.NoError(t, err)
	var got []string
	for _, m := range msgs {
		for _, s := range m.Series {
			got = append(got, renderLabels(s.Labels))
		}
	}
	require.Equal(t, []string{
		`{__name__="up", instance="fresh-0", job="node"}`, `{__name__="up", instance="fresh-1", job="node"}`,
		`{__name__="up", instance="fresh-2", job="node"}`, `{__name__="up", instance="fresh-3", job="node"}`,
	}, got, "in label order, without stale series or team-b's")

	_, err = recvAll(client.ActiveSeries(tenantCtx("team-a"), &ingesterpb.ActiveSeriesRequest{
		Matchers: []*seriespb.LabelMatcher{equal("__name__", "up")}, Limits: &seriespb.FetchLimits{MaxSeries: 3}}))
	limitErr, ok := seriespb.LimitErrorOf(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, "max_fetched_series_per_query", limitErr.Key)
}

func TestActiveSeriesMetric_CountsEachTenantsRecentSeries(t *testing.T) {
	ti := activeFixture(t)
	require.NoError(t, testutil.GatherAndCompare(ti.reg, strings.NewReader(`
# HELP strata_ingester_active_series Series of the tenant in this ingester with a sample within -ingester.active-series-metrics-idle-timeout.
# TYPE strata_ingester_active_series gauge
strata_ingester_active_series{user="team-a"} 4
strata_ingester_active_series{user="team-b"} 1
`), "strata_ingester_active_series"))

	// Within the update period the count stands, however the series change.
	now := time.UnixMilli(baseTs).Add(30 * time.Second)
	ti.now = func() time.Time { return now }
	require.NoError(t, ti.push(t, "team-a", []prompb.TimeSeries{floatSeries(lbls("__name__", "up", "instance", "new", "job", "node"), sample{t: now.UnixMilli(), v: 1})}))
	require.Equal(t, 4.0, activeSeriesOf(t, ti, "team-a"))

	// After it, the series gone idle are no longer counted: the fresh ones were last written 11 minutes ago.
	now = time.UnixMilli(baseTs).Add(10 * time.Minute)
	require.Equal(t, 1.0, activeSeriesOf(t, ti, "team-a"))
	require.Equal(t, 1.0, activeSeriesOf(t, ti, "team-b"))
}

// activeSeriesOf scrapes the ingester's registry for the tenant's strata_ingester_active_series.
func activeSeriesOf(t *testing.T, ti *testIngester, tenantID string) float64 {
	t.Helper()
	families, err := ti.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "strata_ingester_active_series" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == tenantID {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no strata_ingester_active_series for %s", tenantID)
	return 0
}

func TestActiveSeriesConfig_RefusesNegativeDurations(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.ActiveSeries.IdleTimeout = -time.Second
	_, err := New(cfg, validation.NewOverrides(validation.DefaultLimits(), nil), nil, nil, nil, nil, nil, nil)
	require.ErrorContains(t, err, "-ingester.active-series-metrics-idle-timeout")
}

// BenchmarkCardinality measures the cardinality RPCs over a head of 100k series with 5 labels each, one
// of them unique per series (the worst case for the label pair lists).
func BenchmarkCardinality(b *testing.B) {
	ti := startIngester(b, testConfig(b.TempDir()))
	ti.now = func() time.Time { return time.UnixMilli(baseTs) }
	for batch := range 100 {
		var series []prompb.TimeSeries
		for i := range 1000 {
			n := batch*1000 + i
			series = append(series, floatSeries(lbls("__name__", fmt.Sprintf("metric_%d", n%50), "id", fmt.Sprint(n),
				"instance", fmt.Sprintf("host-%d", n%300), "job", fmt.Sprintf("job-%d", n%10), "zone", fmt.Sprintf("z%d", n%3)), sample{t: baseTs, v: 1}))
		}
		require.NoError(b, ti.push(b, "team-a", series))
	}
	ctx := tenantCtx("team-a")
	b.Run("TSDBStatus", func(b *testing.B) {
		for b.Loop() {
			_, err := ti.TSDBStatus(ctx, &ingesterpb.TSDBStatusRequest{Limit: 20})
			require.NoError(b, err)
		}
	})
	b.Run("LabelNamesCardinality", func(b *testing.B) {
		t, release, err := ti.cardinalityTenant(ctx)
		require.NoError(b, err)
		defer release()
		for b.Loop() {
			_, err := ti.labelValueHashes(ctx, t, nil, ingesterpb.CountMethod_IN_MEMORY)
			require.NoError(b, err)
		}
	})
	b.Run("LabelValuesCardinality/active", func(b *testing.B) {
		t, release, err := ti.cardinalityTenant(ctx)
		require.NoError(b, err)
		defer release()
		for b.Loop() {
			_, _, err := ti.labelValueCounts(ctx, t, []string{"instance", "job"}, nil, ingesterpb.CountMethod_ACTIVE)
			require.NoError(b, err)
		}
	})
}
