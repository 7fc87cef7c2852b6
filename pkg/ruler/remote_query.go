package ruler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// maxRemoteAnswerBytes bounds one answer of the query-frontend: a rule whose result is larger is a
// mistake that must fail its evaluation, not take the ruler's memory.
const maxRemoteAnswerBytes = 64 << 20

// remoteQueryFunc evaluates a tenant's rule queries through the query-frontend's instant query API at
// base (-ruler.query-frontend.address), so that they get its queue, fairness and limits.
func remoteQueryFunc(client *http.Client, base, tenantID string, maxAnswerBytes int) rules.QueryFunc {
	endpoint := strings.TrimSuffix(base, "/") + "/prometheus/api/v1/query"
	return func(ctx context.Context, qs string, t time.Time) (promql.Vector, error) {
		form := url.Values{"query": {qs}, "time": {strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(tenant.OrgIDHeader, tenantID)
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("query-frontend: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, int64(maxAnswerBytes)+1))
		if err != nil {
			return nil, fmt.Errorf("query-frontend: reading the answer: %w", err)
		}
		if len(body) > maxAnswerBytes {
			return nil, fmt.Errorf("query-frontend: the answer is larger than %d bytes", maxAnswerBytes)
		}
		return decodeInstantAnswer(resp.StatusCode, body)
	}
}

// decodeInstantAnswer turns the JSON of an instant query into what rules expect: a vector, a scalar
// as one sample without labels.
func decodeInstantAnswer(code int, body []byte) (promql.Vector, error) {
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("query-frontend answered %d with what is not the query API's JSON: %.200q", code, body)
	}
	if answer.Status != "success" {
		return nil, fmt.Errorf("query-frontend answered %d: %s", code, answer.Error)
	}
	switch answer.Data.ResultType {
	case "scalar":
		var p [2]json.RawMessage
		if err := json.Unmarshal(answer.Data.Result, &p); err != nil {
			return nil, fmt.Errorf("decoding a scalar: %w", err)
		}
		ts, v, err := decodePoint(p)
		if err != nil {
			return nil, err
		}
		return promql.Vector{{T: ts, F: v, Metric: labels.EmptyLabels()}}, nil
	case "vector":
		var samples []struct {
			Metric    map[string]string   `json:"metric"`
			Value     *[2]json.RawMessage `json:"value"`
			Histogram json.RawMessage     `json:"histogram"`
		}
		if err := json.Unmarshal(answer.Data.Result, &samples); err != nil {
			return nil, fmt.Errorf("decoding a vector: %w", err)
		}
		out := make(promql.Vector, 0, len(samples))
		for _, s := range samples {
			if s.Value == nil {
				return nil, errors.New("rules over native histograms cannot be evaluated through the query-frontend yet; unset -ruler.query-frontend.address")
			}
			ts, v, err := decodePoint(*s.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, promql.Sample{T: ts, F: v, Metric: labels.FromMap(s.Metric)})
		}
		return out, nil
	default:
		return nil, fmt.Errorf("a rule's query must give a vector or a scalar, not a %s", answer.Data.ResultType)
	}
}

// decodePoint decodes [unix seconds, "value"].
func decodePoint(p [2]json.RawMessage) (int64, float64, error) {
	var secs float64
	var value string
	if err := json.Unmarshal(p[0], &secs); err != nil {
		return 0, 0, fmt.Errorf("decoding a timestamp: %w", err)
	}
	if err := json.Unmarshal(p[1], &value); err != nil {
		return 0, 0, fmt.Errorf("decoding a value: %w", err)
	}
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("decoding a value: %w", err)
	}
	return int64(math.Round(secs * 1000)), v, nil
}
