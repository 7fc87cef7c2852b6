package ingester

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/validation"
)

const (
	tenantA = "team-a"
	tenantB = "team-b"
)

var (
	upAPI = lbls("__name__", "up", "job", "api")
	upDB  = lbls("__name__", "up", "job", "db")
	reqs  = lbls("__name__", "requests_total", "code", "200", "job", "api")
)

const (
	upAPIKey = `{__name__="up", job="api"}`
	upDBKey  = `{__name__="up", job="db"}`
	reqsKey  = `{__name__="requests_total", code="200", job="api"}`
)

func TestPush_ThenReadBackWhatWasPushed(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{
		floatSeries(upAPI, floats(baseTs, baseTs+minute, baseTs+2*minute)...),
		floatSeries(upDB, floats(baseTs)...),
		floatSeries(reqs, floats(baseTs+minute)...),
	}, prompb.MetricMetadata{MetricFamilyName: "up", Type: prompb.MetricMetadata_GAUGE, Help: "Whether the target is up.", Unit: ""}))
	ctx := tenantCtx(tenantA)

	t.Run("QueryStream returns every series with its samples", func(t *testing.T) {
		require.Equal(t, map[string][]sample{
			upAPIKey: floats(baseTs, baseTs+minute, baseTs+2*minute),
			upDBKey:  floats(baseTs),
			reqsKey:  floats(baseTs + minute),
		}, ing.queryStream(t, tenantA, everything, forever))
	})
	t.Run("QueryStream honours matchers and the time range", func(t *testing.T) {
		// Chunks come whole: the one chunk of up{job="api"} overlaps the range, so all its samples come.
		require.Equal(t, map[string][]sample{
			upAPIKey: floats(baseTs, baseTs+minute, baseTs+2*minute),
		}, ing.queryStream(t, tenantA, baseTs+minute, forever, equal("job", "api"), equal("__name__", "up")))
		// Series whose chunks all end before the range starts are left out.
		require.Equal(t, map[string][]sample{
			upAPIKey: floats(baseTs, baseTs+minute, baseTs+2*minute),
		}, ing.queryStream(t, tenantA, baseTs+minute+1, forever, equal("__name__", "up")))
		require.Empty(t, ing.queryStream(t, tenantA, baseTs+2*minute+1, forever))
		require.Empty(t, ing.queryStream(t, tenantA, everything, forever, equal("job", "nope")))
	})
	t.Run("LabelNames", func(t *testing.T) {
		resp, err := ing.LabelNames(ctx, &ingesterpb.LabelNamesRequest{StartMs: everything, EndMs: forever})
		require.NoError(t, err)
		require.Equal(t, []string{"__name__", "code", "job"}, resp.Names)

		resp, err = ing.LabelNames(ctx, &ingesterpb.LabelNamesRequest{StartMs: everything, EndMs: forever, Matchers: []*seriespb.LabelMatcher{equal("__name__", "up")}})
		require.NoError(t, err)
		require.Equal(t, []string{"__name__", "job"}, resp.Names)
	})
	t.Run("LabelValues", func(t *testing.T) {
		resp, err := ing.LabelValues(ctx, &ingesterpb.LabelValuesRequest{Name: "job", StartMs: everything, EndMs: forever})
		require.NoError(t, err)
		require.Equal(t, []string{"api", "db"}, resp.Values)

		resp, err = ing.LabelValues(ctx, &ingesterpb.LabelValuesRequest{Name: "job", StartMs: everything, EndMs: forever, Matchers: []*seriespb.LabelMatcher{equal("__name__", "requests_total")}})
		require.NoError(t, err)
		require.Equal(t, []string{"api"}, resp.Values)
	})
	t.Run("Series", func(t *testing.T) {
		resp, err := ing.Series(ctx, &ingesterpb.SeriesRequest{StartMs: everything, EndMs: forever, Matchers: []*seriespb.LabelMatcher{equal("__name__", "up")}})
		require.NoError(t, err)
		var got []string
		for _, s := range resp.Series {
			got = append(got, renderLabels(s.Labels))
		}
		require.Equal(t, []string{upAPIKey, upDBKey}, got)

		resp, err = ing.Series(ctx, &ingesterpb.SeriesRequest{StartMs: everything, EndMs: forever, Limit: 1, Matchers: []*seriespb.LabelMatcher{equal("__name__", "up")}})
		require.NoError(t, err)
		require.Len(t, resp.Series, 1)
	})
	t.Run("MetricsMetadata", func(t *testing.T) {
		resp, err := ing.MetricsMetadata(ctx, &ingesterpb.MetricsMetadataRequest{})
		require.NoError(t, err)
		require.Len(t, resp.Metadata, 1)
		require.Equal(t, "up", resp.Metadata[0].MetricFamilyName)
		require.Equal(t, "gauge", resp.Metadata[0].Type)
		require.Equal(t, "Whether the target is up.", resp.Metadata[0].Help)
	})
	t.Run("an invalid matcher is InvalidArgument", func(t *testing.T) {
		_, err := ing.LabelNames(ctx, &ingesterpb.LabelNamesRequest{StartMs: everything, EndMs: forever, Matchers: []*seriespb.LabelMatcher{
			{Type: seriespb.MatchType_REGEX_MATCH, Name: "job", Value: "("},
		}})
		require.Equal(t, codes.InvalidArgument, status.Code(err))
	})
	require.Equal(t, 5.0, testutil.ToFloat64(ing.metrics.ingestedSamples))
}

func TestRead_TenantsAreIsolated(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs)...)},
		prompb.MetricMetadata{MetricFamilyName: "up", Type: prompb.MetricMetadata_GAUGE}))
	require.NoError(t, ing.push(t, tenantB, []prompb.TimeSeries{floatSeries(upDB, floats(baseTs+minute)...)}))

	require.Equal(t, map[string][]sample{upAPIKey: floats(baseTs)}, ing.queryStream(t, tenantA, everything, forever))
	require.Equal(t, map[string][]sample{upDBKey: floats(baseTs + minute)}, ing.queryStream(t, tenantB, everything, forever))

	ctxB := tenantCtx(tenantB)
	values, err := ing.LabelValues(ctxB, &ingesterpb.LabelValuesRequest{Name: "job", StartMs: everything, EndMs: forever})
	require.NoError(t, err)
	require.Equal(t, []string{"db"}, values.Values)
	metadata, err := ing.MetricsMetadata(ctxB, &ingesterpb.MetricsMetadataRequest{})
	require.NoError(t, err)
	require.Empty(t, metadata.Metadata)

	// A tenant that never wrote here sees nothing, without an error.
	const stranger = "team-c"
	require.Empty(t, ing.queryStream(t, stranger, everything, forever))
	names, err := ing.LabelNames(tenantCtx(stranger), &ingesterpb.LabelNamesRequest{StartMs: everything, EndMs: forever})
	require.NoError(t, err)
	require.Empty(t, names.Names)
	series, err := ing.Series(tenantCtx(stranger), &ingesterpb.SeriesRequest{StartMs: everything, EndMs: forever, Matchers: []*seriespb.LabelMatcher{equal("__name__", "up")}})
	require.NoError(t, err)
	require.Empty(t, series.Series)

	// Each tenant has its own TSDB directory.
	for _, id := range []string{tenantA, tenantB} {
		require.DirExists(t, filepath.Join(ing.cfg.TSDBDir, id))
	}
	require.NoDirExists(t, filepath.Join(ing.cfg.TSDBDir, stranger))
}

func TestRequests_WithoutTenantAreUnauthenticated(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	ctx := context.Background()
	_, err := ing.Push(ctx, &ingesterpb.PushRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	err = ing.QueryStream(&ingesterpb.QueryRequest{}, &fakeQueryStream{ctx: ctx})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = ing.LabelNames(ctx, &ingesterpb.LabelNamesRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = ing.LabelValues(ctx, &ingesterpb.LabelValuesRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = ing.Series(ctx, &ingesterpb.SeriesRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = ing.MetricsMetadata(ctx, &ingesterpb.MetricsMetadataRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

func TestPush_CorruptWriteRequestIsInvalidArgument(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	_, err := ing.Push(tenantCtx(tenantA), &ingesterpb.PushRequest{WriteRequest: []byte{0x0a, 0xff, 0xff}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, err.Error(), "decode write request")
}

// A distributor in the same process pushes the parts of an encoded request, ranges of the received body
// and bytes of its own, which the ingester decodes where they are.
func TestPushEncoded_AppendsEveryPartAsOneRequest(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	encode := func(series ...prompb.TimeSeries) []byte {
		raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
		require.NoError(t, err)
		return raw
	}
	first := encode(floatSeries(upAPI, floats(baseTs)...))
	body := slices.Concat(first, encode(floatSeries(upDB, floats(baseTs)...)))
	req := &ingesterpb.EncodedPushRequest{Body: mem.SliceBuffer(body), Own: encode(floatSeries(reqs, floats(baseTs+minute)...))}
	req.Add(ingesterpb.EncodedPart{Start: 0, End: len(first)})
	req.Add(ingesterpb.EncodedPart{Start: 0, End: len(req.Own), InOwn: true})
	require.Len(t, req.Parts(), 2)
	require.NoError(t, ing.PushEncoded(tenantCtx(tenantA), req))
	require.Equal(t, map[string][]sample{
		upAPIKey: floats(baseTs),
		reqsKey:  floats(baseTs + minute),
	}, ing.queryStream(t, tenantA, everything, forever))

	bad := &ingesterpb.EncodedPushRequest{Own: []byte{0x0a, 0xff, 0xff}}
	bad.Add(ingesterpb.EncodedPart{Start: 0, End: 3, InOwn: true})
	require.Equal(t, codes.InvalidArgument, status.Code(ing.PushEncoded(tenantCtx(tenantA), bad)))
}

func TestPush_RejectsBadSamplesAndAppendsTheRest(t *testing.T) {
	tests := []struct {
		name      string
		oooWindow int64 // minutes
		existing  []sample
		bad       sample
		reason    string
		msgWants  string
	}{
		{
			name:     "out of order",
			existing: floats(baseTs + 10*minute),
			bad:      sample{t: baseTs + 5*minute, v: 1},
			reason:   validation.ReasonSampleOutOfOrder,
			msgWants: "out of order sample",
		},
		{
			name:     "different value for an existing timestamp",
			existing: floats(baseTs + 10*minute),
			bad:      sample{t: baseTs + 10*minute, v: 42},
			reason:   validation.ReasonSampleDuplicateTimestamp,
			msgWants: "duplicate sample for timestamp",
		},
		{
			name:     "older than the head accepts",
			existing: floats(baseTs + 10*minute),
			bad:      sample{t: baseTs + 10*minute - 3*60*minute, v: 1},
			reason:   validation.ReasonSampleOutOfBounds,
			msgWants: "out of bounds",
		},
		{
			name:      "older than the out-of-order window",
			oooWindow: 30,
			existing:  floats(baseTs + 10*minute),
			bad:       sample{t: baseTs + 10*minute - 31*minute, v: 1},
			reason:    validation.ReasonSampleTooOld,
			msgWants:  "too old sample",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limits := defaultLimits(t)
			limits.OutOfOrderTimeWindow = model.Duration(durationOfMinutes(tt.oooWindow))
			ing := startIngesterWith(t, testConfig(t.TempDir()), nil, limits)
			// Another series moves the head forward too, so that it has a time range to be out of.
			require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{
				floatSeries(upAPI, tt.existing...),
				floatSeries(upDB, tt.existing...),
			}))

			err := ing.push(t, tenantA, []prompb.TimeSeries{
				floatSeries(upDB, floats(baseTs+11*minute)...),
				floatSeries(upAPI, tt.bad, sample{t: baseTs + 12*minute, v: float64(baseTs + 12*minute)}),
				floatSeries(reqs, floats(baseTs+11*minute)...),
			})
			require.Error(t, err)
			require.Equal(t, codes.InvalidArgument, status.Code(err), err.Error())
			require.Contains(t, err.Error(), "1 samples rejected")
			require.Contains(t, err.Error(), tt.msgWants)
			require.Contains(t, err.Error(), validation.ErrorID(tt.reason))
			require.Contains(t, err.Error(), upAPIKey)
			require.Equal(t, 1.0, testutil.ToFloat64(ing.discarded.WithLabelValues(tt.reason, tenantA)))
			require.Equal(t, 1, testutil.CollectAndCount(ing.discarded), "no other reason is counted")

			require.Equal(t, map[string][]sample{
				upAPIKey: append(append([]sample{}, tt.existing...), floats(baseTs+12*minute)...),
				upDBKey:  append(append([]sample{}, tt.existing...), floats(baseTs+11*minute)...),
				reqsKey:  floats(baseTs + 11*minute),
			}, ing.queryStream(t, tenantA, everything, forever))
		})
	}
}

func TestPush_ReportsAtMostFiveRejectedSamples(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs+30*minute)...)}))
	var old []prompb.TimeSeries
	for i := range 8 {
		old = append(old, floatSeries(upAPI, sample{t: baseTs + int64(i), v: 1}))
	}
	// A histogram series with one histogram out of order as well.
	h := &histogram.Histogram{Count: 1, Sum: 1, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{1}}
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(reqs, sample{t: baseTs + 30*minute, h: h})}))
	old = append(old, floatSeries(reqs, sample{t: baseTs, h: h}))
	err := ing.push(t, tenantA, old)
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, err.Error(), "9 samples rejected")
	require.Equal(t, 9.0, testutil.ToFloat64(ing.discarded.WithLabelValues(validation.ReasonSampleOutOfOrder, tenantA)))
	// The distributor reads the counts from the status' detail, for remote write 2.0's Written headers.
	details := status.Convert(err).Details()
	require.Len(t, details, 1)
	require.Equal(t, int64(8), details[0].(*ingesterpb.PushRejected).GetSamples())
	require.Equal(t, int64(1), details[0].(*ingesterpb.PushRejected).GetHistograms())
}

func TestPush_AcceptsExactDuplicateSample(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	for range 2 {
		require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs)...)}))
	}
	require.Equal(t, map[string][]sample{upAPIKey: floats(baseTs)}, ing.queryStream(t, tenantA, everything, forever))
}

func TestPush_OutOfOrderSampleWithinWindowIsAccepted(t *testing.T) {
	limits := defaultLimits(t)
	limits.OutOfOrderTimeWindow = model.Duration(durationOfMinutes(30))
	ing := startIngesterWith(t, testConfig(t.TempDir()), nil, limits)
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs+20*minute)...)}))
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs+10*minute)...)}))
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs-5*minute)...)}))
	require.Equal(t, map[string][]sample{
		upAPIKey: floats(baseTs-5*minute, baseTs+10*minute, baseTs+20*minute),
	}, ing.queryStream(t, tenantA, everything, forever))
	require.Zero(t, testutil.CollectAndCount(ing.discarded))
}

// TestPush_ReportsOutOfOrderSamplesWithinOneRequest covers samples that are in disorder among themselves
// in a single request (unsorted samples, or the same series sent twice). The TSDB head only compares a
// sample with what is already committed, so without a check of its own the ingester would answer OK and
// the head would drop such samples silently at commit.
func TestPush_ReportsOutOfOrderSamplesWithinOneRequest(t *testing.T) {
	tests := []struct {
		name   string
		series []prompb.TimeSeries
		reason string
		want   []sample
	}{
		{
			name:   "unsorted samples of a new series",
			series: []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs+2*minute, baseTs+minute, baseTs+3*minute)...)},
			reason: validation.ReasonSampleOutOfOrder,
			want:   floats(baseTs+2*minute, baseTs+3*minute),
		},
		{
			name: "same series twice",
			series: []prompb.TimeSeries{
				floatSeries(upAPI, floats(baseTs+2*minute)...),
				floatSeries(upDB, floats(baseTs)...),
				floatSeries(upAPI, floats(baseTs+minute)...),
			},
			reason: validation.ReasonSampleOutOfOrder,
			want:   floats(baseTs + 2*minute),
		},
		{
			name: "same timestamp twice with different values",
			series: []prompb.TimeSeries{
				floatSeries(upAPI, sample{t: baseTs, v: float64(baseTs)}, sample{t: baseTs, v: 7}),
			},
			reason: validation.ReasonSampleDuplicateTimestamp,
			want:   floats(baseTs),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ing := startIngester(t, testConfig(t.TempDir()))
			err := ing.push(t, tenantA, tt.series)
			require.Equal(t, codes.InvalidArgument, status.Code(err), "err: %v", err)
			require.Contains(t, err.Error(), validation.ErrorID(tt.reason))
			require.Equal(t, 1.0, testutil.ToFloat64(ing.discarded.WithLabelValues(tt.reason, tenantA)))
			require.Equal(t, tt.want, ing.queryStream(t, tenantA, everything, forever)[upAPIKey])
		})
	}
}

func TestPush_SameTimestampTwiceWithSameValueInOneRequestIsAccepted(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{
		floatSeries(upAPI, floats(baseTs, baseTs)...),
		floatSeries(upAPI, floats(baseTs, baseTs+minute)...),
	}))
	require.Equal(t, floats(baseTs, baseTs+minute), ing.queryStream(t, tenantA, everything, forever)[upAPIKey])
}

func TestPush_NativeHistogramsAreQueryable(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	h := func(count uint64) *histogram.Histogram {
		return &histogram.Histogram{
			Schema:          1,
			ZeroThreshold:   0.001,
			ZeroCount:       1,
			Count:           count,
			Sum:             float64(count) * 1.5,
			PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
			PositiveBuckets: []int64{1, int64(count) - 4}, // deltas of 1 and count-3; with zero and negative: count
			NegativeSpans:   []histogram.Span{{Offset: 1, Length: 1}},
			NegativeBuckets: []int64{1},
		}
	}
	latency := lbls("__name__", "request_duration_seconds", "job", "api")
	require.NoError(t, h(10).Validate())
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{
		floatSeries(latency, sample{t: baseTs, h: h(10)}, sample{t: baseTs + minute, h: h(20)}),
	}))

	got := ing.queryStream(t, tenantA, everything, forever)[`{__name__="request_duration_seconds", job="api"}`]
	require.Len(t, got, 2)
	for i, want := range []*histogram.Histogram{h(10), h(20)} {
		require.Equal(t, baseTs+int64(i)*minute, got[i].t)
		require.True(t, want.Equals(got[i].h.Compact(0)), "want %s, got %s", want, got[i].h)
	}
}

func TestPush_InvalidNativeHistogramIsRejected(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	bad := &histogram.Histogram{
		Schema:          0,
		Count:           1, // less than the buckets hold
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 1}},
		PositiveBuckets: []int64{5},
	}
	err := ing.push(t, tenantA, []prompb.TimeSeries{
		floatSeries(lbls("__name__", "bad_histogram"), sample{t: baseTs, h: bad}),
		floatSeries(upAPI, floats(baseTs)...),
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "err: %v", err)
	require.Contains(t, err.Error(), validation.ErrorID(validation.ReasonInvalidNativeHistogram))
	require.Equal(t, 1.0, testutil.ToFloat64(ing.discarded.WithLabelValues(validation.ReasonInvalidNativeHistogram, tenantA)))
	require.Equal(t, map[string][]sample{upAPIKey: floats(baseTs)}, ing.queryStream(t, tenantA, everything, forever))
}

func TestStart_ReplaysTheWALOfEveryTenant(t *testing.T) {
	dir := t.TempDir()
	first := startIngester(t, testConfig(dir))
	require.NoError(t, first.push(t, tenantA, []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs, baseTs+minute)...)}))
	require.NoError(t, first.push(t, tenantB, []prompb.TimeSeries{floatSeries(upDB, floats(baseTs)...)}))
	require.NoError(t, first.Stop(context.Background()))

	// Directories that are not tenants are left alone.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "not-a-dir"), []byte("x"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "bad tenant"), 0o755))

	second := startIngester(t, testConfig(dir))
	require.Equal(t, 2.0, testutil.ToFloat64(second.metrics.tenants), "existing tenants are opened at start")
	require.Equal(t, map[string][]sample{upAPIKey: floats(baseTs, baseTs+minute)}, second.queryStream(t, tenantA, everything, forever))
	require.Equal(t, map[string][]sample{upDBKey: floats(baseTs)}, second.queryStream(t, tenantB, everything, forever))

	// The replayed head still orders samples: older ones are rejected, newer ones appended.
	err := second.push(t, tenantA, []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs+minute/2)...)})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.NoError(t, second.push(t, tenantA, []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs+2*minute)...)}))
	require.Equal(t, map[string][]sample{upAPIKey: floats(baseTs, baseTs+minute, baseTs+2*minute)}, second.queryStream(t, tenantA, everything, forever))
}

func TestStop_RefusesRequestsAfterward(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	require.NoError(t, ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs)...)}))
	require.NoError(t, ing.Stop(context.Background()))

	err := ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(upAPI, floats(baseTs+minute)...)})
	require.Equal(t, codes.Unavailable, status.Code(err))

	ctx := tenantCtx(tenantA)
	err = ing.QueryStream(&ingesterpb.QueryRequest{StartMs: everything, EndMs: forever}, &fakeQueryStream{ctx: ctx})
	require.Equal(t, codes.Unavailable, status.Code(err))
	_, err = ing.LabelNames(ctx, &ingesterpb.LabelNamesRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	_, err = ing.LabelValues(ctx, &ingesterpb.LabelValuesRequest{Name: "job"})
	require.Equal(t, codes.Unavailable, status.Code(err))
	_, err = ing.Series(ctx, &ingesterpb.SeriesRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	_, err = ing.MetricsMetadata(ctx, &ingesterpb.MetricsMetadataRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
}

func TestPush_ConcurrentTenantsAndSeries(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	const (
		writers = 8
		pushes  = 20
	)
	var wg sync.WaitGroup
	errs := make(chan error, writers*pushes)
	for w := range writers {
		wg.Go(func() {
			tenantID := fmt.Sprintf("tenant-%d", w%3)
			for p := range pushes {
				errs <- ing.push(t, tenantID, []prompb.TimeSeries{
					floatSeries(lbls("__name__", "up", "writer", fmt.Sprint(w)), floats(baseTs+int64(p)*minute)...),
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	total := 0
	for tn := range 3 {
		for _, samples := range ing.queryStream(t, fmt.Sprintf("tenant-%d", tn), everything, forever) {
			require.Len(t, samples, pushes)
			total++
		}
	}
	require.Equal(t, writers, total)
}

func TestPush_ReportsUnsortedNativeHistogramsWithinOneRequest(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	h := &histogram.Histogram{Count: 1, Sum: 1, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{1}}
	latency := lbls("__name__", "latency_seconds")
	err := ing.push(t, tenantA, []prompb.TimeSeries{
		floatSeries(latency, sample{t: baseTs + minute, h: h}, sample{t: baseTs, h: h}, sample{t: baseTs + 2*minute, h: h}),
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "err: %v", err)
	require.Equal(t, 1.0, testutil.ToFloat64(ing.discarded.WithLabelValues(validation.ReasonSampleOutOfOrder, tenantA)))

	got := ing.queryStream(t, tenantA, everything, forever)[`{__name__="latency_seconds"}`]
	var timestamps []int64
	for _, s := range got {
		require.NotNil(t, s.h)
		timestamps = append(timestamps, s.t)
	}
	require.Equal(t, []int64{baseTs + minute, baseTs + 2*minute}, timestamps)
}

// Reads stream the TSDB's chunks as they are, including the open head chunk that appends keep writing
// to: every read must still see an intact prefix of what was pushed. (A read may see part of a push that
// is being committed: chunk bytes carry no isolation marks. Every such sample is in the WAL already.)
// Run with -race to also check that no memory is shared with the appender.
func TestQueryStream_ConsistentWhileAppending(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	series := lbls("__name__", "up", "job", "api")
	const batches, perBatch = 200, 7
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range int64(batches) {
			ts := make([]int64, perBatch)
			for i := range ts {
				ts[i] = baseTs + (b*perBatch+int64(i))*1000
			}
			if err := ing.push(t, tenantA, []prompb.TimeSeries{floatSeries(series, floats(ts...)...)}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	check := func() int {
		got := ing.queryStream(t, tenantA, everything, forever)[upAPIKey]
		for i, s := range got {
			want := baseTs + int64(i)*1000
			require.Equal(t, sample{t: want, v: float64(want)}, s, "sample %d of %d", i, len(got))
		}
		return len(got)
	}
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
			check()
		}
	}
	require.Equal(t, batches*perBatch, check())
}

func TestConfig_ValidateStripeSize(t *testing.T) {
	for _, c := range []struct {
		stripes int
		wantErr bool
	}{{0, false}, {1, false}, {512, false}, {16384, false}, {-4, true}, {3, true}, {1000, true}} {
		cfg := testConfig(t.TempDir())
		cfg.StripeSize = c.stripes
		err := cfg.Validate()
		if c.wantErr {
			require.ErrorContains(t, err, "-blocks-storage.tsdb.stripe-size must be a power of two", "stripes=%d", c.stripes)
		} else {
			require.NoError(t, err, "stripes=%d", c.stripes)
		}
	}
}

// Existing series are looked up with labels built in a reused buffer; the head must keep labels of
// their own for every new series, whatever comes after them in the request.
func TestPush_NewAndExistingSeriesInterleavedKeepTheirLabels(t *testing.T) {
	ing := startIngester(t, testConfig(t.TempDir()))
	series := func(i int) []string {
		return lbls("__name__", "m", "i", fmt.Sprint(i), "pad", strings.Repeat("x", i%7+1))
	}
	var first []prompb.TimeSeries
	for i := 0; i < 100; i += 2 {
		first = append(first, floatSeries(series(i), sample{t: baseTs, v: float64(i)}))
	}
	require.NoError(t, ing.push(t, tenantA, first))
	var second []prompb.TimeSeries // existing (even) and new (odd) series, alternating
	for i := range 100 {
		second = append(second, floatSeries(series(i), sample{t: baseTs + minute, v: float64(i)}))
	}
	require.NoError(t, ing.push(t, tenantA, second))

	got := ing.queryStream(t, tenantA, everything, forever)
	require.Len(t, got, 100)
	for i := range 100 {
		key := fmt.Sprintf(`{__name__="m", i="%d", pad="%s"}`, i, strings.Repeat("x", i%7+1))
		want := []sample{{t: baseTs + minute, v: float64(i)}}
		if i%2 == 0 {
			want = append([]sample{{t: baseTs, v: float64(i)}}, want...)
		}
		require.Equal(t, want, got[key], key)
	}
}
