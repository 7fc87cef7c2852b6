package querymiddleware

import (
	"encoding/json"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
)

// The Prometheus API's JSON for a range query's answer, as Strata's querier writes it (encoding/json over
// promql.Matrix: the FPoint, HPoint and labels.Labels marshal methods). The middleware reads each part's
// answer (answer_decode.go) and writes the merged one here, in the same bytes.

// appendAnswer writes a successful range query answer as Strata's querier does: encoding/json over
// promql.Matrix (FPoint, HPoint and labels.Labels marshal methods) inside the API's envelope.
func appendAnswer(b []byte, matrix []*series, warnings, infos []string) []byte {
	b = append(b, `{"status":"success","data":{"resultType":"matrix","result":[`...)
	for i, s := range matrix {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSeriesJSON(b, s)
	}
	b = append(b, "]}"...)
	if len(warnings) > 0 {
		b = append(b, `,"warnings":`...)
		b = appendStrings(b, warnings)
	}
	if len(infos) > 0 {
		b = append(b, `,"infos":`...)
		b = appendStrings(b, infos)
	}
	return append(b, '}')
}

func appendSeriesJSON(b []byte, s *series) []byte {
	b = append(b, `{"metric":{`...)
	first := true
	s.Metric.Range(func(l labels.Label) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, l.Name)
		b = append(b, ':')
		b = appendJSONString(b, l.Value)
	})
	b = append(b, '}')
	if len(s.Floats) > 0 {
		b = append(b, `,"values":[`...)
		for i, p := range s.Floats {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = appendTimestamp(b, p.T)
			b = append(b, ',')
			b = appendFloatString(b, p.F)
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	if len(s.Histograms) > 0 {
		b = append(b, `,"histograms":[`...)
		for i, p := range s.Histograms {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = appendTimestamp(b, p.T)
			b = append(b, `,{"count":`...)
			b = appendFloatString(b, p.Count)
			b = append(b, `,"sum":`...)
			b = appendFloatString(b, p.Sum)
			if len(p.Buckets) > 0 {
				b = append(b, `,"buckets":[`...)
				for j, bucket := range p.Buckets {
					if j > 0 {
						b = append(b, ',')
					}
					b = append(b, '[')
					b = strconv.AppendInt(b, bucket.Boundaries, 10)
					b = append(b, ',')
					b = appendFloatString(b, bucket.Lower)
					b = append(b, ',')
					b = appendFloatString(b, bucket.Upper)
					b = append(b, ',')
					b = appendFloatString(b, bucket.Count)
					b = append(b, ']')
				}
				b = append(b, ']')
			}
			b = append(b, "}]"...)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendTimestamp writes float64(t)/1000 as encoding/json writes a float64 of that size (never the
// exponent form, which it uses only below 1e-6 or from 1e21 on).
func appendTimestamp(b []byte, t int64) []byte {
	return strconv.AppendFloat(b, float64(t)/1000, 'f', -1, 64)
}

// appendFloatString writes a sample value as the API does: a JSON string of strconv's 'f', -1 format.
func appendFloatString(b []byte, f float64) []byte {
	b = append(b, '"')
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	return append(b, '"')
}

func appendStrings(b []byte, items []string) []byte {
	b = append(b, '[')
	for i, s := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONString writes s as encoding/json does. Plain printable ASCII, which label names and most
// values are, is written directly; anything else goes through encoding/json itself, so its escaping
// rules (HTML characters, control characters, U+2028) are followed exactly. Strings read back from JSON
// cannot hold the invalid UTF-8 that encoding/json writes as \ufffd; label values never do (the
// distributor refuses them), nor do the engine's annotations.
func appendJSONString(b []byte, s string) []byte {
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
