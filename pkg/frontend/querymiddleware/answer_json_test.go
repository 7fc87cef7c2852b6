package querymiddleware

import (
	"encoding/json"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"
)

// The answer's JSON must be what encoding/json writes for promql.Matrix, as the querier does.
func TestAppendAnswer_WritesWhatEncodingJSONWritesForAMatrix(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var times []int64
	for range 2000 {
		times = append(times, rng.Int63n(2*maxEvalMillis)-maxEvalMillis, rng.Int63n(1<<42))
	}
	times = append(times, 0, 1, -1, 999, 1000, 1001, 1740808020123, maxEvalMillis, -maxEvalMillis)
	slices.Sort(times) // a series' points are in time order
	times = slices.Compact(times)
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-7, 1e21, 1e300, -1e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN()}
	for range 2000 {
		floats = append(floats, math.Float64frombits(rng.Uint64()))
	}
	var fpoints []promql.FPoint
	for i, ts := range times {
		fpoints = append(fpoints, promql.FPoint{T: ts, F: floats[i%len(floats)]})
	}
	matrix := promql.Matrix{
		{Metric: labels.FromStrings("__name__", "x", "html", "<a href=\"x\">&</a>", "ctl", "tab\tnl\nnul\x00", "utf8", "ü€😀", "sep", "\u2028\u2029")},
		{Metric: labels.EmptyLabels(), Floats: fpoints},
	}
	for _, fh := range testFloatHistograms() {
		matrix[0].Histograms = append(matrix[0].Histograms, promql.HPoint{T: int64(len(matrix[0].Histograms)) * 1500, H: fh})
	}
	want, err := json.Marshal(struct {
		Status string `json:"status"`
		Data   any    `json:"data"`
	}{"success", struct {
		ResultType string        `json:"resultType"`
		Result     promql.Matrix `json:"result"`
	}{"matrix", matrix}})
	require.NoError(t, err)

	// What the middleware reads from that JSON, it writes back byte for byte.
	got, err := decodeAnswer(want, -maxEvalMillis, maxEvalMillis)
	require.NoError(t, err)
	requireSameAnswer(t, answer{body: want}, answer{body: appendAnswer(nil, got.series, nil, nil)}, "re-encoded")

	withAnnotations := appendAnswer(nil, nil, []string{"w <1>"}, []string{"i &2"})
	require.JSONEq(t, `{"status":"success","data":{"resultType":"matrix","result":[]},"warnings":["w <1>"],"infos":["i &2"]}`, string(withAnnotations))
	require.Contains(t, string(withAnnotations), `\u003c1\u003e`, "HTML characters escaped as encoding/json does")
}

// testFloatHistograms are histograms of several schemas and bucket layouts, as the engine returns them.
func testFloatHistograms() []*histogram.FloatHistogram {
	return []*histogram.FloatHistogram{
		{ // exponential, with zero bucket and negative buckets
			Schema: 1, Count: 21.5, Sum: -3.25, ZeroThreshold: 0.001, ZeroCount: 1.5,
			PositiveSpans: []histogram.Span{{Offset: -2, Length: 2}, {Offset: 3, Length: 1}}, PositiveBuckets: []float64{1, 2, 0.333},
			NegativeSpans: []histogram.Span{{Offset: 0, Length: 2}}, NegativeBuckets: []float64{4, 0},
		},
		{ // custom buckets (NHCB)
			Schema: histogram.CustomBucketsSchema, Count: 6, Sum: 12.75,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 3}}, PositiveBuckets: []float64{1, 2, 3},
			CustomValues: []float64{0.1, 0.5},
		},
		{Schema: 0, Count: 0, Sum: 0}, // empty: no buckets in JSON
		{Schema: -4, Count: math.Inf(1), Sum: math.NaN(), ZeroThreshold: 0, ZeroCount: math.Inf(1)},
	}
}

func TestDecodeAnswer_RefusesWhatItCannotMergeExactly(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":              `{"status":"success"`,
		"not success":           `{"status":"error","errorType":"internal","error":"x"}`,
		"not a matrix":          `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		"point out of range":    `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[99,"1"]]}]}}`,
		"points out of order":   `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[2,"1"],[1,"1"]]}]}}`,
		"value not a float":     `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"one"]]}]}}`,
		"value not a string":    `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,1]]}]}}`,
		"time not a number":     `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[["1","1"]]}]}}`,
		"point of one element":  `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1]]}]}}`,
		"null series":           `{"status":"success","data":{"resultType":"matrix","result":[null]}}`,
		"bucket of 3 fields":    `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"histograms":[[1,{"count":"1","sum":"1","buckets":[[0,"1","2"]]}]]}]}}`,
		"bucket boundaries 4":   `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"histograms":[[1,{"count":"1","sum":"1","buckets":[[4,"1","2","3"]]}]]}]}}`,
		"histogram count empty": `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"histograms":[[1,{"sum":"1"}]]}]}}`,
	} {
		_, err := decodeAnswer([]byte(body), 0, 10_000)
		require.Error(t, err, name)
	}
}

// FuzzDecodeAnswer: answers come from queriers, which may be of another version; whatever they send,
// reading it must not panic, and what reads writes back to JSON that reads the same.
func FuzzDecodeAnswer(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b\u003c"},"values":[[1,"1.5"],[2.5,"NaN"]],"histograms":[[3,{"count":"2","sum":"1","buckets":[[0,"-1","1","2"]]}]]}]},"warnings":["w"],"infos":["i"]}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]},"extra":{"x":[1,true,null,"s"]}}`))
	f.Add([]byte(`{"status":"error","errorType":"bad_data","error":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := decodeAnswer(body, -maxEvalMillis, maxEvalMillis)
		if err != nil {
			return
		}
		again, err := decodeAnswer(appendAnswer(nil, e.series, e.warnings, e.infos), -maxEvalMillis, maxEvalMillis)
		require.NoError(t, err)
		require.Equal(t, string(appendAnswer(nil, e.series, e.warnings, e.infos)), string(appendAnswer(nil, again.series, again.warnings, again.infos)))
	})
}
