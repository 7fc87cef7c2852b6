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
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// fakeCardinality records what each request asked for and answers err, or canned results.
type fakeCardinality struct {
	err error

	tenant   string
	limit    int
	names    []string
	matchers []*labels.Matcher
	method   querier.CountMethod
}

func (f *fakeCardinality) record(ctx context.Context, matchers []*labels.Matcher, method querier.CountMethod, limit int) {
	f.tenant, _ = tenant.FromContext(ctx)
	f.matchers, f.method, f.limit = matchers, method, limit
}

func (f *fakeCardinality) TSDBStatus(ctx context.Context, limit int) (*querier.TSDBStatus, error) {
	f.record(ctx, nil, "", limit)
	return &querier.TSDBStatus{
		HeadStats:                   querier.HeadStats{NumSeries: 3, NumLabelPairs: 5, ChunkCount: 6, MinTime: 1000, MaxTime: 2000},
		SeriesCountByMetricName:     []querier.TSDBStat{{Name: "up", Value: 2}},
		LabelValueCountByLabelName:  []querier.TSDBStat{{Name: "instance", Value: 2}},
		MemoryInBytesByLabelName:    []querier.TSDBStat{{Name: "instance", Value: 40}},
		SeriesCountByLabelValuePair: []querier.TSDBStat{{Name: "job=api", Value: 3}},
	}, f.err
}

func (f *fakeCardinality) LabelNames(ctx context.Context, matchers []*labels.Matcher, method querier.CountMethod, limit int) (*querier.LabelNamesCardinality, error) {
	f.record(ctx, matchers, method, limit)
	return &querier.LabelNamesCardinality{LabelValuesCountTotal: 3, LabelNamesCount: 2, Cardinality: []querier.LabelNameCardinality{
		{LabelName: "instance", LabelValuesCount: 2}, {LabelName: "job", LabelValuesCount: 1},
	}}, f.err
}

func (f *fakeCardinality) LabelValues(ctx context.Context, names []string, matchers []*labels.Matcher, method querier.CountMethod, limit int) (*querier.LabelValuesCardinality, error) {
	f.record(ctx, matchers, method, limit)
	f.names = names
	return &querier.LabelValuesCardinality{SeriesCountTotal: 3, Labels: []querier.LabelValuesOfLabelName{
		{LabelName: "job", LabelValuesCount: 1, SeriesCount: 3, Cardinality: []querier.LabelValueCardinality{{LabelValue: "api", SeriesCount: 3}}},
	}}, f.err
}

func (f *fakeCardinality) ActiveSeries(ctx context.Context, matchers []*labels.Matcher) ([]labels.Labels, error) {
	f.record(ctx, matchers, "", 0)
	return []labels.Labels{labels.FromStrings("__name__", "up", "job", "api")}, f.err
}

// cardinalityServer serves the API over source with multitenancy on, as the querier does.
func cardinalityServer(t *testing.T, source CardinalitySource, timeout time.Duration) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	NewCardinalityAPI(source, timeout, slog.New(slog.DiscardHandler)).Register(mux, "/prometheus/api/v1", TenantMiddleware(true))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// callCardinality sends a request as tenantID (none when empty), form-encoded for POST, and returns the
// status and body.
func callCardinality(t *testing.T, srv *httptest.Server, method, path, tenantID string, params url.Values) (int, string) {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodPost {
		req, err = http.NewRequest(method, srv.URL+path, strings.NewReader(params.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, err = http.NewRequest(method, srv.URL+path+"?"+params.Encode(), nil)
		require.NoError(t, err)
	}
	if tenantID != "" {
		req.Header.Set("X-Scope-OrgID", tenantID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	return resp.StatusCode, string(body)
}

func TestCardinalityAPI_AnswersInPrometheusAndMimirShapes(t *testing.T) {
	source := &fakeCardinality{}
	srv := cardinalityServer(t, source, time.Minute)

	status, body := callCardinality(t, srv, http.MethodGet, "/prometheus/api/v1/status/tsdb", "team-a", nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"status":"success","data":{
		"headStats":{"numSeries":3,"numLabelPairs":5,"chunkCount":6,"minTime":1000,"maxTime":2000},
		"seriesCountByMetricName":[{"name":"up","value":2}],
		"labelValueCountByLabelName":[{"name":"instance","value":2}],
		"memoryInBytesByLabelName":[{"name":"instance","value":40}],
		"seriesCountByLabelValuePair":[{"name":"job=api","value":3}]}}`, body)
	require.Equal(t, "team-a", source.tenant)
	require.Equal(t, 10, source.limit, "Prometheus' default limit")

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		status, body = callCardinality(t, srv, method, "/prometheus/api/v1/cardinality/label_names", "team-a", url.Values{"selector": {`{job="api"}`}, "count_method": {"active"}})
		require.Equal(t, http.StatusOK, status)
		require.JSONEq(t, `{"label_values_count_total":3,"label_names_count":2,
			"cardinality":[{"label_name":"instance","label_values_count":2},{"label_name":"job","label_values_count":1}]}`, body)
		require.Equal(t, querier.CountActive, source.method)
		require.Equal(t, 20, source.limit, "Mimir's default limit")
		require.Equal(t, `[job="api"]`, matchersString(source.matchers))

		status, body = callCardinality(t, srv, method, "/prometheus/api/v1/cardinality/label_values", "team-a", url.Values{"label_names[]": {"job", "instance"}, "limit": {"500"}})
		require.Equal(t, http.StatusOK, status)
		require.JSONEq(t, `{"series_count_total":3,"labels":[{"label_name":"job","label_values_count":1,"series_count":3,
			"cardinality":[{"label_value":"api","series_count":3}]}]}`, body)
		require.Equal(t, []string{"job", "instance"}, source.names)
		require.Equal(t, querier.CountInMemory, source.method, "Mimir's default count method")
		require.Equal(t, 500, source.limit)
		require.Empty(t, source.matchers)

		status, body = callCardinality(t, srv, method, "/prometheus/api/v1/cardinality/active_series", "team-a", url.Values{"selector": {"up"}})
		require.Equal(t, http.StatusOK, status)
		require.JSONEq(t, `{"data":[{"__name__":"up","job":"api"}]}`, body)
		require.Equal(t, `[__name__="up"]`, matchersString(source.matchers))
	}
}

func matchersString(ms []*labels.Matcher) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.String())
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func TestCardinalityAPI_RefusesBadRequests(t *testing.T) {
	srv := cardinalityServer(t, &fakeCardinality{}, time.Minute)
	longSelector := `{job=~"` + strings.Repeat("a|", maxSelectorBytes/2) + `b"}`
	manyNames := make([]string, maxCardinalityLabelNames+1)
	for i := range manyNames {
		manyNames[i] = "l" + strings.Repeat("x", i)
	}
	for name, tc := range map[string]struct {
		method, path, tenant string
		params               url.Values
		status               int
		message              string
	}{
		"status limit not a number":   {"GET", "/status/tsdb", "t", url.Values{"limit": {"ten"}}, 400, `invalid parameter \"limit\"`},
		"status limit zero":           {"GET", "/status/tsdb", "t", url.Values{"limit": {"0"}}, 400, "between 1 and 500"},
		"status limit too large":      {"GET", "/status/tsdb", "t", url.Values{"limit": {"501"}}, 400, "between 1 and 500"},
		"status by POST":              {"POST", "/status/tsdb", "t", nil, 405, "only GET"},
		"label names limit negative":  {"GET", "/cardinality/label_names", "t", url.Values{"limit": {"-1"}}, 400, "between 0 and 500"},
		"label names limit too large": {"POST", "/cardinality/label_names", "t", url.Values{"limit": {"100000"}}, 400, "between 0 and 500"},
		"label names count method":    {"GET", "/cardinality/label_names", "t", url.Values{"count_method": {"all"}}, 400, `invalid parameter \"count_method\"`},
		"label names bad selector":    {"GET", "/cardinality/label_names", "t", url.Values{"selector": {`{job="api"`}}, 400, `invalid parameter \"selector\"`},
		"label names huge selector":   {"POST", "/cardinality/label_names", "t", url.Values{"selector": {longSelector}}, 400, "bytes long"},
		"label values without names":  {"GET", "/cardinality/label_values", "t", nil, 400, "at least one label name"},
		"label values too many names": {"POST", "/cardinality/label_values", "t", url.Values{"label_names[]": manyNames}, 400, "at most 100"},
		"label values empty name":     {"GET", "/cardinality/label_values", "t", url.Values{"label_names[]": {""}}, 400, "not a valid label name"},
		"label values bad limit":      {"GET", "/cardinality/label_values", "t", url.Values{"label_names[]": {"job"}, "limit": {"1e3"}}, 400, `invalid parameter \"limit\"`},
		"active series no selector":   {"GET", "/cardinality/active_series", "t", nil, 400, "a selector is required"},
		"active series bad selector":  {"GET", "/cardinality/active_series", "t", url.Values{"selector": {"up{"}}, 400, `invalid parameter \"selector\"`},
		"active series by PUT":        {"PUT", "/cardinality/active_series", "t", nil, 405, "only GET and POST"},
		"no tenant":                   {"GET", "/cardinality/label_names", "", nil, 401, "no tenant ID"},
		"several tenants":             {"GET", "/cardinality/label_names", "a|b", nil, 400, ""},
	} {
		t.Run(name, func(t *testing.T) {
			status, body := callCardinality(t, srv, tc.method, "/prometheus/api/v1"+tc.path, tc.tenant, tc.params)
			require.Equal(t, tc.status, status, body)
			var resp response
			require.NoError(t, json.Unmarshal([]byte(body), &resp), body)
			require.Equal(t, "error", resp.Status)
			require.Equal(t, errorBadData, resp.ErrorType)
			require.Contains(t, body, tc.message)
		})
	}
}

func TestCardinalityAPI_FailuresMapToStatuses(t *testing.T) {
	for name, tc := range map[string]struct {
		err     error
		status  int
		errType errorType
	}{
		"answer too large":      {&querier.TooLargeError{What: "label values", Limit: 10}, 422, errorExec},
		"tenant limit":          {seriespb.SeriesLimitError(5), 422, errorExec},
		"ingesters unreachable": {errors.New("3 of 3 instances failed"), 500, errorInternal},
		"timed out":             {context.DeadlineExceeded, 503, errorTimeout},
	} {
		t.Run(name, func(t *testing.T) {
			srv := cardinalityServer(t, &fakeCardinality{err: tc.err}, time.Minute)
			for path, params := range map[string]url.Values{
				"/status/tsdb":               nil,
				"/cardinality/label_names":   nil,
				"/cardinality/label_values":  {"label_names[]": {"job"}},
				"/cardinality/active_series": {"selector": {"up"}},
			} {
				status, body := callCardinality(t, srv, http.MethodGet, "/prometheus/api/v1"+path, "t", params)
				require.Equal(t, tc.status, status, "%s: %s", path, body)
				var resp response
				require.NoError(t, json.Unmarshal([]byte(body), &resp))
				require.Equal(t, tc.errType, resp.ErrorType, path)
				require.Equal(t, tc.err.Error(), resp.Error, path)
			}
		})
	}
}

// blockingCardinality answers only once its request's context ends, with the context's error.
type blockingCardinality struct{ fakeCardinality }

func (b *blockingCardinality) LabelNames(ctx context.Context, _ []*labels.Matcher, _ querier.CountMethod, _ int) (*querier.LabelNamesCardinality, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestCardinalityAPI_TimeoutBoundsARequest(t *testing.T) {
	srv := cardinalityServer(t, &blockingCardinality{}, 50*time.Millisecond)
	status, body := callCardinality(t, srv, http.MethodGet, "/prometheus/api/v1/cardinality/label_names", "t", nil)
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, body, `"errorType":"timeout"`)
}
