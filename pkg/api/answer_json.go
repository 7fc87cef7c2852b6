package api

import (
	"encoding/json"

	"github.com/prometheus/prometheus/promql"

	"github.com/strata-metrics/strata/pkg/promjson"
)

// appendQueryData writes a query's result as encoding/json writes queryData over it, byte for byte, for
// the float-only matrices and vectors that nearly every dashboard query returns: reflection and
// per-point marshal methods were a sixth of a small range query's CPU. It reports false for anything
// else (histograms, scalars, strings), which the caller marshals with encoding/json.
func appendQueryData(b []byte, value any) ([]byte, bool) {
	switch v := value.(type) {
	case promql.Matrix:
		for _, s := range v {
			if len(s.Histograms) > 0 {
				return b, false
			}
		}
		b = append(b, `{"resultType":"matrix","result":[`...)
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"metric":`...)
			b = promjson.AppendLabels(b, s.Metric)
			if len(s.Floats) > 0 {
				b = append(b, `,"values":`...)
				b = promjson.AppendPoints(b, s.Floats)
			}
			b = append(b, '}')
		}
		return append(b, "]}"...), true
	case promql.Vector:
		for _, s := range v {
			if s.H != nil {
				return b, false
			}
		}
		b = append(b, `{"resultType":"vector","result":[`...)
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"metric":`...)
			b = promjson.AppendLabels(b, s.Metric)
			b = append(b, `,"value":`...)
			b = promjson.AppendPoint(b, s.T, s.F)
			b = append(b, '}')
		}
		return append(b, "]}"...), true
	}
	return b, false
}

// appendSuccess writes a successful answer whose data is already encoded as encoding/json writes
// response{Status: "success", Data: data, ...}, without encoding/json re-validating the data's bytes.
func appendSuccess(b []byte, data json.RawMessage, warnings, infos []string) []byte {
	b = append(b, `{"status":"success","data":`...)
	b = append(b, data...)
	b = promjson.AppendAnnotations(b, warnings, infos)
	return append(b, '}')
}
