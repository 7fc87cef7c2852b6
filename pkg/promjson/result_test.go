package promjson

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

// apiData and apiResponse mirror how the Prometheus API's envelope is declared for encoding/json.
type apiData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     parser.Value     `json:"result"`
}

type apiResponse struct {
	Status   string   `json:"status"`
	Data     any      `json:"data,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Infos    []string `json:"infos,omitempty"`
}

// The hand-written encoding must give the bytes encoding/json gives over the same promql values: clients
// (and the frontend's cache, which compares answers) see no difference.
func TestAppendQueryData_MatchesEncodingJSON(t *testing.T) {
	values := []float64{0, math.Copysign(0, -1), 1, -1.5, 0.1, 1e-300, 1e300, 123456789.123456789, math.NaN(), math.Inf(1), math.Inf(-1), 5e-7}
	times := []int64{0, 1, -1, 999, -1500, 1_700_000_000_123, math.MaxInt64 / 2}
	labelSets := []labels.Labels{
		labels.EmptyLabels(),
		labels.FromStrings("__name__", "up", "job", "api"),
		labels.FromStrings("a", `quote " backslash \ <html> & amp`, "b", "tab\tnewline\n", "c", "ünïcødé", "d", "\u2028", "e", "\xff invalid"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() promql.FPoint {
		return promql.FPoint{T: times[rng.IntN(len(times))], F: values[rng.IntN(len(values))]}
	}
	var matrix promql.Matrix
	var vector promql.Vector
	for i, ls := range labelSets {
		s := promql.Series{Metric: ls}
		for range i * 3 { // the first series has no points: encoding/json omits "values"
			s.Floats = append(s.Floats, pick())
		}
		matrix = append(matrix, s)
		p := pick()
		vector = append(vector, promql.Sample{Metric: ls, T: p.T, F: p.F})
	}
	for _, v := range []parser.Value{matrix, vector, promql.Matrix{}, promql.Vector{}} {
		got, err := AppendQueryData(nil, v)
		require.NoError(t, err)
		want, err := json.Marshal(apiData{ResultType: v.Type(), Result: v})
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))

		for _, annos := range [][2][]string{{nil, nil}, {{"warn <1>"}, nil}, {nil, {"info \"a\"", "info b"}}, {{"w"}, {"i"}}} {
			want, err := json.Marshal(apiResponse{Status: "success", Data: json.RawMessage(got), Warnings: annos[0], Infos: annos[1]})
			require.NoError(t, err)
			require.Equal(t, string(want), string(AppendSuccess(nil, got, annos[0], annos[1])))
		}
	}
}

// An engine's empty result may be a nil slice: the API answers [] for it, never null.
func TestAppendQueryData_EmptyResultIsAnEmptyArray(t *testing.T) {
	for _, v := range []parser.Value{promql.Matrix(nil), promql.Vector(nil)} {
		got, err := AppendQueryData(nil, v)
		require.NoError(t, err)
		require.JSONEq(t, `{"resultType":"`+string(v.Type())+`","result":[]}`, string(got))
	}
}

// Histograms, scalars and strings are written by encoding/json and the promql types' marshal methods.
func TestAppendQueryData_LeavesHistogramsAndScalarsToEncodingJSON(t *testing.T) {
	h := &histogram.FloatHistogram{Count: 1, Sum: 2}
	for _, v := range []parser.Value{
		promql.Matrix{{Metric: labels.FromStrings("a", "b"), Histograms: []promql.HPoint{{T: 1, H: h}}}},
		promql.Vector{{Metric: labels.FromStrings("a", "b"), T: 1, H: h}},
		promql.Scalar{T: 1, V: 2},
		promql.String{T: 1, V: "x"},
	} {
		got, err := AppendQueryData(nil, v)
		require.NoError(t, err)
		want, err := json.Marshal(apiData{ResultType: v.Type(), Result: v})
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "%T", v)
	}
}
