package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

// The tree's shape is Prometheus' (integration/prometheus3_api_test.go compares it byte for byte with a
// running Prometheus for many queries); these pin a few whole answers.
func TestParseQuery_SyntaxTree(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, tc := range []struct {
		query string
		want  string
	}{
		{query: `up{job="api"}`, want: `{"anchored":false,"matchers":[{"name":"job","type":"=","value":"api"},{"name":"__name__","type":"=","value":"up"}],
			"name":"up","offset":0,"offsetExpr":null,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"}`},
		{query: `sum by (job) (rate(http_requests_total{code=~"5.."}[5m] offset 1m))`, want: `{"expr":{"args":[{"anchored":false,
			"matchers":[{"name":"code","type":"=~","value":"5.."},{"name":"__name__","type":"=","value":"http_requests_total"}],
			"name":"http_requests_total","offset":60000,"offsetExpr":null,"range":300000,"rangeExpr":null,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"matrixSelector"}],
			"func":{"argTypes":["matrix"],"name":"rate","returnType":"vector","variadic":0},"type":"call"},
			"grouping":["job"],"op":"sum","param":null,"type":"aggregation","without":false}`},
		{query: `a / on (x) group_left (y) -b > bool 2`, want: `{"bool":true,"lhs":{"bool":false,
			"lhs":{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"a"}],"name":"a","offset":0,"offsetExpr":null,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},
			"matching":{"card":"many-to-one","fillValues":{"lhs":null,"rhs":null},"include":["y"],"labels":["x"],"on":true},"op":"/",
			"rhs":{"expr":{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"b"}],"name":"b","offset":0,"offsetExpr":null,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},"op":"-","type":"unaryExpr"},
			"type":"binaryExpr"},"matching":null,"op":">",
			"rhs":{"type":"numberLiteral","val":"2"},"type":"binaryExpr"}`},
		{query: `max_over_time((x @ end())[1h:5m])`, want: `{"args":[{"expr":{"expr":{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"x"}],"name":"x","offset":0,"offsetExpr":null,"smoothed":false,
			"startOrEnd":"end","timestamp":null,"type":"vectorSelector"},"type":"parenExpr"},"offset":0,"offsetExpr":null,"range":3600000,"rangeExpr":null,"startOrEnd":null,"step":300000,"stepExpr":null,"timestamp":null,"type":"subquery"}],
			"func":{"argTypes":["matrix"],"name":"max_over_time","returnType":"vector","variadic":0},"type":"call"}`},
		{query: `label_replace(up, "a", "$1", "b", "(.*)")`, want: `{"args":[{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"up"}],"name":"up","offset":0,"offsetExpr":null,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},
			{"type":"stringLiteral","val":"a"},{"type":"stringLiteral","val":"$1"},{"type":"stringLiteral","val":"b"},{"type":"stringLiteral","val":"(.*)"}],
			"func":{"argTypes":["vector","string","string","string","string"],"name":"label_replace","returnType":"vector","variadic":0},"type":"call"}`},
		{query: `time()`, want: `{"args":[],"func":{"argTypes":[],"name":"time","returnType":"scalar","variadic":0},"type":"call"}`},
		{query: `topk(3, x)`, want: `{"expr":{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"x"}],"name":"x","offset":0,"offsetExpr":null,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},
			"grouping":[],"op":"topk","param":{"type":"numberLiteral","val":"3"},"type":"aggregation","without":false}`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				status, resp := a.call(t, method, "/parse_query", url.Values{"query": {tc.query}})
				require.Equal(t, http.StatusOK, status, resp.Error)
				require.JSONEq(t, tc.want, string(resp.Data))
			}
		})
	}
}

// Every node type the parser makes has a description: parse_query never fails on a query that parses.
func TestParseQuery_DescribesEveryNodeType(t *testing.T) {
	queries := []string{
		`-(sum without (a) (x) + on () count_values("v", y))`,
		`quantile(0.9, rate(x[5m:30s] @ 100 offset -1m))`,
		`x and ignoring (a) y or z unless w`,
		`"a string"`, `1.5e3`, `-Inf`, `NaN`,
		`vector(1) == bool 1`,
		`histogram_quantile(0.5, sum by (le) (rate(x_bucket[1m])))`,
		`x[5m] @ start()`,
		`absent_over_time(nope{a!="b",c!~"d"}[1h])`,
		`round(x, 0.5)`, `sort_desc(x)`, `count by (a, b) (x)`,
	}
	p := parser.NewParser(parser.Options{})
	for _, q := range queries {
		expr, err := p.ParseExpr(q)
		require.NoError(t, err, q)
		tree, err := syntaxTree(expr)
		require.NoError(t, err, q)
		require.NotNil(t, tree, q)
	}
}

func TestParseQuery_BadParameters(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, tc := range []struct {
		name     string
		params   url.Values
		status   int
		errorHas string
	}{
		{name: "no query", params: url.Values{}, status: 400, errorHas: `invalid parameter "query"`},
		{name: "syntax error", params: url.Values{"query": {"sum(up"}}, status: 400, errorHas: `invalid parameter "query"`},
		{name: "unknown function", params: url.Values{"query": {"nope(up)"}}, status: 400, errorHas: `unknown function with name "nope"`},
		{name: "too deep", params: url.Values{"query": {strings.Repeat("(", 20_000) + "m" + strings.Repeat(")", 20_000)}}, status: 400, errorHas: "nests brackets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := a.call(t, http.MethodPost, "/parse_query", tc.params)
			require.Equal(t, tc.status, status, resp.Error)
			require.Equal(t, "error", resp.Status)
			require.Equal(t, "bad_data", resp.ErrorType)
			require.Contains(t, resp.Error, tc.errorHas)
		})
	}
}
