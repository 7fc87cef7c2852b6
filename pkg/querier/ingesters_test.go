package querier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
)

// fakeRing serves a fixed read replication set.
type fakeRing struct {
	set ring.ReplicationSet
}

func (r fakeRing) Get(uint32, ring.Operation, []ring.InstanceDesc) (ring.ReplicationSet, error) {
	return r.set, nil
}

func (r fakeRing) GetReplicationSetForOperation(ring.Operation) (ring.ReplicationSet, error) {
	return r.set, nil
}
func (r fakeRing) ReplicationFactor() int                   { return len(r.set.Instances) }
func (r fakeRing) InstancesCount() int                      { return len(r.set.Instances) }
func (r fakeRing) HealthyInstancesCount(ring.Operation) int { return len(r.set.Instances) }

// fakeSeries is one series held by a fake ingester: its labels and sample values keyed by timestamp.
type fakeSeries struct {
	labels  labels.Labels
	samples map[int64]float64
}

// samplesFrom builds samples at timestamps from..to (inclusive) in steps of 1000ms, valued t/1000.
func samplesFrom(from, to int64) map[int64]float64 {
	m := map[int64]float64{}
	for ts := from; ts <= to; ts += 1000 {
		m[ts] = float64(ts / 1000)
	}
	return m
}

// fakeIngester answers the ingester RPCs from in-memory series, the way a real ingester does: series in
// label order, samples as XOR chunks.
type fakeIngester struct {
	series   []fakeSeries
	metadata []*ingesterpb.MetricMetadata
	err      error
	// streamErr ends QueryStream and Series streams after their series (io.EOF when nil).
	streamErr error

	mtx    sync.Mutex
	calls  map[string]int
	limits []*seriespb.FetchLimits // of every QueryStream and Series request
}

func (f *fakeIngester) called(method string) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[method]++
}

func (f *fakeIngester) gotLimits(l *seriespb.FetchLimits) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	f.limits = append(f.limits, l)
}

func (f *fakeIngester) requestLimits() []*seriespb.FetchLimits {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	return slices.Clone(f.limits)
}

func (f *fakeIngester) callCount(method string) int {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	return f.calls[method]
}

// matching returns the series that match the wire matchers, in label order.
func (f *fakeIngester) matching(wire []*seriespb.LabelMatcher) ([]fakeSeries, error) {
	ms, err := seriespb.ToLabelMatchers(wire)
	if err != nil {
		return nil, err
	}
	var out []fakeSeries
	for _, s := range f.series {
		if matchesAll(s.labels, ms) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b fakeSeries) int { return labels.Compare(a.labels, b.labels) })
	return out, nil
}

func matchesAll(ls labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

func (f *fakeIngester) Push(context.Context, *ingesterpb.PushRequest, ...grpc.CallOption) (*ingesterpb.PushResponse, error) {
	return nil, errors.New("not implemented")
}

func (f *fakeIngester) QueryStream(_ context.Context, req *ingesterpb.QueryRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.QueryStreamResponse], error) {
	f.called("QueryStream")
	f.gotLimits(req.Limits)
	if f.err != nil {
		return nil, f.err
	}
	series, err := f.matching(req.Matchers)
	if err != nil {
		return nil, err
	}
	// One message per series, so the querier has to gather a stream of several messages.
	var msgs []*ingesterpb.QueryStreamResponse
	for _, s := range series {
		chunks := encodeChunks(s.samples, req.StartMs, req.EndMs, 4)
		if len(chunks) == 0 {
			continue
		}
		msgs = append(msgs, &ingesterpb.QueryStreamResponse{Series: []*seriespb.Series{{
			Labels: seriespb.FromLabels(s.labels),
			Chunks: chunks,
		}}})
	}
	return &fakeStream[ingesterpb.QueryStreamResponse]{msgs: msgs, err: f.streamErr}, nil
}

// encodeChunks encodes the samples within [mint, maxt] as XOR chunks of at most perChunk samples.
func encodeChunks(samples map[int64]float64, mint, maxt int64, perChunk int) []*seriespb.Chunk {
	var ts []int64
	for t := range samples {
		if t >= mint && t <= maxt {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	var out []*seriespb.Chunk
	for len(ts) > 0 {
		n := min(perChunk, len(ts))
		chk := chunkenc.NewXORChunk()
		app, err := chk.Appender()
		if err != nil {
			panic(err)
		}
		for _, t := range ts[:n] {
			app.Append(0, t, samples[t])
		}
		out = append(out, &seriespb.Chunk{MinTimeMs: ts[0], MaxTimeMs: ts[n-1], Encoding: uint32(chk.Encoding()), Data: chk.Bytes()})
		ts = ts[n:]
	}
	return out
}

// fakeStream is the client side of a server stream that holds msgs, then ends with err (io.EOF when nil).
type fakeStream[T any] struct {
	grpc.ClientStream
	msgs []*T
	err  error
}

func (s *fakeStream[T]) Recv() (*T, error) {
	if len(s.msgs) == 0 {
		if s.err != nil {
			return nil, s.err
		}
		return nil, io.EOF
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}

func (f *fakeIngester) LabelNames(_ context.Context, req *ingesterpb.LabelNamesRequest, _ ...grpc.CallOption) (*ingesterpb.LabelNamesResponse, error) {
	f.called("LabelNames")
	if f.err != nil {
		return nil, f.err
	}
	series, err := f.matching(req.Matchers)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range series {
		s.labels.Range(func(l labels.Label) { names = append(names, l.Name) })
	}
	return &ingesterpb.LabelNamesResponse{Names: sortedLimited(names, req.Limit)}, nil
}

func (f *fakeIngester) LabelValues(_ context.Context, req *ingesterpb.LabelValuesRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.LabelValuesResponse], error) {
	f.called("LabelValues")
	if f.err != nil {
		return nil, f.err
	}
	series, err := f.matching(req.Matchers)
	if err != nil {
		return nil, err
	}
	var values []string
	for _, s := range series {
		if v := s.labels.Get(req.Name); v != "" {
			values = append(values, v)
		}
	}
	// One message per value, so the querier has to gather a stream of several messages.
	stream := &fakeStream[ingesterpb.LabelValuesResponse]{}
	for _, v := range sortedLimited(values, req.Limit) {
		stream.msgs = append(stream.msgs, &ingesterpb.LabelValuesResponse{Values: []string{v}})
	}
	return stream, nil
}

func sortedLimited(s []string, limit int64) []string {
	slices.Sort(s)
	s = slices.Compact(s)
	if limit > 0 && int64(len(s)) > limit {
		s = s[:limit]
	}
	return s
}

func (f *fakeIngester) Series(_ context.Context, req *ingesterpb.SeriesRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.SeriesResponse], error) {
	f.called("Series")
	f.gotLimits(req.Limits)
	if f.err != nil {
		return nil, f.err
	}
	series, err := f.matching(req.Matchers)
	if err != nil {
		return nil, err
	}
	stream := &fakeStream[ingesterpb.SeriesResponse]{err: f.streamErr}
	for i, s := range series {
		if req.Limit > 0 && int64(i) >= req.Limit {
			break
		}
		stream.msgs = append(stream.msgs, &ingesterpb.SeriesResponse{Series: []*seriespb.Series{{Labels: seriespb.FromLabels(s.labels)}}})
	}
	return stream, nil
}

func (f *fakeIngester) MetricsMetadata(_ context.Context, req *ingesterpb.MetricsMetadataRequest, _ ...grpc.CallOption) (*ingesterpb.MetricsMetadataResponse, error) {
	f.called("MetricsMetadata")
	if f.err != nil {
		return nil, f.err
	}
	var out []*ingesterpb.MetricMetadata
	for _, m := range f.metadata {
		if req.Metric == "" || m.MetricFamilyName == req.Metric {
			out = append(out, m)
		}
	}
	return &ingesterpb.MetricsMetadataResponse{Metadata: out}, nil
}

// fakeClients maps addresses to fake ingesters.
type fakeClients map[string]*fakeIngester

func (c fakeClients) GetClientFor(addr string) (ingesterpb.IngesterClient, error) {
	ing, ok := c[addr]
	if !ok {
		return nil, fmt.Errorf("no ingester at %s", addr)
	}
	return ing, nil
}

// newQueryable puts the ingesters in a read set as ingester-0, ingester-1... that tolerates maxErrors.
func newQueryable(maxErrors int, ingesters ...*fakeIngester) *IngesterQueryable {
	clients := fakeClients{}
	set := ring.ReplicationSet{MaxErrors: maxErrors}
	for i, ing := range ingesters {
		addr := fmt.Sprintf("10.0.0.%d:9095", i)
		clients[addr] = ing
		set.Instances = append(set.Instances, ring.InstanceDesc{ID: fmt.Sprintf("ingester-%d", i), Addr: addr, State: ring.ACTIVE})
	}
	return NewIngesterQueryable(fakeRing{set: set}, clients)
}

var (
	seriesA = labels.FromStrings("__name__", "up", "instance", "a")
	seriesB = labels.FromStrings("__name__", "up", "instance", "b")
	seriesC = labels.FromStrings("__name__", "requests_total", "instance", "a", "code", "200")
)

// readAll selects with the matchers over [mint, maxt] and returns every series' samples.
func readAll(t *testing.T, q storage.Queryable, mint, maxt int64, ms ...*labels.Matcher) (map[string][]int64, error) {
	t.Helper()
	querier, err := q.Querier(mint, maxt)
	require.NoError(t, err)
	defer querier.Close()
	set := querier.Select(context.Background(), true, &storage.SelectHints{Start: mint, End: maxt}, ms...)
	out := map[string][]int64{}
	var order []labels.Labels
	for set.Next() {
		s := set.At()
		order = append(order, s.Labels())
		it := s.Iterator(nil)
		var ts []int64
		for it.Next() != chunkenc.ValNone {
			tsv, v := it.At()
			require.Equal(t, float64(tsv/1000), v)
			ts = append(ts, tsv)
		}
		require.NoError(t, it.Err())
		out[s.Labels().String()] = ts
	}
	if set.Err() != nil {
		return nil, set.Err()
	}
	require.True(t, slices.IsSortedFunc(order, labels.Compare), "series must come in label order")
	return out, nil
}

func timestamps(from, to int64) []int64 {
	var ts []int64
	for t := from; t <= to; t += 1000 {
		ts = append(ts, t)
	}
	return ts
}

func TestIngesterQueryable_Select(t *testing.T) {
	full := func() *fakeIngester {
		return &fakeIngester{series: []fakeSeries{
			{labels: seriesA, samples: samplesFrom(0, 19_000)},
			{labels: seriesB, samples: samplesFrom(0, 19_000)},
			{labels: seriesC, samples: samplesFrom(0, 19_000)},
		}}
	}
	failing := func() *fakeIngester { return &fakeIngester{err: errors.New("connection refused")} }
	upMatcher := labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")

	for _, tc := range []struct {
		name       string
		ingesters  []*fakeIngester
		maxErrors  int
		mint, maxt int64
		matchers   []*labels.Matcher
		want       map[string][]int64
		errHas     []string
	}{
		{
			name:      "identical replicas are merged into one copy",
			ingesters: []*fakeIngester{full(), full(), full()},
			maxErrors: 1,
			mint:      0, maxt: 19_000,
			matchers: []*labels.Matcher{upMatcher},
			want: map[string][]int64{
				seriesA.String(): timestamps(0, 19_000),
				seriesB.String(): timestamps(0, 19_000),
			},
		},
		{
			name: "replicas with different samples and series are unioned",
			ingesters: []*fakeIngester{
				{series: []fakeSeries{{labels: seriesA, samples: samplesFrom(0, 9_000)}}},
				{series: []fakeSeries{{labels: seriesA, samples: samplesFrom(5_000, 14_000)}, {labels: seriesB, samples: samplesFrom(3_000, 4_000)}}},
				{series: []fakeSeries{{labels: seriesA, samples: samplesFrom(12_000, 19_000)}}},
			},
			maxErrors: 1,
			mint:      0, maxt: 19_000,
			matchers: []*labels.Matcher{upMatcher},
			want: map[string][]int64{
				seriesA.String(): timestamps(0, 19_000),
				seriesB.String(): timestamps(3_000, 4_000),
			},
		},
		{
			name:      "the time range is passed to the ingesters",
			ingesters: []*fakeIngester{full(), full()},
			mint:      5_000, maxt: 7_000,
			matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "instance", "a")},
			want: map[string][]int64{
				seriesA.String(): timestamps(5_000, 7_000),
				seriesC.String(): timestamps(5_000, 7_000),
			},
		},
		{
			name:      "one failed ingester within max errors",
			ingesters: []*fakeIngester{full(), failing(), full()},
			maxErrors: 1,
			mint:      0, maxt: 19_000,
			matchers: []*labels.Matcher{upMatcher},
			want: map[string][]int64{
				seriesA.String(): timestamps(0, 19_000),
				seriesB.String(): timestamps(0, 19_000),
			},
		},
		{
			name:      "more failed ingesters than max errors",
			ingesters: []*fakeIngester{failing(), full(), failing()},
			maxErrors: 1,
			mint:      0, maxt: 19_000,
			matchers: []*labels.Matcher{upMatcher},
			errHas:   []string{"ingester-0 (10.0.0.0:9095): connection refused", "ingester-2 (10.0.0.2:9095): connection refused"},
		},
		{
			name:      "no match",
			ingesters: []*fakeIngester{full(), full()},
			mint:      0, maxt: 19_000,
			matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "nope")},
			want:     map[string][]int64{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueryable(tc.maxErrors, tc.ingesters...)
			got, err := readAll(t, q, tc.mint, tc.maxt, tc.matchers...)
			if len(tc.errHas) > 0 {
				require.Error(t, err)
				for _, s := range tc.errHas {
					require.ErrorContains(t, err, s)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestIngesterQueryable_EngineCountsOneCopyOfReplicatedSamples(t *testing.T) {
	replica := func() *fakeIngester {
		return &fakeIngester{series: []fakeSeries{{labels: seriesA, samples: samplesFrom(1_000, 60_000)}}}
	}
	q := newQueryable(1, replica(), replica(), replica())
	engine := NewEngine(Config{MaxSamples: 1000, Timeout: time.Minute, MaxConcurrent: 1, LookbackDelta: 5 * time.Minute, DefaultEvaluationInterval: time.Minute}, nil, nil)

	qry, err := engine.NewInstantQuery(context.Background(), q, nil, `count_over_time(up[1m])`, time.UnixMilli(60_000))
	require.NoError(t, err)
	defer qry.Close()
	res := qry.Exec(context.Background())
	require.NoError(t, res.Err)
	vec, err := res.Vector()
	require.NoError(t, err)
	require.Len(t, vec, 1)
	// The range (0s, 60s] holds the samples at 1s..60s: sixty, however many replicas hold them.
	require.Equal(t, 60.0, vec[0].F)
}

func TestIngesterQueryable_SelectSeriesUsesSeriesRPC(t *testing.T) {
	ingesters := []*fakeIngester{
		{series: []fakeSeries{{labels: seriesA, samples: samplesFrom(0, 1000)}, {labels: seriesC, samples: samplesFrom(0, 1000)}}},
		{series: []fakeSeries{{labels: seriesA, samples: samplesFrom(0, 1000)}, {labels: seriesB, samples: samplesFrom(0, 1000)}}},
	}
	q := newQueryable(0, ingesters...)
	all := labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")

	for _, tc := range []struct {
		name  string
		limit int
		want  []labels.Labels
	}{
		{name: "union without duplicates", want: []labels.Labels{seriesC, seriesA, seriesB}},
		{name: "limited", limit: 2, want: []labels.Labels{seriesC, seriesA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			querier, err := q.Querier(0, 1000)
			require.NoError(t, err)
			set := querier.Select(context.Background(), true, &storage.SelectHints{Start: 0, End: 1000, Func: "series", Limit: tc.limit}, all)
			var got []labels.Labels
			for set.Next() {
				got = append(got, set.At().Labels())
			}
			require.NoError(t, set.Err())
			require.Equal(t, tc.want, got)
		})
	}
	for _, ing := range ingesters {
		require.Equal(t, 2, ing.callCount("Series"))
		require.Zero(t, ing.callCount("QueryStream"), "a series request must not load samples")
	}
}

func TestIngesterQueryable_LabelNamesAndValues(t *testing.T) {
	ingesters := []*fakeIngester{
		{series: []fakeSeries{{labels: seriesA}, {labels: seriesC}}},
		{series: []fakeSeries{{labels: seriesA}, {labels: seriesB}}},
		{err: errors.New("connection refused")},
	}
	q := newQueryable(1, ingesters...)
	querier, err := q.Querier(0, 1000)
	require.NoError(t, err)
	ctx := context.Background()

	for _, tc := range []struct {
		name     string
		label    string // empty: label names
		limit    int
		matchers []*labels.Matcher
		want     []string
	}{
		{name: "names are merged, sorted and unique", want: []string{"__name__", "code", "instance"}},
		{name: "names limited", limit: 2, want: []string{"__name__", "code"}},
		{name: "names of matching series", matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")}, want: []string{"__name__", "instance"}},
		{name: "values are merged, sorted and unique", label: "instance", want: []string{"a", "b"}},
		{name: "values limited", label: "__name__", limit: 1, want: []string{"requests_total"}},
		{name: "values of matching series", label: "instance", matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "code", "200")}, want: []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			var err error
			hints := &storage.LabelHints{Limit: tc.limit}
			if tc.label == "" {
				got, _, err = querier.LabelNames(ctx, hints, tc.matchers...)
			} else {
				got, _, err = querier.LabelValues(ctx, tc.label, hints, tc.matchers...)
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}

	t.Run("too many failures", func(t *testing.T) {
		q := newQueryable(0, ingesters...)
		querier, err := q.Querier(0, 1000)
		require.NoError(t, err)
		_, _, err = querier.LabelNames(ctx, nil)
		require.ErrorContains(t, err, "ingester-2")
		_, _, err = querier.LabelValues(ctx, "instance", nil)
		require.ErrorContains(t, err, "ingester-2")
	})
}

func TestIngesterQueryable_MetricsMetadata(t *testing.T) {
	upGauge := &ingesterpb.MetricMetadata{MetricFamilyName: "up", Type: "gauge", Help: "Target is up."}
	upOldHelp := &ingesterpb.MetricMetadata{MetricFamilyName: "up", Type: "gauge", Help: "Old help."}
	requests := &ingesterpb.MetricMetadata{MetricFamilyName: "requests", Type: "counter", Help: "Requests.", Unit: "requests"}
	ingesters := []*fakeIngester{
		{metadata: []*ingesterpb.MetricMetadata{upGauge, requests}},
		{metadata: []*ingesterpb.MetricMetadata{upGauge, upOldHelp}},
		{metadata: []*ingesterpb.MetricMetadata{requests}},
	}
	q := newQueryable(0, ingesters...)
	ctx := context.Background()

	for _, tc := range []struct {
		name                  string
		metric                string
		limit, limitPerMetric int
		want                  map[string][]MetricMetadata
	}{
		{
			name: "replicas are de-duplicated",
			want: map[string][]MetricMetadata{
				"up":       {{Type: "gauge", Help: "Target is up."}, {Type: "gauge", Help: "Old help."}},
				"requests": {{Type: "counter", Help: "Requests.", Unit: "requests"}},
			},
		},
		{
			name:   "one metric",
			metric: "requests",
			want:   map[string][]MetricMetadata{"requests": {{Type: "counter", Help: "Requests.", Unit: "requests"}}},
		},
		{
			name:           "limit per metric",
			limitPerMetric: 1,
			want: map[string][]MetricMetadata{
				"up":       {{Type: "gauge", Help: "Target is up."}},
				"requests": {{Type: "counter", Help: "Requests.", Unit: "requests"}},
			},
		},
		{
			name:  "limit on metrics",
			limit: 1,
			want:  map[string][]MetricMetadata{"up": {{Type: "gauge", Help: "Target is up."}, {Type: "gauge", Help: "Old help."}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := q.MetricsMetadata(ctx, tc.metric, tc.limit, tc.limitPerMetric)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}

	t.Run("failure", func(t *testing.T) {
		q := newQueryable(0, &fakeIngester{err: errors.New("connection refused")})
		_, err := q.MetricsMetadata(ctx, "", 0, 0)
		require.ErrorContains(t, err, "ingester-0")
	})
}
