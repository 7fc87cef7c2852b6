package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// QueryExemplars makes fakeMetadata an IngesterSource without exemplars.
func (f *fakeMetadata) QueryExemplars(context.Context, int64, int64, [][]*labels.Matcher, querier.ExemplarLimits) ([]exemplar.QueryResult, error) {
	return nil, nil
}

// exemplarCall is one QueryExemplars call as the fake received it.
type exemplarCall struct {
	tenant     string
	start, end int64
	sets       []string
	limits     querier.ExemplarLimits
}

// fakeExemplars answers QueryExemplars with each tenant's results, or err.
type fakeExemplars struct {
	*fakeMetadata
	byTenant map[string][]exemplar.QueryResult
	err      error

	mtx   sync.Mutex
	calls []exemplarCall
}

func (f *fakeExemplars) QueryExemplars(ctx context.Context, start, end int64, sets [][]*labels.Matcher, limits querier.ExemplarLimits) ([]exemplar.QueryResult, error) {
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	call := exemplarCall{tenant: id, start: start, end: end, limits: limits}
	for _, ms := range sets {
		parts := make([]string, 0, len(ms))
		for _, m := range ms {
			parts = append(parts, m.String())
		}
		call.sets = append(call.sets, "{"+strings.Join(parts, ",")+"}")
	}
	f.mtx.Lock()
	f.calls = append(f.calls, call)
	f.mtx.Unlock()
	return f.byTenant[id], f.err
}

func (f *fakeExemplars) lastCalls() []exemplarCall {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

type exemplarAPI struct {
	*testAPI
	src *fakeExemplars
}

// newExemplarAPI serves the API over src with limits, tenants taken from X-Scope-OrgID (federated ones
// too), at now = dataEnd.
func newExemplarAPI(t *testing.T, src *fakeExemplars, limits validation.Limits) *exemplarAPI {
	t.Helper()
	cfg := testEngineConfig()
	if src.fakeMetadata == nil {
		src.fakeMetadata = &fakeMetadata{}
	}
	a := NewPrometheusAPI(querier.NewEngine(cfg, nil, slog.New(slog.DiscardHandler)), openTestDB(t), src, cfg, validation.NewOverrides(limits, nil), slog.New(slog.DiscardHandler))
	a.now = func() time.Time { return dataEnd }
	mux := http.NewServeMux()
	a.Register(mux, "/prometheus/api/v1", FederatedTenantMiddleware(true))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &exemplarAPI{testAPI: &testAPI{api: a, url: srv.URL + "/prometheus/api/v1"}, src: src}
}

// get asks query_exemplars as tenantID ("" sends no X-Scope-OrgID) and returns the status and body.
func (a *exemplarAPI) get(t *testing.T, method, tenantID string, params url.Values) (int, string) {
	t.Helper()
	var (
		req *http.Request
		err error
	)
	if method == http.MethodPost {
		req, err = http.NewRequest(method, a.url+"/query_exemplars", strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, err = http.NewRequest(method, a.url+"/query_exemplars?"+params.Encode(), nil)
	}
	require.NoError(t, err)
	if tenantID != "" {
		req.Header.Set(tenant.OrgIDHeader, tenantID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// The answer is, to the value, the example of Prometheus' API documentation
// (docs/querying/api.md, "Querying exemplars"): series labels, then each exemplar's labels, its value
// as a string and its timestamp in seconds.
func TestQueryExemplars_AnswersPrometheusShape(t *testing.T) {
	src := &fakeExemplars{byTenant: map[string][]exemplar.QueryResult{"team-a": {
		{
			SeriesLabels: labels.FromStrings("__name__", "test_exemplar_metric_total", "instance", "localhost:8090", "job", "prometheus", "service", "bar"),
			Exemplars: []exemplar.Exemplar{
				{Labels: labels.FromStrings("trace_id", "EpTxMJ40fUus7aGY"), Value: 6, Ts: 1600096945479, HasTs: true},
				{Labels: labels.FromStrings("trace_id", "Olp9XHlq763ccsfa"), Value: 19, Ts: 1600096955479, HasTs: true},
			},
		},
		{
			SeriesLabels: labels.FromStrings("__name__", "test_exemplar_metric_total", "instance", "localhost:8090", "job", "prometheus", "service", "foo"),
			Exemplars: []exemplar.Exemplar{
				{Labels: labels.FromStrings("trace_id", "TE6xMJ40fUus7a2Y"), Value: 5.2, Ts: 1600096945479, HasTs: true},
			},
		},
	}}}
	a := newExemplarAPI(t, src, validation.DefaultLimits())
	params := url.Values{"query": {"test_exemplar_metric_total"}, "start": {"2020-09-14T15:22:25.479Z"}, "end": {"2020-09-14T15:23:25.479Z"}}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		code, body := a.get(t, method, "team-a", params)
		require.Equal(t, http.StatusOK, code, body)
		require.JSONEq(t, `{
			"status": "success",
			"data": [
				{
					"seriesLabels": {"__name__": "test_exemplar_metric_total", "instance": "localhost:8090", "job": "prometheus", "service": "bar"},
					"exemplars": [
						{"labels": {"trace_id": "EpTxMJ40fUus7aGY"}, "value": "6", "timestamp": 1600096945.479},
						{"labels": {"trace_id": "Olp9XHlq763ccsfa"}, "value": "19", "timestamp": 1600096955.479}
					]
				},
				{
					"seriesLabels": {"__name__": "test_exemplar_metric_total", "instance": "localhost:8090", "job": "prometheus", "service": "foo"},
					"exemplars": [
						{"labels": {"trace_id": "TE6xMJ40fUus7a2Y"}, "value": "5.2", "timestamp": 1600096945.479}
					]
				}
			]
		}`, body)
	}
	calls := src.lastCalls()
	require.Len(t, calls, 2)
	require.Equal(t, exemplarCall{tenant: "team-a", start: 1600096945479, end: 1600097005479, sets: []string{`{__name__="test_exemplar_metric_total"}`}, limits: querier.ExemplarLimits{MaxSeries: 200_000, MaxExemplars: 1_000_000}}, calls[0])

	// Another tenant has none: an empty list, as Prometheus answers with no exemplars.
	code, body := a.get(t, http.MethodGet, "team-b", params)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"success","data":[]}`, body)
}

// Every selector of the query is one matcher set, as Prometheus' parser.ExtractSelectors finds them; a
// query without selectors asks nothing.
func TestQueryExemplars_SelectorsOfTheQuery(t *testing.T) {
	src := &fakeExemplars{}
	a := newExemplarAPI(t, src, validation.DefaultLimits())
	for _, tc := range []struct {
		query string
		sets  []string
	}{
		{query: `histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket{job="api"}[5m]))) / on() group_left up{job=~"a.+"}`,
			sets: []string{`{job="api",__name__="http_request_duration_seconds_bucket"}`, `{job=~"a.+",__name__="up"}`}},
		{query: `{__name__=~".+"}`, sets: []string{`{__name__=~".+"}`}},
		// A repeated selector is read once.
		{query: `up or up or rate(up[5m]) or up{job="a"}`, sets: []string{`{__name__="up"}`, `{job="a",__name__="up"}`}},
		{query: `1 + 1`},
		{query: `vector(time())`},
	} {
		code, body := a.get(t, http.MethodGet, "team-a", url.Values{"query": {tc.query}})
		require.Equal(t, http.StatusOK, code, body)
		require.JSONEq(t, `{"status":"success","data":[]}`, body)
		calls := src.lastCalls()
		if tc.sets == nil {
			require.Empty(t, calls, tc.query)
			continue
		}
		require.Len(t, calls, 1)
		require.Equal(t, tc.sets, calls[0].sets, tc.query)
		// No start or end: Prometheus' widest range.
		require.Equal(t, timestamp(minTime), calls[0].start)
		require.Equal(t, timestamp(maxTime), calls[0].end)
	}
}

// A match-all selector reads the tenant's exemplars with its max_fetched_series_per_query and
// max_fetched_exemplars_per_query; a source over
// it fails the request with 422 naming the limit, as any query; max_query_lookback cuts the range.
func TestQueryExemplars_TenantLimits(t *testing.T) {
	limits := validation.DefaultLimits()
	limits.MaxFetchedSeriesPerQuery = 7
	limits.MaxFetchedExemplarsPerQuery = 70
	limits.MaxQueryLookback = model.Duration(time.Hour)
	limits.MaxQueryExpressionSizeBytes = 1000
	src := &fakeExemplars{}
	a := newExemplarAPI(t, src, limits)

	code, _ := a.get(t, http.MethodGet, "team-a", url.Values{"query": {`{__name__=~".+"}`}, "start": {"0"}})
	require.Equal(t, http.StatusOK, code)
	calls := src.lastCalls()
	require.Len(t, calls, 1)
	require.Equal(t, querier.ExemplarLimits{MaxSeries: 7, MaxExemplars: 70}, calls[0].limits)
	require.Equal(t, dataEnd.Add(-time.Hour).UnixMilli(), calls[0].start, "max_query_lookback")

	// A range wholly older than the lookback reads nothing.
	code, body := a.get(t, http.MethodGet, "team-a", url.Values{"query": {"up"}, "start": {"0"}, "end": {"10"}})
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"success","data":[]}`, body)
	require.Empty(t, src.lastCalls())

	src.err = seriespb.SeriesLimitError(7)
	code, body = a.get(t, http.MethodGet, "team-a", url.Values{"query": {`{__name__=~".+"}`}})
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Contains(t, body, "max_fetched_series_per_query")
	src.lastCalls()

	// A query of thousands of selectors is bounded by the expression size limit before any is read.
	huge := strings.Repeat(`up{job="x"} or `, 200) + "up"
	code, body = a.get(t, http.MethodPost, "team-a", url.Values{"query": {huge}})
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Contains(t, body, "max_query_expression_size_bytes")
	require.Empty(t, src.lastCalls())

	// More distinct selectors than an exemplar query may have: refused before any is read, whatever
	// the expression size limit allows.
	var many strings.Builder
	many.WriteString("vector(0)")
	for i := range querier.MaxExemplarSelectors + 1 {
		fmt.Fprintf(&many, " or clamp_min(up{i=\"%d\"}, 0)", i)
	}
	limits.MaxQueryExpressionSizeBytes = 0
	a = newExemplarAPI(t, src, limits)
	code, body = a.get(t, http.MethodPost, "team-a", url.Values{"query": {many.String()}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "101 distinct selectors, more than the 100")
	require.Empty(t, src.lastCalls())

	// Ingesters out of reach: 5xx, for the client to retry.
	src.err = status.Error(codes.Unavailable, "too many ingesters failed")
	code, _ = a.get(t, http.MethodGet, "team-a", url.Values{"query": {"up"}})
	require.GreaterOrEqual(t, code, 500)
}

func TestQueryExemplars_HostileRequests(t *testing.T) {
	a := newExemplarAPI(t, &fakeExemplars{}, validation.DefaultLimits())
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		code, body := a.get(t, method, "team-a", url.Values{"query": {"up"}})
		require.Equal(t, http.StatusMethodNotAllowed, code, method)
		require.Contains(t, body, "only GET and POST")
	}
	code, body := a.get(t, http.MethodGet, "", url.Values{"query": {"up"}})
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, body, "X-Scope-OrgID")
	code, _ = a.get(t, http.MethodGet, "../etc", url.Values{"query": {"up"}})
	require.Equal(t, http.StatusBadRequest, code)
	// A form body past the server's bound (Go's ParseForm reads at most 10 MB) is refused.
	code, _ = a.get(t, http.MethodPost, "team-a", url.Values{"query": {strings.Repeat("a", 11<<20)}})
	require.Equal(t, http.StatusBadRequest, code)
	// A query string full of garbage.
	code, body = a.get(t, http.MethodGet, "team-a", url.Values{"query": {"up{job=~\"(\"}"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, `invalid parameter \"query\"`)
}

func TestQueryExemplars_BadParameters(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for _, tc := range []struct {
		name     string
		params   url.Values
		errorHas string
	}{
		{name: "no query", params: url.Values{}, errorHas: `invalid parameter "query"`},
		{name: "bad query", params: url.Values{"query": {"up{"}}, errorHas: `invalid parameter "query"`},
		{name: "bad start", params: url.Values{"query": {"up"}, "start": {"yesterday"}}, errorHas: `invalid parameter "start"`},
		{name: "bad end", params: url.Values{"query": {"up"}, "end": {"NaN"}}, errorHas: `invalid parameter "end"`},
		{name: "end before start", params: url.Values{"query": {"up"}, "start": {"100"}, "end": {"10"}}, errorHas: "end timestamp must not be before start time"},
		{name: "bad timeout", params: url.Values{"query": {"up"}, "timeout": {"soon"}}, errorHas: `invalid parameter "timeout"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := a.call(t, http.MethodGet, "/query_exemplars", tc.params)
			require.Equal(t, http.StatusBadRequest, status)
			require.Equal(t, "error", resp.Status)
			require.Equal(t, "bad_data", resp.ErrorType)
			require.Contains(t, resp.Error, tc.errorHas)
		})
	}
}

// A federated read asks each tenant on its own, with its own limits, and labels its series with
// __tenant_id__; a selector's __tenant_id__ matchers choose the tenants.
func TestQueryExemplars_Federated(t *testing.T) {
	series := func(name string) []exemplar.QueryResult {
		return []exemplar.QueryResult{{SeriesLabels: labels.FromStrings("__name__", name), Exemplars: []exemplar.Exemplar{{Labels: labels.FromStrings("trace_id", name), Value: 1, Ts: 1000, HasTs: true}}}}
	}
	src := &fakeExemplars{byTenant: map[string][]exemplar.QueryResult{"team-a": series("x"), "team-b": series("x")}}
	a := newExemplarAPI(t, src, validation.DefaultLimits())
	code, body := a.get(t, http.MethodGet, "team-b|team-a", url.Values{"query": {"x"}})
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"status":"success","data":[
		{"seriesLabels":{"__name__":"x","__tenant_id__":"team-a"},"exemplars":[{"labels":{"trace_id":"x"},"value":"1","timestamp":1}]},
		{"seriesLabels":{"__name__":"x","__tenant_id__":"team-b"},"exemplars":[{"labels":{"trace_id":"x"},"value":"1","timestamp":1}]}
	]}`, body)
	require.Len(t, src.lastCalls(), 2)

	code, _ = a.get(t, http.MethodGet, "team-b|team-a", url.Values{"query": {`{__tenant_id__="team-b"}`}})
	require.Equal(t, http.StatusOK, code)
	calls := src.lastCalls()
	require.Len(t, calls, 1)
	require.Equal(t, "team-b", calls[0].tenant)
	require.Equal(t, []string{`{__name__=~".+"}`}, calls[0].sets)
}
