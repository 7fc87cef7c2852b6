// Package promjson writes the pieces of the Prometheus HTTP API's JSON that query answers are made of —
// sample timestamps and values, label sets, strings — in exactly the bytes encoding/json writes for
// Prometheus' promql types, without its reflection and without re-validating output. The querier's API
// encodes answers with it and the query-frontend re-assembles cached ones with it, so both agree to the
// byte.
package promjson

import (
	"encoding/json"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// AppendTimestamp writes float64(t)/1000 (t in milliseconds) as encoding/json writes that float64: the
// shortest 'f' form. encoding/json switches to an exponent only below 1e-6 or from 1e21 on, which no
// non-zero millisecond timestamp reaches.
func AppendTimestamp(b []byte, t int64) []byte {
	return strconv.AppendFloat(b, float64(t)/1000, 'f', -1, 64)
}

// AppendFloat writes a sample value as the API does: a JSON string of strconv's 'f', -1 format ("+Inf",
// "-Inf" and "NaN" included).
func AppendFloat(b []byte, f float64) []byte {
	b = append(b, '"')
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	return append(b, '"')
}

// AppendString writes s as encoding/json does. Plain printable ASCII, which label names and most values
// are, is written directly; anything else goes through encoding/json itself, so its escaping rules (HTML
// characters, control characters, U+2028, invalid UTF-8) are followed exactly.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			encoded, _ := json.Marshal(s) // a string always marshals
			return append(b, encoded...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// AppendStrings writes a JSON array of strings.
func AppendStrings(b []byte, items []string) []byte {
	b = append(b, '[')
	for i, s := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, s)
	}
	return append(b, ']')
}

// AppendLabels writes a label set as labels.Labels marshals it: an object keyed by label name. Its names
// are sorted and unique, the order encoding/json gives a map's keys.
func AppendLabels(b []byte, ls labels.Labels) []byte {
	b = append(b, '{')
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = AppendString(b, l.Name)
		b = append(b, ':')
		b = AppendString(b, l.Value)
	})
	return append(b, '}')
}

// AppendPoint writes one float sample as promql.FPoint marshals it: [seconds, "value"].
func AppendPoint(b []byte, t int64, f float64) []byte {
	b = append(b, '[')
	b = AppendTimestamp(b, t)
	b = append(b, ',')
	b = AppendFloat(b, f)
	return append(b, ']')
}

// AppendPoints writes float samples as a JSON array of points, as a promql.Series' "values".
func AppendPoints(b []byte, points []promql.FPoint) []byte {
	b = append(b, '[')
	for i, p := range points {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendPoint(b, p.T, p.F)
	}
	return append(b, ']')
}

// AppendAnnotations writes the envelope's optional "warnings" and "infos" fields, each preceded by a comma,
// in the order and form encoding/json gives the API's response.
func AppendAnnotations(b []byte, warnings, infos []string) []byte {
	if len(warnings) > 0 {
		b = append(b, `,"warnings":`...)
		b = AppendStrings(b, warnings)
	}
	if len(infos) > 0 {
		b = append(b, `,"infos":`...)
		b = AppendStrings(b, infos)
	}
	return b
}
