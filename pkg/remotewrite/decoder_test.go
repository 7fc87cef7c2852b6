package remotewrite

import (
	"fmt"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

// canonical renders a WriteRequest's content so that two decodings can be compared whatever their nil
// versus empty slices and unknown-field bookkeeping.
func canonical(wr *prompb.WriteRequest) string {
	out := ""
	for _, ts := range wr.Timeseries {
		out += "series{"
		for _, l := range ts.Labels {
			out += fmt.Sprintf("%q=%q,", l.Name, l.Value)
		}
		for _, s := range ts.Samples {
			out += fmt.Sprintf("s(%d,%x)", s.Timestamp, math.Float64bits(s.Value))
		}
		for _, e := range ts.Exemplars {
			out += "e("
			for _, l := range e.Labels {
				out += fmt.Sprintf("%q=%q,", l.Name, l.Value)
			}
			out += fmt.Sprintf("%d,%x)", e.Timestamp, math.Float64bits(e.Value))
		}
		for _, h := range ts.Histograms {
			raw, _ := h.Marshal()
			out += fmt.Sprintf("h(%x)", raw)
		}
		out += "}"
	}
	for _, m := range wr.Metadata {
		out += fmt.Sprintf("m(%d,%q,%q,%q)", m.Type, m.MetricFamilyName, m.Help, m.Unit)
	}
	return out
}

func exampleWriteRequest() *prompb.WriteRequest {
	h := &histogram.Histogram{Count: 3, Sum: 4.5, Schema: 0, ZeroThreshold: 0.001, ZeroCount: 1,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 0}}
	return &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:    []prompb.Label{{Name: "__name__", Value: "a"}, {Name: "job", Value: "x"}},
				Samples:   []prompb.Sample{{Timestamp: 1, Value: 1.5}, {Timestamp: 2, Value: math.Inf(-1)}},
				Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 2, Timestamp: 2}},
			},
			{Labels: []prompb.Label{{Name: "__name__", Value: "h"}}, Histograms: []prompb.Histogram{prompb.FromIntHistogram(5, h)}},
			{Labels: []prompb.Label{{Name: "__name__", Value: ""}}},
		},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "a", Help: "help", Unit: "s"}},
	}
}

func TestDecoder_MatchesTheGeneratedDecoder(t *testing.T) {
	raw, err := exampleWriteRequest().Marshal()
	require.NoError(t, err)
	var want prompb.WriteRequest
	require.NoError(t, want.Unmarshal(raw))

	d := &Decoder{}
	got, err := d.Decode(raw)
	require.NoError(t, err)
	require.Equal(t, canonical(&want), canonical(got))

	// Reused for a smaller request: nothing of the first one shows.
	small, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "z"}}}}}).Marshal()
	require.NoError(t, err)
	got, err = d.Decode(small)
	require.NoError(t, err)
	require.Equal(t, `series{"__name__"="z",}`, canonical(got))
}

func TestDecoder_DecodePartsIsDecodeOfTheirConcatenation(t *testing.T) {
	raw, err := exampleWriteRequest().Marshal()
	require.NoError(t, err)
	d := &Decoder{}
	want, err := d.Decode(raw)
	require.NoError(t, err)
	wantText := canonical(want)
	var parts [][]byte
	for i := range want.Timeseries {
		r := d.SeriesField(i)
		parts = append(parts, raw[r.Start:r.End])
	}
	parts = append(parts, raw[d.SeriesField(len(want.Timeseries)-1).End:]) // the metadata

	got, err := (&Decoder{}).DecodeParts(parts)
	require.NoError(t, err)
	require.Equal(t, wantText, canonical(got))

	_, err = (&Decoder{}).DecodeParts([][]byte{parts[0], parts[1][:3]})
	require.Error(t, err, "a truncated part")
}

func TestDecoder_SeriesFieldIsTheSeriesEncoding(t *testing.T) {
	wr := exampleWriteRequest()
	raw, err := wr.Marshal()
	require.NoError(t, err)
	// An unknown field between the series, which the ranges must skip.
	raw = append(protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), 7), raw...)

	d := &Decoder{}
	got, err := d.Decode(raw)
	require.NoError(t, err)
	require.Len(t, got.Timeseries, len(wr.Timeseries))
	for i := range wr.Timeseries {
		// Each range is a WriteRequest of that one series.
		r := d.SeriesField(i)
		var one prompb.WriteRequest
		require.NoError(t, one.Unmarshal(raw[r.Start:r.End]))
		require.Equal(t, canonical(&prompb.WriteRequest{Timeseries: wr.Timeseries[i : i+1]}), canonical(&one))
	}
}

func TestDecoder_RejectsMalformedInput(t *testing.T) {
	raw, err := exampleWriteRequest().Marshal()
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"truncated":          raw[:len(raw)-3],
		"series as a varint": {0x08, 0x01},
		"label as a varint":  {0x0a, 0x02, 0x08, 0x01},
		"bad length":         {0x0a, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := (&Decoder{}).Decode(b)
			require.Error(t, err)
		})
	}
}

func TestDecoder_DoesNotAllocatePerSeries(t *testing.T) {
	wr := &prompb.WriteRequest{}
	for i := range 100 {
		wr.Timeseries = append(wr.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "i", Value: fmt.Sprint(i)}, {Name: "job", Value: "j"}},
			Samples: []prompb.Sample{{Timestamp: int64(i), Value: 1}},
		})
	}
	raw, err := wr.Marshal()
	require.NoError(t, err)
	d := &Decoder{}
	_, err = d.Decode(raw) // grows the reusable slices once
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(10, func() { _, _ = d.Decode(raw) })
	require.Zero(t, allocs)
}

func FuzzDecoder(f *testing.F) {
	raw, err := exampleWriteRequest().Marshal()
	require.NoError(f, err)
	f.Add(raw)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01})
	// What the decoder accepts, the generated one accepts too, with the same content. (It may refuse more:
	// malformed unknown fields, such as unbalanced groups, that the generated decoder skips.)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := (&Decoder{}).Decode(b)
		if err != nil {
			return
		}
		var want prompb.WriteRequest
		require.NoError(t, want.Unmarshal(b), "accepted by Strata's decoder only")
		require.Equal(t, canonical(&want), canonical(got))
	})
}

func BenchmarkDecode(b *testing.B) {
	wr := &prompb.WriteRequest{}
	for i := range 1000 {
		ts := prompb.TimeSeries{Samples: []prompb.Sample{{Timestamp: int64(i), Value: float64(i)}}}
		ts.Labels = append(ts.Labels, prompb.Label{Name: "__name__", Value: "node_cpu_seconds_total"})
		for j := range 9 {
			ts.Labels = append(ts.Labels, prompb.Label{Name: fmt.Sprintf("label_%d", j), Value: fmt.Sprintf("value_%d_%d", j, i)})
		}
		wr.Timeseries = append(wr.Timeseries, ts)
	}
	raw, err := wr.Marshal()
	require.NoError(b, err)
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out prompb.WriteRequest
			_ = out.Unmarshal(raw)
		}
	})
	b.Run("strata", func(b *testing.B) {
		b.ReportAllocs()
		d := &Decoder{}
		for b.Loop() {
			_, _ = d.Decode(raw)
		}
	})
}
