package querymiddleware

import (
	"strconv"

	"github.com/strata-metrics/strata/pkg/promjson"
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
	b = promjson.AppendAnnotations(b, warnings, infos)
	return append(b, '}')
}

func appendSeriesJSON(b []byte, s *series) []byte {
	b = append(b, `{"metric":`...)
	b = promjson.AppendLabels(b, s.Metric)
	if len(s.Floats) > 0 {
		b = append(b, `,"values":`...)
		b = promjson.AppendPoints(b, s.Floats)
	}
	if len(s.Histograms) > 0 {
		b = append(b, `,"histograms":[`...)
		for i, p := range s.Histograms {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = promjson.AppendTimestamp(b, p.T)
			b = append(b, `,{"count":`...)
			b = promjson.AppendFloat(b, p.Count)
			b = append(b, `,"sum":`...)
			b = promjson.AppendFloat(b, p.Sum)
			if len(p.Buckets) > 0 {
				b = append(b, `,"buckets":[`...)
				for j, bucket := range p.Buckets {
					if j > 0 {
						b = append(b, ',')
					}
					b = append(b, '[')
					b = strconv.AppendInt(b, bucket.Boundaries, 10)
					b = append(b, ',')
					b = promjson.AppendFloat(b, bucket.Lower)
					b = append(b, ',')
					b = promjson.AppendFloat(b, bucket.Upper)
					b = append(b, ',')
					b = promjson.AppendFloat(b, bucket.Count)
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
