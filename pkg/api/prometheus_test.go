package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/validation"
	"github.com/strata-metrics/strata/pkg/version"
)

// The test data: three series sampled every 15s from dataStart for ten minutes.
var (
	dataStart = time.Unix(1_700_000_000, 0).UTC()
	dataEnd   = dataStart.Add(10 * time.Minute)
	step      = 15 * time.Second
)

func testSeries() []labels.Labels {
	return []labels.Labels{
		labels.FromStrings("__name__", "up", "job", "api", "instance", "a"),
		labels.FromStrings("__name__", "up", "job", "api", "instance", "b"),
		labels.FromStrings("__name__", "http_requests_total", "job", "api", "code", "200"),
	}
}

// valueAt is the value of series i at sample n.
func valueAt(i, n int) float64 {
	switch i {
	case 0:
		return 1
	case 1:
		return 0
	}
	return float64(10 * n) // a counter growing by 10 per scrape
}

func openTestDB(t *testing.T) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	app := db.Appender(context.Background())
	for i, ls := range testSeries() {
		for n := 0; !dataStart.Add(time.Duration(n) * step).After(dataEnd); n++ {
			_, err := app.Append(0, ls, dataStart.Add(time.Duration(n)*step).UnixMilli(), valueAt(i, n))
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	return db
}

func testEngineConfig() querier.Config {
	return querier.Config{
		MaxSamples:                50_000_000,
		Timeout:                   time.Minute,
		MaxConcurrent:             4,
		LookbackDelta:             5 * time.Minute,
		DefaultEvaluationInterval: time.Minute,
	}
}

// fakeMetadata records the arguments of its last call.
type fakeMetadata struct {
	metric                string
	limit, limitPerMetric int
	result                map[string][]querier.MetricMetadata
	err                   error
}

func (f *fakeMetadata) MetricsMetadata(_ context.Context, metric string, limit, limitPerMetric int) (map[string][]querier.MetricMetadata, error) {
	f.metric, f.limit, f.limitPerMetric = metric, limit, limitPerMetric
	return f.result, f.err
}

type testAPI struct {
	api      *PrometheusAPI
	url      string
	engine   *promql.Engine
	db       storage.Queryable
	metadata *fakeMetadata
}

func newTestAPI(t *testing.T, cfg querier.Config, queryable storage.Queryable) *testAPI {
	t.Helper()
	return newTestAPIWithLimits(t, cfg, queryable, validation.DefaultLimits())
}

// newTestAPIWithLimits serves the API with limits for every tenant; requests are tenant "anonymous".
func newTestAPIWithLimits(t *testing.T, cfg querier.Config, queryable storage.Queryable, limits validation.Limits) *testAPI {
	t.Helper()
	db := openTestDB(t)
	if queryable == nil {
		queryable = db
	}
	engine := querier.NewEngine(cfg, nil, slog.New(slog.DiscardHandler))
	md := &fakeMetadata{result: map[string][]querier.MetricMetadata{}}
	a := NewPrometheusAPI(engine, queryable, md, cfg, validation.NewOverrides(limits, nil), slog.New(slog.DiscardHandler))
	a.now = func() time.Time { return dataEnd }
	mux := http.NewServeMux()
	a.Register(mux, "/api/v1", TenantMiddleware(false))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testAPI{api: a, url: srv.URL + "/api/v1", engine: engine, db: db, metadata: md}
}

type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// call sends params as a query string (GET) or as a form body (POST) and decodes the envelope.
func (a *testAPI) call(t *testing.T, method, path string, params url.Values) (int, apiResponse) {
	t.Helper()
	var req *http.Request
	var err error
	switch method {
	case http.MethodPost:
		req, err = http.NewRequest(method, a.url+path, strings.NewReader(params.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	default:
		req, err = http.NewRequest(method, a.url+path+"?"+params.Encode(), nil)
		require.NoError(t, err)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var out apiResponse
	require.NoError(t, json.Unmarshal(body, &out), "body: %s", body)
	return resp.StatusCode, out
}

func unixSeconds(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}

// metricJSON is a label set as encoding/json decodes it into an any.
func metricJSON(ls labels.Labels) map[string]any {
	m := map[string]any{}
	ls.Range(func(l labels.Label) { m[l.Name] = l.Value })
	return m
}

// point renders a sample as Prometheus' API does: [<unix seconds>, "<value>"].
func point(ts int64, v float64) []any {
	return []any{float64(ts) / 1000, strconv.FormatFloat(v, 'f', -1, 64)}
}

func TestQuery_InstantVectorMatchesEngine(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	at := dataStart.Add(5 * time.Minute)

	qry, err := a.engine.NewInstantQuery(context.Background(), a.db, nil, `up`, at)
	require.NoError(t, err)
	res := qry.Exec(context.Background())
	require.NoError(t, res.Err)
	vec, err := res.Vector()
	require.NoError(t, err)
	require.Len(t, vec, 2)
	var want []any
	for _, s := range vec {
		want = append(want, map[string]any{"metric": metricJSON(s.Metric), "value": point(s.T, s.F)})
	}
	qry.Close()

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		for _, ts := range []string{unixSeconds(at), at.Format(time.RFC3339), at.Format(time.RFC3339Nano)} {
			t.Run(method+" "+ts, func(t *testing.T) {
				status, resp := a.call(t, method, "/query", url.Values{"query": {"up"}, "time": {ts}})
				require.Equal(t, http.StatusOK, status, resp.Error)
				require.Equal(t, "success", resp.Status)
				var data struct {
					ResultType string `json:"resultType"`
					Result     []any  `json:"result"`
				}
				require.NoError(t, json.Unmarshal(resp.Data, &data))
				require.Equal(t, "vector", data.ResultType)
				require.Equal(t, want, data.Result)
			})
		}
	}
}

func TestQuery_RendersPointsAsUnixSecondsAndValueStrings(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	at := dataStart.Add(30*time.Second + 500*time.Millisecond)

	status, resp := a.call(t, http.MethodGet, "/query", url.Values{"query": {`http_requests_total{code="200"}`}, "time": {unixSeconds(at)}})
	require.Equal(t, http.StatusOK, status, resp.Error)
	require.JSONEq(t, `{"resultType":"vector","result":[
		{"metric":{"__name__":"http_requests_total","code":"200","job":"api"},"value":[1700000030.5,"20"]}
	]}`, string(resp.Data))
}

func TestQuery_ScalarAndStringResults(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, tc := range []struct {
		query string
		want  string
	}{
		{query: `1.5`, want: `{"resultType":"scalar","result":[1700000600,"1.5"]}`},
		{query: `"hello"`, want: `{"resultType":"string","result":[1700000600,"hello"]}`},
		{query: `+Inf`, want: `{"resultType":"scalar","result":[1700000600,"+Inf"]}`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			status, resp := a.call(t, http.MethodGet, "/query", url.Values{"query": {tc.query}})
			require.Equal(t, http.StatusOK, status, resp.Error)
			require.JSONEq(t, tc.want, string(resp.Data))
		})
	}
}

func TestQueryRange_MatrixMatchesEngine(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	start, end, stepSize := dataStart.Add(time.Minute), dataStart.Add(4*time.Minute), 30*time.Second

	qry, err := a.engine.NewRangeQuery(context.Background(), a.db, nil, `rate(http_requests_total[1m]) or up`, start, end, stepSize)
	require.NoError(t, err)
	res := qry.Exec(context.Background())
	require.NoError(t, res.Err)
	mat, err := res.Matrix()
	require.NoError(t, err)
	require.Len(t, mat, 3)
	var want []any
	for _, s := range mat {
		var values []any
		for _, p := range s.Floats {
			values = append(values, point(p.T, p.F))
		}
		require.Len(t, values, 7)
		want = append(want, map[string]any{"metric": metricJSON(s.Metric), "values": values})
	}
	qry.Close()

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			status, resp := a.call(t, method, "/query_range", url.Values{
				"query": {`rate(http_requests_total[1m]) or up`},
				"start": {start.Format(time.RFC3339)},
				"end":   {unixSeconds(end)},
				"step":  {"30s"},
			})
			require.Equal(t, http.StatusOK, status, resp.Error)
			require.Equal(t, "success", resp.Status)
			var data struct {
				ResultType string `json:"resultType"`
				Result     []any  `json:"result"`
			}
			require.NoError(t, json.Unmarshal(resp.Data, &data))
			require.Equal(t, "matrix", data.ResultType)
			require.Equal(t, want, data.Result)
		})
	}
}

func TestQuery_EmptyResultIsEmptyList(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, tc := range []struct {
		path   string
		params url.Values
		want   string
	}{
		{path: "/query", params: url.Values{"query": {"no_such_metric"}}, want: `{"resultType":"vector","result":[]}`},
		{path: "/query_range", params: url.Values{"query": {"no_such_metric"}, "start": {"0"}, "end": {"60"}, "step": {"15"}}, want: `{"resultType":"matrix","result":[]}`},
		{path: "/query", params: url.Values{"query": {"up[1m]"}, "time": {"100"}}, want: `{"resultType":"matrix","result":[]}`},
	} {
		t.Run(tc.path+" "+tc.params.Get("query"), func(t *testing.T) {
			status, resp := a.call(t, http.MethodGet, tc.path, tc.params)
			require.Equal(t, http.StatusOK, status, resp.Error)
			require.JSONEq(t, tc.want, string(resp.Data))
		})
	}
}

func TestQuery_Errors(t *testing.T) {
	storageErr := errors.New("ingester-3 is unreachable")
	lowSamples := testEngineConfig()
	lowSamples.MaxSamples = 10
	tinyTimeout := testEngineConfig()
	tinyTimeout.Timeout = time.Nanosecond
	rangeParams := func(start, end, step string) url.Values {
		return url.Values{"query": {"up"}, "start": {start}, "end": {end}, "step": {step}}
	}

	for _, tc := range []struct {
		name      string
		cfg       *querier.Config
		queryable storage.Queryable
		method    string
		path      string
		params    url.Values
		status    int
		errorType string
		errorHas  string
	}{
		{name: "bad query", path: "/query", params: url.Values{"query": {"up{"}}, status: 400, errorType: "bad_data", errorHas: `invalid parameter "query"`},
		{name: "empty query", path: "/query", params: url.Values{}, status: 400, errorType: "bad_data", errorHas: `invalid parameter "query"`},
		{name: "bad range query", path: "/query_range", params: url.Values{"query": {"sum("}, "start": {"0"}, "end": {"60"}, "step": {"15"}}, status: 400, errorType: "bad_data", errorHas: `invalid parameter "query"`},
		{name: "bad time", path: "/query", params: url.Values{"query": {"up"}, "time": {"yesterday"}}, status: 400, errorType: "bad_data", errorHas: `invalid parameter "time"`},
		{name: "bad start", path: "/query_range", params: rangeParams("x", "60", "15"), status: 400, errorType: "bad_data", errorHas: `invalid parameter "start"`},
		{name: "bad end", path: "/query_range", params: rangeParams("0", "2023-13-01T00:00:00Z", "15"), status: 400, errorType: "bad_data", errorHas: `invalid parameter "end"`},
		{name: "end before start", path: "/query_range", params: rangeParams("60", "0", "15"), status: 400, errorType: "bad_data", errorHas: "end timestamp must not be before start time"},
		{name: "bad step", path: "/query_range", params: rangeParams("0", "60", "fast"), status: 400, errorType: "bad_data", errorHas: `invalid parameter "step"`},
		{name: "zero step", path: "/query_range", params: rangeParams("0", "60", "0"), status: 400, errorType: "bad_data", errorHas: "zero or negative"},
		{name: "negative step", path: "/query_range", params: rangeParams("0", "60", "-15"), status: 400, errorType: "bad_data", errorHas: "zero or negative"},
		{name: "too many points", path: "/query_range", params: rangeParams("0", "11001", "1"), status: 400, errorType: "bad_data", errorHas: "11,000 points"},
		{name: "bad timeout", path: "/query", params: url.Values{"query": {"up"}, "timeout": {"1ns"}}, status: 400, errorType: "bad_data", errorHas: `invalid parameter "timeout"`},
		{name: "bad lookback delta", path: "/query", params: url.Values{"query": {"up"}, "lookback_delta": {"x"}}, status: 400, errorType: "bad_data", errorHas: `invalid parameter "lookback_delta"`},
		{name: "too many samples", cfg: &lowSamples, path: "/query", params: url.Values{"query": {"up[10m]"}}, status: 422, errorType: "execution", errorHas: "too many samples"},
		{name: "too many samples in range query", cfg: &lowSamples, path: "/query_range", params: url.Values{"query": {"up"}, "start": {unixSeconds(dataStart)}, "end": {unixSeconds(dataEnd)}, "step": {"15"}}, status: 422, errorType: "execution", errorHas: "too many samples"},
		{name: "timeout parameter", path: "/query", params: url.Values{"query": {"up"}, "timeout": {"1e-9"}}, status: 503, errorType: "timeout"},
		{name: "timeout parameter on range query", path: "/query_range", params: url.Values{"query": {"up"}, "start": {"0"}, "end": {"60"}, "step": {"15"}, "timeout": {"1e-9"}}, status: 503, errorType: "timeout"},
		{name: "engine timeout", cfg: &tinyTimeout, path: "/query", params: url.Values{"query": {"up"}}, status: 503, errorType: "timeout"},
		{name: "storage error", queryable: errQueryable{storageErr}, path: "/query", params: url.Values{"query": {"up"}}, status: 500, errorType: "internal", errorHas: storageErr.Error()},
		{name: "storage error in range query", queryable: errQueryable{storageErr}, path: "/query_range", params: rangeParams("0", "60", "15"), status: 500, errorType: "internal", errorHas: storageErr.Error()},
		{name: "storage error in series", queryable: errQueryable{storageErr}, path: "/series", params: url.Values{"match[]": {"up"}}, status: 500, errorType: "internal", errorHas: storageErr.Error()},
		{name: "storage error in labels", queryable: errQueryable{storageErr}, path: "/labels", status: 500, errorType: "internal", errorHas: storageErr.Error()},
		{name: "storage error in label values", queryable: errQueryable{storageErr}, path: "/label/job/values", status: 500, errorType: "internal", errorHas: storageErr.Error()},
		{name: "PUT", method: http.MethodPut, path: "/query", params: url.Values{"query": {"up"}}, status: 405, errorType: "bad_data"},
		{name: "DELETE", method: http.MethodDelete, path: "/series", params: url.Values{"match[]": {"up"}}, status: 405, errorType: "bad_data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testEngineConfig()
			if tc.cfg != nil {
				cfg = *tc.cfg
			}
			a := newTestAPI(t, cfg, tc.queryable)
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			status, resp := a.call(t, method, tc.path, tc.params)
			require.Equal(t, tc.status, status, resp.Error)
			require.Equal(t, "error", resp.Status)
			require.Equal(t, tc.errorType, resp.ErrorType)
			require.Contains(t, resp.Error, tc.errorHas)
		})
	}
}

// errQueryable fails every read the way an unreachable ingester does.
type errQueryable struct{ err error }

func (q errQueryable) Querier(int64, int64) (storage.Querier, error) { return errQuerier(q), nil }

type errQuerier struct{ err error }

func (q errQuerier) Select(context.Context, bool, *storage.SelectHints, ...*labels.Matcher) storage.SeriesSet {
	return storage.ErrSeriesSet(q.err)
}

func (q errQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, q.err
}

func (q errQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, q.err
}

func (q errQuerier) Close() error { return nil }

func TestSeries(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	upA := map[string]string{"__name__": "up", "job": "api", "instance": "a"}
	upB := map[string]string{"__name__": "up", "job": "api", "instance": "b"}
	requests := map[string]string{"__name__": "http_requests_total", "job": "api", "code": "200"}

	for _, tc := range []struct {
		name     string
		params   url.Values
		want     []map[string]string
		warnings bool
	}{
		{name: "one selector", params: url.Values{"match[]": {"up"}}, want: []map[string]string{upA, upB}},
		{name: "selectors are united", params: url.Values{"match[]": {`up{instance="b"}`, "http_requests_total"}}, want: []map[string]string{requests, upB}},
		{name: "overlapping selectors give each series once", params: url.Values{"match[]": {`up`, `{job="api"}`}}, want: []map[string]string{requests, upA, upB}},
		{name: "range with the data", params: url.Values{"match[]": {"up"}, "start": {unixSeconds(dataStart)}, "end": {dataEnd.Format(time.RFC3339)}}, want: []map[string]string{upA, upB}},
		{name: "range before the data", params: url.Values{"match[]": {"up"}, "start": {"0"}, "end": {"100"}}, want: []map[string]string{}},
		{name: "limit truncates with a warning", params: url.Values{"match[]": {`{job="api"}`}, "limit": {"2"}}, want: []map[string]string{requests, upA}, warnings: true},
		{name: "limit equal to the count has no warning", params: url.Values{"match[]": {`{job="api"}`}, "limit": {"3"}}, want: []map[string]string{requests, upA, upB}},
		{name: "no match", params: url.Values{"match[]": {"nothing"}}, want: []map[string]string{}},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				status, resp := a.call(t, method, "/series", tc.params)
				require.Equal(t, http.StatusOK, status, resp.Error)
				var got []map[string]string
				require.NoError(t, json.Unmarshal(resp.Data, &got))
				require.Equal(t, tc.want, got)
				if tc.warnings {
					require.Equal(t, []string{"results truncated due to limit"}, resp.Warnings)
				} else {
					require.Empty(t, resp.Warnings)
				}
			})
		}
	}
}

func TestSeries_BadParameters(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, tc := range []struct {
		name     string
		params   url.Values
		errorHas string
	}{
		{name: "no match[]", params: url.Values{}, errorHas: "no match[] parameter provided"},
		{name: "bad selector", params: url.Values{"match[]": {"up{"}}, errorHas: `invalid parameter "match[]"`},
		{name: "bad start", params: url.Values{"match[]": {"up"}, "start": {"x"}}, errorHas: `invalid parameter "start"`},
		{name: "bad end", params: url.Values{"match[]": {"up"}, "end": {"x"}}, errorHas: `invalid parameter "end"`},
		{name: "end before start", params: url.Values{"match[]": {"up"}, "start": {"100"}, "end": {"10"}}, errorHas: "end timestamp must not be before start time"},
		{name: "bad limit", params: url.Values{"match[]": {"up"}, "limit": {"many"}}, errorHas: `invalid parameter "limit"`},
		{name: "negative limit", params: url.Values{"match[]": {"up"}, "limit": {"-1"}}, errorHas: "limit must be non-negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := a.call(t, http.MethodGet, "/series", tc.params)
			require.Equal(t, http.StatusBadRequest, status)
			require.Equal(t, "bad_data", resp.ErrorType)
			require.Contains(t, resp.Error, tc.errorHas)
		})
	}
}

func TestLabels(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, tc := range []struct {
		name     string
		path     string
		params   url.Values
		want     []string
		warnings bool
	}{
		{name: "all names", path: "/labels", want: []string{"__name__", "code", "instance", "job"}},
		{name: "names of matching series", path: "/labels", params: url.Values{"match[]": {"up"}}, want: []string{"__name__", "instance", "job"}},
		{name: "names of several selectors are united", path: "/labels", params: url.Values{"match[]": {`up`, `http_requests_total`}}, want: []string{"__name__", "code", "instance", "job"}},
		{name: "names outside the range", path: "/labels", params: url.Values{"start": {"0"}, "end": {"100"}}, want: []string{}},
		{name: "names limited with a warning", path: "/labels", params: url.Values{"limit": {"2"}}, want: []string{"__name__", "code"}, warnings: true},
		{name: "all values", path: "/label/__name__/values", want: []string{"http_requests_total", "up"}},
		{name: "values of matching series", path: "/label/instance/values", params: url.Values{"match[]": {`up{instance!="a"}`}}, want: []string{"b"}},
		{name: "values of several selectors are united", path: "/label/__name__/values", params: url.Values{"match[]": {`up`, `http_requests_total`}}, want: []string{"http_requests_total", "up"}},
		{name: "values limited with a warning", path: "/label/instance/values", params: url.Values{"limit": {"1"}}, want: []string{"a"}, warnings: true},
		{name: "values of an unknown label", path: "/label/nope/values", want: []string{}},
		{name: "values of an escaped UTF-8 name", path: "/label/U__job/values", want: []string{"api"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := a.call(t, http.MethodGet, tc.path, tc.params)
			require.Equal(t, http.StatusOK, status, resp.Error)
			var got []string
			require.NoError(t, json.Unmarshal(resp.Data, &got))
			require.Equal(t, tc.want, got)
			if tc.warnings {
				require.Equal(t, []string{"results truncated due to limit"}, resp.Warnings)
			} else {
				require.Empty(t, resp.Warnings)
			}
		})
	}
}

func TestLabelValues_RejectsInvalidLabelName(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, path := range []string{"/label/%FF/values", "/label/U__/values"} {
		t.Run(path, func(t *testing.T) {
			status, resp := a.call(t, http.MethodGet, path, nil)
			require.Equal(t, http.StatusBadRequest, status)
			require.Equal(t, "bad_data", resp.ErrorType)
			require.Contains(t, resp.Error, "invalid label name")
		})
	}
}

func TestMetadata(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	a.metadata.result = map[string][]querier.MetricMetadata{
		"up": {{Type: "gauge", Help: "Whether the target is up.", Unit: ""}},
	}
	for _, tc := range []struct {
		name                  string
		params                url.Values
		metric                string
		limit, limitPerMetric int
	}{
		{name: "defaults", params: url.Values{}},
		{name: "metric", params: url.Values{"metric": {"up"}}, metric: "up"},
		{name: "limits", params: url.Values{"limit": {"5"}, "limit_per_metric": {"1"}}, limit: 5, limitPerMetric: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := a.call(t, http.MethodGet, "/metadata", tc.params)
			require.Equal(t, http.StatusOK, status, resp.Error)
			require.JSONEq(t, `{"up":[{"type":"gauge","help":"Whether the target is up.","unit":""}]}`, string(resp.Data))
			require.Equal(t, tc.metric, a.metadata.metric)
			require.Equal(t, tc.limit, a.metadata.limit)
			require.Equal(t, tc.limitPerMetric, a.metadata.limitPerMetric)
		})
	}

	t.Run("bad limits", func(t *testing.T) {
		for _, params := range []url.Values{{"limit": {"x"}}, {"limit_per_metric": {"x"}}} {
			status, resp := a.call(t, http.MethodGet, "/metadata", params)
			require.Equal(t, http.StatusBadRequest, status)
			require.Equal(t, "bad_data", resp.ErrorType)
		}
	})

	t.Run("source error", func(t *testing.T) {
		a.metadata.err = errors.New("ingesters unreachable")
		status, resp := a.call(t, http.MethodGet, "/metadata", nil)
		require.Equal(t, http.StatusInternalServerError, status)
		require.Equal(t, "internal", resp.ErrorType)
		require.Contains(t, resp.Error, "ingesters unreachable")
	})
}

func TestFormatQuery(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, tc := range []struct {
		query string
		want  string
	}{
		{query: `sum   by(job)(rate( http_requests_total{code="200"}[5m] ))`, want: `sum by (job) (rate(http_requests_total{code="200"}[5m]))`},
		{
			// Longer than a line: Prometheus' pretty-printer breaks it at the binary operator.
			query: `sum by(job, instance)(rate(http_requests_total{code="200", job="api"}[5m]))  /  on(job, instance) group_left   sum by(job, instance)(up{job="api"})`,
			want: "  sum by (job, instance) (rate(http_requests_total{code=\"200\",job=\"api\"}[5m]))\n" +
				"/ on (job, instance) group_left ()\n" +
				"  sum by (job, instance) (up{job=\"api\"})",
		},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(method, func(t *testing.T) {
				status, resp := a.call(t, method, "/format_query", url.Values{"query": {tc.query}})
				require.Equal(t, http.StatusOK, status, resp.Error)
				var got string
				require.NoError(t, json.Unmarshal(resp.Data, &got))
				require.Equal(t, tc.want, got)
			})
		}
	}

	status, resp := a.call(t, http.MethodGet, "/format_query", url.Values{"query": {"sum("}})
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "bad_data", resp.ErrorType)
}

func TestBuildInfo_ReportsStampedValues(t *testing.T) {
	// What `make build` stamps with -ldflags -X.
	v, r, b, d := version.Version, version.Revision, version.Branch, version.BuildDate
	t.Cleanup(func() { version.Version, version.Revision, version.Branch, version.BuildDate = v, r, b, d })
	version.Version, version.Revision, version.Branch, version.BuildDate = "v1.2.3", "0123abcd", "release-1.2", "2026-12-02T10:00:00Z"

	a := newTestAPI(t, testEngineConfig(), nil)
	status, resp := a.call(t, http.MethodGet, "/status/buildinfo", nil)
	require.Equal(t, http.StatusOK, status, resp.Error)
	var info map[string]any
	require.NoError(t, json.Unmarshal(resp.Data, &info))
	// Grafana takes a data source whose build information has features for a Mimir: it then lists and
	// edits rules through /prometheus/config/v1/rules.
	require.Equal(t, "Strata", info["application"])
	require.Equal(t, map[string]any{"ruler_config_api": "true", "alertmanager_config_api": "true", "federated_rules": "false"}, info["features"])
	require.Equal(t, "v1.2.3", info["version"])
	require.Equal(t, "0123abcd", info["revision"])
	require.Equal(t, "release-1.2", info["branch"])
	require.Equal(t, "2026-12-02T10:00:00Z", info["buildDate"])
	require.True(t, strings.HasPrefix(info["goVersion"].(string), "go"), info["goVersion"])
	require.Contains(t, info, "buildUser")

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(BuildInfoCollector())
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP strata_build_info Build information of this Strata binary; the value is always 1.
# TYPE strata_build_info gauge
strata_build_info{branch="release-1.2",goversion="`+runtime.Version()+`",revision="0123abcd",version="v1.2.3"} 1
`), "strata_build_info"))
}

// TestQueryRange_ConcurrentQueriesKeepTheirOwnResults runs different range queries at once: each answer
// must equal the one the same query gets alone. (The engine recycles a result's point slices when the
// query is closed; an answer encoded after that showed other queries' points.)
func TestQueryRange_ConcurrentQueriesKeepTheirOwnResults(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	type job struct{ query, step string }
	jobs := []job{
		{`rate(http_requests_total[1m])`, "15s"},
		{`sum(rate(http_requests_total[1m]))`, "30s"},
		{`up`, "10s"},
		{`http_requests_total`, "45s"},
	}
	params := func(j job) url.Values {
		return url.Values{"query": {j.query}, "start": {unixSeconds(dataStart)}, "end": {unixSeconds(dataEnd)}, "step": {j.step}}
	}
	want := map[job]string{}
	for _, j := range jobs {
		status, resp := a.call(t, http.MethodPost, "/query_range", params(j))
		require.Equal(t, http.StatusOK, status, resp.Error)
		want[j] = string(resp.Data)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 400)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				j := jobs[(w+i)%len(jobs)]
				status, resp := a.call(t, http.MethodPost, "/query_range", params(j))
				if status != http.StatusOK || string(resp.Data) != want[j] {
					errs <- j.query
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	var wrong []string
	for q := range errs {
		wrong = append(wrong, q)
	}
	require.Empty(t, wrong, "answers that differed from the query run alone")
}
