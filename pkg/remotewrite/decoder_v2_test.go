package remotewrite

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

// randomRequestV2 builds a 2.0 request with every kind of content: float series with and without start
// timestamps, integer, float and custom-bucket histograms, exemplars and metadata.
func randomRequestV2(rng *rand.Rand, series int) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i := range series {
		lset := labels.FromStrings("__name__", fmt.Sprintf("metric_%d", rng.IntN(5)), "job", "j", "instance", fmt.Sprintf("i%d", i))
		ts := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(lset, nil)}
		switch i % 4 {
		case 0, 1:
			for j := range 1 + rng.IntN(3) {
				s := writev2.Sample{Value: rng.Float64(), Timestamp: int64(1000 * (j + 1))}
				if i%4 == 1 {
					s.StartTimestamp = 500
				}
				ts.Samples = append(ts.Samples, s)
			}
			ts.Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("help text"), UnitRef: st.Symbolize("seconds")}
			ts.Exemplars = []writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("trace_id", fmt.Sprint(i)), nil), Value: 1.5, Timestamp: 1000}}
		case 2:
			h := &histogram.Histogram{Count: 5, Sum: 7.5, Schema: 1, ZeroThreshold: 0.01, ZeroCount: 1,
				PositiveSpans: []histogram.Span{{Offset: -1, Length: 2}}, PositiveBuckets: []int64{2, 0},
				NegativeSpans: []histogram.Span{{Offset: 2, Length: 1}}, NegativeBuckets: []int64{0}}
			wh := writev2.FromIntHistogram(2000, h)
			wh.StartTimestamp = 1500
			ts.Histograms = append(ts.Histograms, wh, writev2.FromFloatHistogram(3000, h.ToFloat(nil)))
			ts.Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM}
		case 3:
			custom := &histogram.Histogram{Count: 3, Sum: 2, Schema: histogram.CustomBucketsSchema,
				PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 1}, CustomValues: []float64{0.5, 1}}
			ts.Histograms = append(ts.Histograms, writev2.FromIntHistogram(4000, custom))
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = st.Symbols()
	return req
}

// canonicalV2 renders what a generated-code decoding of req says, in canonical's terms, with each
// series' metadata and start timestamps.
func canonicalV2(t testing.TB, req *writev2.Request) string {
	wr := &prompb.WriteRequest{}
	extra := ""
	b := labels.NewScratchBuilder(0)
	for _, ts := range req.Timeseries {
		lset, err := ts.ToLabels(&b, req.Symbols)
		require.NoError(t, err)
		out := prompb.TimeSeries{}
		lset.Range(func(l labels.Label) { out.Labels = append(out.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
		for _, s := range ts.Samples {
			out.Samples = append(out.Samples, prompb.Sample{Value: s.Value, Timestamp: s.Timestamp})
			extra += fmt.Sprintf("st(%d)", s.StartTimestamp)
		}
		for _, h := range ts.Histograms {
			raw, err := h.Marshal()
			require.NoError(t, err)
			var ph prompb.Histogram
			require.NoError(t, ph.Unmarshal(raw))
			out.Histograms = append(out.Histograms, ph)
			extra += fmt.Sprintf("hst(%d)", h.StartTimestamp)
		}
		for _, e := range ts.Exemplars {
			ex, err := e.ToExemplar(&b, req.Symbols)
			require.NoError(t, err)
			pe := prompb.Exemplar{Value: ex.Value, Timestamp: ex.Ts}
			ex.Labels.Range(func(l labels.Label) { pe.Labels = append(pe.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
			out.Exemplars = append(out.Exemplars, pe)
		}
		m, err := ts.ToMetadata(req.Symbols)
		require.NoError(t, err)
		extra += fmt.Sprintf("meta(%s,%q,%q)", m.Type, m.Help, m.Unit)
		wr.Timeseries = append(wr.Timeseries, out)
	}
	return canonical(wr) + extra
}

// canonicalDecoded renders what DecoderV2 returned, as canonicalV2 does.
func canonicalDecoded(d *DecoderV2, wr *prompb.WriteRequest) string {
	extra := ""
	for i, ts := range wr.Timeseries {
		for j := range ts.Samples {
			extra += fmt.Sprintf("st(%d)", d.SampleStart(i, j))
		}
		for j := range ts.Histograms {
			extra += fmt.Sprintf("hst(%d)", HistogramStart(&ts.Histograms[j]))
		}
		m := d.Metadata(i)
		extra += fmt.Sprintf("meta(%s,%q,%q)", metricTypeName(m.Type), m.Help, m.Unit)
	}
	return canonical(wr) + extra
}

// metricTypeName names a type as Prometheus' model.MetricType does, which canonicalV2's metadata uses.
func metricTypeName(t prompb.MetricMetadata_MetricType) string {
	switch t {
	case prompb.MetricMetadata_COUNTER:
		return "counter"
	case prompb.MetricMetadata_GAUGE:
		return "gauge"
	case prompb.MetricMetadata_HISTOGRAM:
		return "histogram"
	case prompb.MetricMetadata_GAUGEHISTOGRAM:
		return "gaugehistogram"
	case prompb.MetricMetadata_SUMMARY:
		return "summary"
	case prompb.MetricMetadata_INFO:
		return "info"
	case prompb.MetricMetadata_STATESET:
		return "stateset"
	}
	return "unknown"
}

func TestDecoderV2_MatchesTheGeneratedDecoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		req := randomRequestV2(rng, 1+rng.IntN(40))
		raw, err := req.Marshal()
		require.NoError(t, err)
		d := GetDecoderV2()
		got, err := d.Decode(raw)
		require.NoError(t, err)
		require.Empty(t, d.Invalid())
		require.Equal(t, canonicalV2(t, req), canonicalDecoded(d, got))
		d.Release()
	}
}

func TestDecoderV2_DecodePartsIsDecodeOfTheirConcatenation(t *testing.T) {
	req := randomRequestV2(rand.New(rand.NewPCG(3, 4)), 30)
	raw, err := req.Marshal()
	require.NoError(t, err)
	d := GetDecoderV2()
	defer d.Release()
	whole, err := d.Decode(raw)
	require.NoError(t, err)
	want := canonicalDecoded(d, whole)
	// Cut between fields: the symbols come first, then the series, each part holding whole fields.
	var cuts []int
	for at := 0; at < len(raw); {
		cuts = append(cuts, at)
		_, _, _, n := nextField(raw[at:])
		require.Positive(t, n)
		at += n
	}
	for _, cut := range []int{cuts[1], cuts[len(cuts)/2], cuts[len(cuts)-1]} {
		got, err := d.DecodeParts([][]byte{raw[:cut], raw[cut:]})
		require.NoError(t, err)
		require.Equal(t, want, canonicalDecoded(d, got), "cut at %d", cut)
	}
}

func TestDecoderV2_SeriesAndSymbolFieldsAreTheirEncoding(t *testing.T) {
	req := randomRequestV2(rand.New(rand.NewPCG(5, 6)), 10)
	raw, err := req.Marshal()
	require.NoError(t, err)
	d := GetDecoderV2()
	defer d.Release()
	_, err = d.Decode(raw)
	require.NoError(t, err)
	// A request made of the symbol fields and one series field is that series alone.
	for i := range req.Timeseries {
		var part []byte
		for _, r := range d.SymbolFields() {
			part = append(part, raw[r.Start:r.End]...)
		}
		f := d.SeriesField(i)
		part = append(part, raw[f.Start:f.End]...)
		var one writev2.Request
		require.NoError(t, one.Unmarshal(part))
		require.Len(t, one.Timeseries, 1)
		require.Equal(t, canonicalV2(t, &writev2.Request{Symbols: req.Symbols, Timeseries: req.Timeseries[i : i+1]}), canonicalV2(t, &one))
	}
}

func TestDecoderV2_KeepsGoodSeriesAndReportsBadOnes(t *testing.T) {
	st := writev2.NewSymbolTable()
	good := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "good"), nil), Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}}
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		good,
		{LabelsRefs: []uint32{1, 999}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1}, {Value: 2, Timestamp: 2}}},
		{LabelsRefs: []uint32{1}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}},
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "empty"), nil)},
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "badexemplar"), nil), Samples: []writev2.Sample{{Value: 1, Timestamp: 1}},
			Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{0, 77}}}},
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "badhelp"), nil), Samples: []writev2.Sample{{Value: 1, Timestamp: 1}},
			Metadata: writev2.Metadata{HelpRef: 1000}},
		good,
	}}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)
	d := GetDecoderV2()
	defer d.Release()
	got, err := d.Decode(raw)
	require.NoError(t, err)
	require.Len(t, got.Timeseries, 2)
	for _, ts := range got.Timeseries {
		require.Equal(t, []prompb.Label{{Name: "__name__", Value: "good"}}, ts.Labels)
		require.Equal(t, []prompb.Sample{{Value: 1, Timestamp: 1}}, ts.Samples)
	}
	invalid := d.Invalid()
	require.Len(t, invalid, 5)
	require.ErrorContains(t, invalid[0].Err, "reference outside the symbols table")
	require.Equal(t, 2, invalid[0].Samples)
	require.ErrorContains(t, invalid[1].Err, "odd number")
	require.ErrorContains(t, invalid[2].Err, "at least one sample, histogram or exemplar")
	require.ErrorContains(t, invalid[3].Err, "exemplar")
	require.ErrorContains(t, invalid[4].Err, "metadata")
}

func TestDecoderV2_ReadsUnpackedLabelReferences(t *testing.T) {
	// symbols "", "__name__", "up"; one series with its references as three unpacked varint fields.
	var series []byte
	for _, ref := range []uint64{1, 2} {
		series = protowire.AppendTag(series, 1, protowire.VarintType)
		series = protowire.AppendVarint(series, ref)
	}
	sample := protowire.AppendTag(nil, 2, protowire.VarintType)
	sample = protowire.AppendVarint(sample, 7)
	series = protowire.AppendTag(series, 2, protowire.BytesType)
	series = protowire.AppendBytes(series, sample)
	var raw []byte
	for _, s := range []string{"", "__name__", "up"} {
		raw = protowire.AppendTag(raw, v2SymbolsField, protowire.BytesType)
		raw = protowire.AppendString(raw, s)
	}
	raw = protowire.AppendTag(raw, v2TimeseriesField, protowire.BytesType)
	raw = protowire.AppendBytes(raw, series)
	d := GetDecoderV2()
	defer d.Release()
	got, err := d.Decode(raw)
	require.NoError(t, err)
	require.Len(t, got.Timeseries, 1)
	require.Equal(t, []prompb.Label{{Name: "__name__", Value: "up"}}, got.Timeseries[0].Labels)
	require.Equal(t, int64(7), got.Timeseries[0].Samples[0].Timestamp)
}

func TestDecoderV2_RejectsMalformedRequests(t *testing.T) {
	req := randomRequestV2(rand.New(rand.NewPCG(7, 8)), 3)
	raw, err := req.Marshal()
	require.NoError(t, err)
	notEmptyFirst := &writev2.Request{Symbols: []string{"x", "__name__"}}
	badFirst, err := notEmptyFirst.Marshal()
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"truncated":                  raw[:len(raw)-3],
		"symbols as varint":          protowire.AppendVarint(protowire.AppendTag(nil, v2SymbolsField, protowire.VarintType), 1),
		"series as fixed64":          protowire.AppendFixed64(protowire.AppendTag(nil, v2TimeseriesField, protowire.Fixed64Type), 1),
		"first symbol is not empty":  badFirst,
		"sample timestamp as double": append(protowire.AppendTag(nil, v2TimeseriesField, protowire.BytesType), 4, 0x12, 2, 0x11, 0),
	} {
		d := GetDecoderV2()
		_, err := d.Decode(b)
		require.Error(t, err, name)
		d.Release()
	}
}

func TestDecoderV2_FloatValuesSurviveBitForBit(t *testing.T) {
	st := writev2.NewSymbolTable()
	values := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -math.MaxFloat64, math.SmallestNonzeroFloat64, math.Float64frombits(0x7ff0000000000002)}
	ts := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "v"), nil)}
	for i, v := range values {
		ts.Samples = append(ts.Samples, writev2.Sample{Value: v, Timestamp: int64(i)})
	}
	raw, err := (&writev2.Request{Symbols: st.Symbols(), Timeseries: []writev2.TimeSeries{ts}}).Marshal()
	require.NoError(t, err)
	d := GetDecoderV2()
	defer d.Release()
	got, err := d.Decode(raw)
	require.NoError(t, err)
	for i, v := range values {
		require.Equal(t, math.Float64bits(v), math.Float64bits(got.Timeseries[0].Samples[i].Value))
	}
}

func TestDecoderV2_DoesNotAllocatePerSeries(t *testing.T) {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i := range 500 {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: st.Symbolize("h")},
		})
	}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)
	d := GetDecoderV2()
	defer d.Release()
	_, err = d.Decode(raw) // grows the slices once
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := d.Decode(raw); err != nil {
			t.Fatal(err)
		}
	})
	require.LessOrEqual(t, allocs, 2.0)
}

func FuzzDecoderV2(f *testing.F) {
	raw, err := randomRequestV2(rand.New(rand.NewPCG(9, 10)), 4).Marshal()
	require.NoError(f, err)
	f.Add(raw)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := GetDecoderV2()
		defer d.Release()
		got, err := d.Decode(b)
		if err != nil {
			return
		}
		// Whatever the decoder accepts, the generated code reads the same series from it.
		var req writev2.Request
		if req.Unmarshal(b) != nil {
			return // the generated code is stricter about some encodings (e.g. an invalid UTF-8 symbol)
		}
		_ = canonicalDecoded(d, got)
	})
}

func BenchmarkDecodeV2(b *testing.B) {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i := range 2000 {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", fmt.Sprintf("metric_%d", i%50), "job", "node", "instance", fmt.Sprintf("host-%d", i/50), "cpu", fmt.Sprint(i%8)), nil),
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: 1700000000000}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("help")},
		})
	}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	require.NoError(b, err)
	d := GetDecoderV2()
	defer d.Release()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := d.Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}
