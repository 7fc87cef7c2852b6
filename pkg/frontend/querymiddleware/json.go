package querymiddleware

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
)

// The Prometheus API's JSON for a range query's answer, as Strata's querier writes it (encoding/json over
// promql.Matrix): the middleware reads each part's answer and writes the merged one in the same bytes.

// querierAnswer is a successful range query answer.
type querierAnswer struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string    `json:"resultType"`
		Result     []*series `json:"result"`
	} `json:"data"`
	Warnings []string `json:"warnings"`
	Infos    []string `json:"infos"`
}

// decodeAnswer reads a querier's successful answer to the range query start..end (on its grid) as an
// extent. Points outside the range or out of time order are an error: merging relies on them.
func decodeAnswer(body []byte, start, end int64) (*extent, error) {
	var answer querierAnswer
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, err
	}
	if answer.Status != "success" || answer.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("expected a successful matrix answer, got status %q and result type %q", answer.Status, answer.Data.ResultType)
	}
	for _, s := range answer.Data.Result {
		if s == nil {
			return nil, errors.New("null series")
		}
		if err := checkPoints(s, start, end); err != nil {
			return nil, fmt.Errorf("series %s: %w", s.Metric, err)
		}
	}
	return &extent{start: start, end: end, series: answer.Data.Result, warnings: answer.Warnings, infos: answer.Infos}, nil
}

// UnmarshalJSON reads [<unix seconds>, "<value>"].
func (p *floatPoint) UnmarshalJSON(b []byte) error {
	ts, value, err := splitPoint(b)
	if err != nil {
		return err
	}
	if p.T, err = parseTimestamp(ts); err != nil {
		return err
	}
	var s string
	if err := json.Unmarshal(value, &s); err != nil {
		return err
	}
	p.F, err = strconv.ParseFloat(s, 64)
	return err
}

// UnmarshalJSON reads [<unix seconds>, {"count": "<c>", "sum": "<s>", "buckets": [[<b>, "<l>", "<u>", "<c>"], ...]}].
func (p *histogramPoint) UnmarshalJSON(b []byte) error {
	ts, value, err := splitPoint(b)
	if err != nil {
		return err
	}
	if p.T, err = parseTimestamp(ts); err != nil {
		return err
	}
	var h struct {
		Count   string            `json:"count"`
		Sum     string            `json:"sum"`
		Buckets []json.RawMessage `json:"buckets"`
	}
	if err := json.Unmarshal(value, &h); err != nil {
		return err
	}
	if p.Count, err = strconv.ParseFloat(h.Count, 64); err != nil {
		return err
	}
	if p.Sum, err = strconv.ParseFloat(h.Sum, 64); err != nil {
		return err
	}
	for _, raw := range h.Buckets {
		var fields []json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return err
		}
		if len(fields) != 4 {
			return fmt.Errorf("histogram bucket %s does not have 4 fields", raw)
		}
		var bucket histogramBucket
		if err := json.Unmarshal(fields[0], &bucket.Boundaries); err != nil {
			return err
		}
		if bucket.Boundaries < 0 || bucket.Boundaries > 3 {
			return fmt.Errorf("histogram bucket boundaries %d is not 0..3", bucket.Boundaries)
		}
		for i, f := range []*float64{&bucket.Lower, &bucket.Upper, &bucket.Count} {
			var s string
			if err := json.Unmarshal(fields[i+1], &s); err != nil {
				return err
			}
			if *f, err = strconv.ParseFloat(s, 64); err != nil {
				return err
			}
		}
		p.Buckets = append(p.Buckets, bucket)
	}
	return nil
}

// splitPoint splits [a, b] into a and b; encoding/json has checked that b is valid JSON.
func splitPoint(b []byte) (first, second []byte, err error) {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return nil, nil, fmt.Errorf("a point must be a [time, value] pair, got %.100s", b)
	}
	inner := b[1 : len(b)-1]
	comma := bytes.IndexByte(inner, ',') // the time is a number: the first comma ends it
	if comma < 0 {
		return nil, nil, fmt.Errorf("a point must be a [time, value] pair, got %.100s", b)
	}
	return bytes.TrimSpace(inner[:comma]), bytes.TrimSpace(inner[comma+1:]), nil
}

// parseTimestamp reads Unix seconds with a millisecond fraction, as float64(ms)/1000 formats.
func parseTimestamp(b []byte) (int64, error) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("point time %q: %w", b, err)
	}
	ms := math.Round(f * 1000)
	if !(math.Abs(ms) <= float64(maxEvalMillis)) {
		return 0, fmt.Errorf("point time %q is out of range", b)
	}
	return int64(ms), nil
}

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
