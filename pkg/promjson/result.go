package promjson

import (
	"encoding/json"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// AppendQueryData writes a query's result as the API's "data": {"resultType":…,"result":…}, in the bytes
// encoding/json writes for Prometheus' promql types. An empty vector or matrix is [], never null.
func AppendQueryData(b []byte, v parser.Value) ([]byte, error) {
	b = append(b, `{"resultType":`...)
	b = AppendString(b, string(v.Type()))
	b = append(b, `,"result":`...)
	b, err := AppendResult(b, v)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// AppendResult writes a query's result value. Float-only matrices and vectors, which nearly every
// dashboard query returns, are written here: encoding/json's reflection and per-point marshal methods
// were a sixth of a small range query's CPU. Anything else (native histograms, scalars, strings) goes
// through encoding/json and the promql types' own marshal methods.
func AppendResult(b []byte, v parser.Value) ([]byte, error) {
	switch v := v.(type) {
	case promql.Matrix:
		if floatsOnly(v) {
			return appendMatrix(b, v), nil
		}
	case promql.Vector:
		if floatsOnlyVector(v) {
			return appendVector(b, v), nil
		}
	}
	encoded, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, encoded...), nil
}

func floatsOnly(m promql.Matrix) bool {
	for _, s := range m {
		if len(s.Histograms) > 0 {
			return false
		}
	}
	return true
}

func floatsOnlyVector(vec promql.Vector) bool {
	for _, s := range vec {
		if s.H != nil {
			return false
		}
	}
	return true
}

// appendMatrix writes a float-only matrix as promql.Series marshal: "values" omitted when empty.
func appendMatrix(b []byte, m promql.Matrix) []byte {
	b = append(b, '[')
	for i, s := range m {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"metric":`...)
		b = AppendLabels(b, s.Metric)
		if len(s.Floats) > 0 {
			b = append(b, `,"values":`...)
			b = AppendPoints(b, s.Floats)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendVector writes a float-only vector as promql.Sample marshals.
func appendVector(b []byte, vec promql.Vector) []byte {
	b = append(b, '[')
	for i, s := range vec {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"metric":`...)
		b = AppendLabels(b, s.Metric)
		b = append(b, `,"value":`...)
		b = AppendPoint(b, s.T, s.F)
		b = append(b, '}')
	}
	return append(b, ']')
}

// AppendSuccess writes a successful answer around data (already encoded) as encoding/json writes the
// API's envelope {"status":"success","data":…,"warnings":…,"infos":…}, without re-validating data.
func AppendSuccess(b, data []byte, warnings, infos []string) []byte {
	b = append(b, `{"status":"success","data":`...)
	b = append(b, data...)
	b = AppendAnnotations(b, warnings, infos)
	return append(b, '}')
}
