package ingester

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// baseTs is the timestamp, in milliseconds, around which tests write samples.
var baseTs = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).UnixMilli()

const minute = int64(time.Minute / time.Millisecond)

func testConfig(dir string) Config {
	return Config{
		TSDBDir:              dir,
		BlockRangesPeriod:    2 * time.Hour,
		MetadataRetainPeriod: 10 * time.Minute,
	}
}

// defaultLimits are the limits as their flags default them.
func defaultLimits(testing.TB) validation.Limits { return validation.DefaultLimits() }

// testIngester is a started ingester with its own registry and discard counter.
type testIngester struct {
	*Ingester
	reg       *prometheus.Registry
	discarded *prometheus.CounterVec
}

// startIngester starts an ingester on cfg.TSDBDir; it is stopped when the test ends unless stopped before.
func startIngester(tb testing.TB, cfg Config) *testIngester {
	tb.Helper()
	return startIngesterWithBucket(tb, cfg, nil)
}

// startIngesterWithBucket is startIngester with blocks shipped to bkt.
func startIngesterWithBucket(tb testing.TB, cfg Config, bkt objstore.Bucket) *testIngester {
	tb.Helper()
	return startIngesterWith(tb, cfg, bkt, defaultLimits(tb))
}

// startIngesterWith is startIngesterWithBucket with the given limits for every tenant.
func startIngesterWith(tb testing.TB, cfg Config, bkt objstore.Bucket, limits validation.Limits) *testIngester {
	tb.Helper()
	reg := prometheus.NewRegistry()
	discarded := validation.NewDiscardedSamples(reg)
	ing, err := New(cfg, validation.NewOverrides(limits, nil), nil, nil, bkt, discarded, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(tb, err)
	ing.shipperOpts = []blockstore.ShipperOption{blockstore.WithUploadBackoff(blockstore.UploadBackoff{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxRetries: 2})}
	require.NoError(tb, ing.Start(context.Background()))
	tb.Cleanup(func() { _ = ing.Stop(context.Background()) })
	return &testIngester{Ingester: ing, reg: reg, discarded: discarded}
}

func tenantCtx(id string) context.Context { return tenant.NewContext(context.Background(), id) }

// push sends the series and metadata as tenantID, as a distributor would.
func (ti *testIngester) push(tb testing.TB, tenantID string, series []prompb.TimeSeries, metadata ...prompb.MetricMetadata) error {
	tb.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: series, Metadata: metadata}).Marshal()
	require.NoError(tb, err)
	_, err = ti.Push(tenantCtx(tenantID), &ingesterpb.PushRequest{WriteRequest: raw})
	return err
}

// sample is a float sample or, when h is set, an integer native histogram.
type sample struct {
	t int64
	v float64
	h *histogram.Histogram
}

func (s sample) String() string {
	if s.h != nil {
		return fmt.Sprintf("%s@%d", s.h, s.t)
	}
	return fmt.Sprintf("%g@%d", s.v, s.t)
}

// floatSeries builds a series from alternating label names and values and (timestamp, value) samples.
func floatSeries(ls []string, samples ...sample) prompb.TimeSeries {
	ts := prompb.TimeSeries{}
	for i := 0; i+1 < len(ls); i += 2 {
		ts.Labels = append(ts.Labels, prompb.Label{Name: ls[i], Value: ls[i+1]})
	}
	for _, s := range samples {
		if s.h != nil {
			ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(s.t, s.h))
		} else {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: s.t, Value: s.v})
		}
	}
	return ts
}

func lbls(nameValues ...string) []string { return nameValues }

// queryStream collects QueryStream's answer for the tenant as rendered series → decoded samples.
func (ti *testIngester) queryStream(tb testing.TB, tenantID string, mint, maxt int64, matchers ...*seriespb.LabelMatcher) map[string][]sample {
	tb.Helper()
	if len(matchers) == 0 {
		// PromQL never selects without a matcher; this is how "every series" is asked for.
		matchers = []*seriespb.LabelMatcher{{Type: seriespb.MatchType_REGEX_MATCH, Name: "__name__", Value: ".+"}}
	}
	stream := &fakeQueryStream{ctx: tenantCtx(tenantID)}
	require.NoError(tb, ti.QueryStream(&ingesterpb.QueryRequest{StartMs: mint, EndMs: maxt, Matchers: matchers}, stream))
	out := map[string][]sample{}
	for _, resp := range stream.responses {
		for _, s := range resp.Series {
			key := renderLabels(s.Labels)
			require.NotContains(tb, out, key, "each series is streamed once")
			out[key] = decodeChunks(tb, s.Chunks)
		}
	}
	return out
}

func renderLabels(ls []*seriespb.Label) string {
	out := "{"
	for i, l := range ls {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s=%q", l.Name, l.Value)
	}
	return out + "}"
}

func decodeChunks(tb testing.TB, chks []*seriespb.Chunk) []sample {
	tb.Helper()
	var out []sample
	for _, c := range chks {
		chk, err := chunkenc.FromData(chunkenc.Encoding(c.Encoding), c.Data)
		require.NoError(tb, err)
		it := chk.Iterator(nil)
		for {
			switch it.Next() {
			case chunkenc.ValNone:
				require.NoError(tb, it.Err())
				goto next
			case chunkenc.ValFloat:
				t, v := it.At()
				out = append(out, sample{t: t, v: v})
			case chunkenc.ValHistogram:
				t, h := it.AtHistogram(nil)
				out = append(out, sample{t: t, h: h})
			default:
				tb.Fatalf("unexpected value type in chunk")
			}
		}
	next:
		require.GreaterOrEqual(tb, c.MaxTimeMs, c.MinTimeMs)
	}
	return out
}

// fakeQueryStream is the server side of a QueryStream call, keeping what was sent.
type fakeQueryStream struct {
	grpc.ServerStream
	ctx       context.Context
	responses []*ingesterpb.QueryStreamResponse
}

func (s *fakeQueryStream) Context() context.Context { return s.ctx }

// Send keeps a copy made through the wire format, as gRPC does: the ingester may reuse or release the
// memory behind a response once Send has returned.
func (s *fakeQueryStream) Send(resp *ingesterpb.QueryStreamResponse) error {
	data, err := proto.Marshal(resp)
	if err != nil {
		return err
	}
	sent := &ingesterpb.QueryStreamResponse{}
	if err := proto.Unmarshal(data, sent); err != nil {
		return err
	}
	s.responses = append(s.responses, sent)
	return nil
}

func equal(name, value string) *seriespb.LabelMatcher {
	return &seriespb.LabelMatcher{Type: seriespb.MatchType_EQUAL, Name: name, Value: value}
}

const (
	everything = math.MinInt64
	forever    = math.MaxInt64
)

func floats(ts ...int64) []sample {
	out := make([]sample, 0, len(ts))
	for _, t := range ts {
		out = append(out, sample{t: t, v: float64(t)})
	}
	return out
}

func durationOfMinutes(n int64) time.Duration { return time.Duration(n) * time.Minute }
