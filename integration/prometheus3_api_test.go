package integration

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPrometheus3API_SameAnswers asks a current Prometheus (with its exemplar storage off, as Strata's
// querier has no exemplars to serve) and Strata the endpoints whose answers do not depend on stored data,
// and requires the same answers: parse_query's syntax tree byte for byte, query_exemplars, and the same
// statuses and error types for bad parameters.
func TestPrometheus3API_SameAnswers(t *testing.T) {
	strata := startStrata(t, t.TempDir())
	prom := startPrometheus3(t, "global:\n  scrape_interval: 1h\n")
	strataAPI := strata.url("/prometheus")

	t.Run("parse_query", func(t *testing.T) {
		for _, q := range []string{
			`up`,
			`up{job="api",instance!~"b.*"}`,
			`{__name__=~"http_.+",code!="200"}`,
			`rate(http_requests_total[5m])`,
			`rate(http_requests_total[5m] offset 1h)`,
			`rate(http_requests_total[5m] offset -10m)`,
			`sum by (job, code) (rate(http_requests_total[5m]))`,
			`sum without (instance) (x)`,
			`topk(3, x)`,
			`quantile(0.9, x)`,
			`count_values("value", x)`,
			`a + b`,
			`a / on (x) group_left (y) b`,
			`a * ignoring (z) group_right () b`,
			`a and on () b or c unless d`,
			`a > bool 2`,
			`-a`,
			`+a`,
			`(a)`,
			`1`, `-1.5e-3`, `Inf`, `-Inf`, `NaN`, `0x1F`,
			`"a string"`,
			`time()`,
			`vector(1)`,
			`label_replace(up, "dst", "$1", "src", "(.*)")`,
			`histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))`,
			`max_over_time(x[1h:5m])`,
			`max_over_time(x[1h:])`,
			`max_over_time((x @ end())[1h:5m] offset 1m)`,
			`x @ 1700000000`,
			`x[5m] @ start()`,
			`min_over_time(rate(x[5m])[30m:1m] @ 1700000000)`,
			`round(x, 0.5)`,
			`absent(nope{a="b"})`,
			`sort_desc(sum(x))`,
			`1 + 2 * 3 ^ 4 % 5`,
			`a == b`,
			`a atan2 b`,
		} {
			params := url.Values{"query": {q}}
			promCode, promResp := getAPI(t, prom, "/api/v1/parse_query", "", params)
			require.Equal(t, http.StatusOK, promCode, "prometheus: %s: %s", q, promResp.Error)
			strataCode, strataResp := getAPI(t, strataAPI, "/api/v1/parse_query", "team-a", params)
			require.Equal(t, http.StatusOK, strataCode, "strata: %s: %s", q, strataResp.Error)
			require.Equal(t, string(promResp.Data), string(strataResp.Data), q)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		for _, tc := range []struct {
			path   string
			params url.Values
		}{
			{path: "/api/v1/parse_query", params: url.Values{"query": {"sum(up"}}},
			{path: "/api/v1/parse_query", params: url.Values{}},
			{path: "/api/v1/query_exemplars", params: url.Values{"query": {"up{"}}},
			{path: "/api/v1/query_exemplars", params: url.Values{"query": {"up"}, "start": {"yesterday"}}},
			{path: "/api/v1/query_exemplars", params: url.Values{"query": {"up"}, "end": {"x"}}},
			{path: "/api/v1/query_exemplars", params: url.Values{"query": {"up"}, "start": {"100"}, "end": {"10"}}},
			{path: "/api/v1/series", params: url.Values{"match[]": {"up"}, "limit": {"-1"}}},
			{path: "/api/v1/labels", params: url.Values{"limit": {"x"}}},
			{path: "/api/v1/label/job/values", params: url.Values{"limit": {"-5"}}},
		} {
			promCode, promResp := getAPI(t, prom, tc.path, "", tc.params)
			strataCode, strataResp := getAPI(t, strataAPI, tc.path, "team-a", tc.params)
			require.Equal(t, http.StatusBadRequest, promCode, "prometheus %s %v", tc.path, tc.params)
			require.Equal(t, promCode, strataCode, "strata %s %v: %s", tc.path, tc.params, strataResp.Error)
			require.Equal(t, promResp.ErrorType, strataResp.ErrorType, "%s %v", tc.path, tc.params)
			require.Equal(t, "error", strataResp.Status)
		}
	})

	t.Run("query_exemplars", func(t *testing.T) {
		for _, params := range []url.Values{
			{"query": {"up"}},
			{"query": {`sum(rate(http_request_duration_seconds_bucket{job="api"}[5m]))`}, "start": {"1700000000"}, "end": {"1700003600"}},
		} {
			promCode, promResp := getAPI(t, prom, "/api/v1/query_exemplars", "", params)
			require.Equal(t, http.StatusOK, promCode, promResp.Error)
			strataCode, strataResp := getAPI(t, strataAPI, "/api/v1/query_exemplars", "team-a", params)
			require.Equal(t, http.StatusOK, strataCode, strataResp.Error)
			require.JSONEq(t, string(promResp.Data), string(strataResp.Data), "%v", params)
		}
	})
}
