package querysharding

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-metrics/strata/pkg/frontend"
)

// errNativeHistograms ends a sharded evaluation whose shards answered with native histograms. Prometheus'
// JSON gives a histogram's buckets by their bounds, without the schema and bucket indexes that adding
// histograms needs, so they cannot be merged exactly: the query is asked again unsharded.
var errNativeHistograms = errors.New("a shard answered with native histograms")

// shardAnswer is one shard's answer to one subtree.
type shardAnswer struct {
	series   []promql.Series
	warnings []string
	infos    []string
}

// decodeAnswer reads a querier's successful JSON answer to a shard query: a vector or a matrix of float
// samples. part, when not empty, is added to every series as partLabel.
func decodeAnswer(body []byte, part string) (shardAnswer, error) {
	var envelope struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
		Infos    []string `json:"infos"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		return shardAnswer{}, fmt.Errorf("decode the querier's answer: %w", err)
	}
	if envelope.Status != "success" {
		return shardAnswer{}, fmt.Errorf("the querier answered status %q with a 2xx", envelope.Status)
	}
	out := shardAnswer{warnings: envelope.Warnings, infos: envelope.Infos}
	metric := func(m map[string]string) labels.Labels {
		if part != "" {
			m[partLabel] = part
		}
		return labels.FromMap(m)
	}
	switch envelope.Data.ResultType {
	case "matrix":
		var result []struct {
			Metric     map[string]string `json:"metric"`
			Values     []point           `json:"values"`
			Histograms json.RawMessage   `json:"histograms"`
		}
		if err := json.Unmarshal(envelope.Data.Result, &result); err != nil {
			return shardAnswer{}, fmt.Errorf("decode the querier's matrix: %w", err)
		}
		out.series = make([]promql.Series, 0, len(result))
		for _, s := range result {
			if len(s.Histograms) > 0 {
				return shardAnswer{}, errNativeHistograms
			}
			floats := make([]promql.FPoint, len(s.Values))
			for i, p := range s.Values {
				floats[i] = promql.FPoint(p)
			}
			out.series = append(out.series, promql.Series{Metric: metric(s.Metric), Floats: floats})
		}
	case "vector":
		var result []struct {
			Metric    map[string]string `json:"metric"`
			Value     *point            `json:"value"`
			Histogram json.RawMessage   `json:"histogram"`
		}
		if err := json.Unmarshal(envelope.Data.Result, &result); err != nil {
			return shardAnswer{}, fmt.Errorf("decode the querier's vector: %w", err)
		}
		out.series = make([]promql.Series, 0, len(result))
		for _, s := range result {
			if len(s.Histogram) > 0 {
				return shardAnswer{}, errNativeHistograms
			}
			if s.Value == nil {
				return shardAnswer{}, fmt.Errorf("the querier's vector has a sample without a value: %v", s.Metric)
			}
			out.series = append(out.series, promql.Series{Metric: metric(s.Metric), Floats: []promql.FPoint{promql.FPoint(*s.Value)}})
		}
	default:
		// Every subtree is an aggregation, whose value is a vector (a matrix over a range).
		return shardAnswer{}, fmt.Errorf("the querier answered a shard query with a %q, not a vector or matrix", envelope.Data.ResultType)
	}
	return out, nil
}

// point is a float sample as Prometheus' JSON writes it: [<unix seconds>, "<value>"].
type point promql.FPoint

func (p *point) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return fmt.Errorf("sample %s is not [time, \"value\"]", b)
	}
	ts, value, ok := bytes.Cut(b[1:len(b)-1], []byte(","))
	if !ok {
		return fmt.Errorf("sample %s is not [time, \"value\"]", b)
	}
	seconds, err := strconv.ParseFloat(string(bytes.TrimSpace(ts)), 64)
	if err != nil {
		return fmt.Errorf("sample time in %s: %w", b, err)
	}
	var text string
	if err := json.Unmarshal(value, &text); err != nil {
		return fmt.Errorf("sample value in %s: %w", b, err)
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return fmt.Errorf("sample value in %s: %w", b, err)
	}
	// Times are whole milliseconds written as seconds; rounding undoes the float's last-bit error.
	p.T, p.F = int64(math.Round(seconds*1000)), v
	return nil
}

// apiResponse is the envelope of Prometheus' HTTP API.
type apiResponse struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

// jsonResponse is the HTTP response to req with status and body resp.
func jsonResponse(req *http.Request, status int, resp apiResponse) (*http.Response, error) {
	body, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encode the sharded query's answer: %w", err)
	}
	return frontend.NewResponse(req, status, http.Header{"Content-Type": []string{"application/json"}}, body), nil
}

// errorResponse is a Prometheus API error answer.
func errorResponse(req *http.Request, status int, errorType, msg string) (*http.Response, error) {
	return jsonResponse(req, status, apiResponse{Status: "error", ErrorType: errorType, Error: msg})
}
