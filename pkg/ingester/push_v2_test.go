package ingester

import (
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
)

func pushV2(tb testing.TB, ti *testIngester, tenantID string, req *writev2.Request) error {
	tb.Helper()
	raw, err := req.Marshal()
	require.NoError(tb, err)
	_, err = ti.Push(tenantCtx(tenantID), &ingesterpb.PushRequest{WriteRequestV2: raw})
	return err
}

// A 2.0 series' start timestamp becomes a zero sample before its first sample, for floats and histograms,
// as Prometheus writes them for its own scrapes; a start timestamp that is not before its sample, or
// repeated by a later request, adds nothing.
func TestPushV2_StartTimestampsAreZeroSamples(t *testing.T) {
	ti := startIngester(t, testConfig(t.TempDir()))
	st := writev2.NewSymbolTable()
	h := &histogram.Histogram{Count: 2, Sum: 3, Schema: 0, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []int64{2}}
	hist := writev2.FromIntHistogram(2000, h)
	hist.StartTimestamp = 1500
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "c_total"), nil),
			Samples: []writev2.Sample{{Value: 5, Timestamp: 2000, StartTimestamp: 1000}, {Value: 7, Timestamp: 3000, StartTimestamp: 1000}}},
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "late_start"), nil),
			Samples: []writev2.Sample{{Value: 1, Timestamp: 2000, StartTimestamp: 2000}}},
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "h"), nil), Histograms: []writev2.Histogram{hist}},
	}}
	req.Symbols = st.Symbols()
	require.NoError(t, pushV2(t, ti, "t1", req))
	// The next scrape repeats the start timestamp.
	req.Timeseries = req.Timeseries[:1]
	req.Timeseries[0].Samples = []writev2.Sample{{Value: 9, Timestamp: 4000, StartTimestamp: 1000}}
	require.NoError(t, pushV2(t, ti, "t1", req))

	got := ti.queryStream(t, "t1", 0, 10000, equal("__name__", "c_total"))
	require.Equal(t, map[string][]sample{`{__name__="c_total"}`: {{t: 1000}, {t: 2000, v: 5}, {t: 3000, v: 7}, {t: 4000, v: 9}}}, got)
	got = ti.queryStream(t, "t1", 0, 10000, equal("__name__", "late_start"))
	require.Equal(t, map[string][]sample{`{__name__="late_start"}`: {{t: 2000, v: 1}}}, got)
	got = ti.queryStream(t, "t1", 0, 10000, equal("__name__", "h"))
	require.Len(t, got[`{__name__="h"}`], 2, "a zero histogram at the start timestamp, then the histogram")
	require.Equal(t, int64(1500), got[`{__name__="h"}`][0].t)
}

// The gRPC port takes pushes from any client: a 2.0 request it cannot read is InvalidArgument, and a series
// it cannot resolve is reported, not silently dropped, while the rest is written.
func TestPushV2_RefusesWhatItCannotRead(t *testing.T) {
	ti := startIngester(t, testConfig(t.TempDir()))
	_, err := ti.Push(tenantCtx("t1"), &ingesterpb.PushRequest{WriteRequestV2: []byte{0x2a, 0xff}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	st := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "ok"), nil), Samples: []writev2.Sample{{Value: 1, Timestamp: 1000}}},
		{LabelsRefs: []uint32{1, 999}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1000}}},
	}}
	req.Symbols = st.Symbols()
	err = pushV2(t, ti, "t1", req)
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Contains(t, err.Error(), "reference outside the symbols table")
	require.Equal(t, map[string][]sample{`{__name__="ok"}`: {{t: 1000, v: 1}}}, ti.queryStream(t, "t1", 0, 10000, equal("__name__", "ok")))
}
