package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Two Prometheus API answers are compared after normalising them: series sorted by their labels,
// timestamps as milliseconds, values as floats, so formatting and order differences between
// backends do not count, while any difference in series, timestamps or values does.

type apiResponse struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
	Error string `json:"error"`
}

type apiSeries struct {
	Metric map[string]string `json:"metric"`
	Values []apiPoint        `json:"values"` // matrix
	Value  *apiPoint         `json:"value"`  // vector
}

// apiPoint is a [seconds, "value"] pair.
type apiPoint struct {
	ms int64
	v  float64
}

func (p *apiPoint) UnmarshalJSON(b []byte) error {
	var raw [2]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	secs, err := strconv.ParseFloat(string(raw[0]), 64)
	if err != nil {
		return fmt.Errorf("timestamp %s: %w", raw[0], err)
	}
	var s string
	if err := json.Unmarshal(raw[1], &s); err != nil {
		return fmt.Errorf("value %s: %w", raw[1], err)
	}
	if p.v, err = strconv.ParseFloat(s, 64); err != nil {
		return fmt.Errorf("value %q: %w", s, err)
	}
	p.ms = int64(math.Round(secs * 1000))
	return nil
}

// normSeries is one series of a normalised result.
type normSeries struct {
	metric string
	points []apiPoint
}

// normalise decodes a successful answer into its result type and series sorted by labels.
func normalise(body []byte) (string, []normSeries, error) {
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return "", nil, fmt.Errorf("decode response: %w", err)
	}
	if r.Status != "success" {
		return "", nil, fmt.Errorf("status %q: %s", r.Status, r.Error)
	}
	var out []normSeries
	switch r.Data.ResultType {
	case "matrix", "vector":
		var series []apiSeries
		if err := json.Unmarshal(r.Data.Result, &series); err != nil {
			return "", nil, fmt.Errorf("decode %s: %w", r.Data.ResultType, err)
		}
		for _, s := range series {
			n := normSeries{metric: formatMetric(s.Metric), points: s.Values}
			if s.Value != nil {
				n.points = []apiPoint{*s.Value}
			}
			out = append(out, n)
		}
	case "scalar":
		var p apiPoint
		if err := json.Unmarshal(r.Data.Result, &p); err != nil {
			return "", nil, fmt.Errorf("decode scalar: %w", err)
		}
		out = []normSeries{{points: []apiPoint{p}}}
	default:
		return "", nil, fmt.Errorf("result type %q is not compared", r.Data.ResultType)
	}
	slices.SortFunc(out, func(a, b normSeries) int { return strings.Compare(a.metric, b.metric) })
	return r.Data.ResultType, out, nil
}

func formatMetric(m map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + strconv.Quote(m[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// compareResults returns "" when a and b hold the same result, or their first difference.
func compareResults(a, b []byte, tolerance float64) string {
	typeA, sa, errA := normalise(a)
	typeB, sb, errB := normalise(b)
	switch {
	case errA != nil || errB != nil:
		return fmt.Sprintf("cannot compare: %v / %v", errA, errB)
	case typeA != typeB:
		return fmt.Sprintf("result type %s vs %s", typeA, typeB)
	}
	for i := 0; i < max(len(sa), len(sb)); i++ {
		switch {
		case i >= len(sa):
			return "series only in the second: " + sb[i].metric
		case i >= len(sb) || sa[i].metric < sb[i].metric:
			return "series only in the first: " + sa[i].metric
		case sa[i].metric > sb[i].metric:
			return "series only in the second: " + sb[i].metric
		}
		pa, pb := sa[i].points, sb[i].points
		for j := 0; j < min(len(pa), len(pb)); j++ {
			if pa[j].ms != pb[j].ms {
				return fmt.Sprintf("%s: point %d at %dms vs %dms", sa[i].metric, j, pa[j].ms, pb[j].ms)
			}
			if !sameValue(pa[j].v, pb[j].v, tolerance) {
				return fmt.Sprintf("%s at %dms: %v vs %v", sa[i].metric, pa[j].ms, pa[j].v, pb[j].v)
			}
		}
		if len(pa) != len(pb) {
			return fmt.Sprintf("%s: %d points vs %d", sa[i].metric, len(pa), len(pb))
		}
	}
	return ""
}

func sameValue(a, b, tolerance float64) bool {
	if a == b || (math.IsNaN(a) && math.IsNaN(b)) {
		return true
	}
	return math.Abs(a-b) <= tolerance*max(math.Abs(a), math.Abs(b))
}
