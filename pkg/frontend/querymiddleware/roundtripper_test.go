package querymiddleware

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

// answerQueries are range queries of every kind the middleware must answer exactly as the querier does.
var answerQueries = []struct {
	query string
	// notCached: the answer has warnings, which are never cached.
	notCached bool
}{
	{query: `rate(http_requests_total[5m])`},
	{query: `sum by (code) (rate(http_requests_total[5m]))`},
	{query: `histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[10m])))`},
	{query: `increase(http_requests_total{instance="b",code="500"}[1h])`}, // counter resets
	{query: `resets(http_requests_total[2h])`},
	{query: `batch_job_last_success`}, // series that come and go
	{query: `count_over_time(batch_job_last_success[20m])`},
	{query: `rpc_latency_seconds`}, // native histogram
	{query: `rate(rpc_latency_seconds[5m])`},
	{query: `histogram_quantile(0.5, rate(rpc_latency_seconds[5m]))`},
	{query: `temperature_celsius`},           // label values JSON escapes
	{query: `rate(temperature_celsius[5m])`}, // an info: temperature_celsius may not be a counter
	{query: `weird_values`},                  // NaN, ±Inf, 1e-300, -0...
	{query: `topk(1, temperature_celsius)`},
	{query: `max_over_time(rate(http_requests_total[5m])[1h:5m])`},
	{query: `temperature_celsius offset 2h`},
	{query: `temperature_celsius offset -1h`},
	{query: `http_requests_total @ end()`},
	{query: `rate(http_requests_total[5m] @ start()) - rate(http_requests_total[5m])`},
	{query: `max_over_time(temperature_celsius[30m:1m] @ end())`},
	{query: `temperature_celsius @ 1740900000`},
	{query: `time() - timestamp(batch_job_last_success)`},
	{query: `vector(1)`},
	{query: `histogram_quantile(0.9, rate(http_requests_total[5m]))`, notCached: true}, // a warning: no le label
}

// answerRanges are ranges and steps that cross UTC midnights at various places.
var answerRanges = []struct {
	name       string
	start, end time.Time
	step       string
}{
	{"3 days at 1m", dataStart.Add(30 * time.Minute), dataEnd.Add(-30 * time.Minute), "1m"},
	{"27h at 17s from an odd millisecond", dataStart.Add(time.Hour + 7*time.Second + 250*time.Millisecond), dataStart.Add(28 * time.Hour), "17s"},
	{"3 days at 1h30m", dataStart.Add(13 * time.Minute), dataEnd, "1h30m"},
	{"3 days at 1d", dataStart, dataEnd, "1d"},
	{"within one day", dataStart.Add(time.Hour), dataStart.Add(3 * time.Hour), "30s"},
}

func TestRangeQuery_AnswersAsTheQuerierDoesColdAndWarm(t *testing.T) {
	handler := querierHandler(t)
	now := dataEnd.Add(24 * time.Hour) // all data older than max_cache_freshness: every step cacheable
	for _, mode := range []struct {
		name  string
		args  []string
		cache bool
	}{
		{"split and cache", nil, true},
		{"split only", []string{"-query-frontend.cache-results=false"}, false},
	} {
		t.Run(mode.name, func(t *testing.T) {
			d := &downstream{handler: handler}
			rt, _ := newTestMiddleware(t, testConfig(t, mode.args...), testLimits(nil), d, now)
			for _, r := range answerRanges {
				for _, q := range answerQueries {
					name := fmt.Sprintf("%s over %s", q.query, r.name)
					req := rangeRequest(t, q.query, r.start, r.end, r.step)
					want := directAnswer(t, handler, req)
					require.Equal(t, http.StatusOK, want.status, "%s: %s", name, want.body)

					cold := roundTrip(t, rt, req)
					requireSameAnswer(t, want, cold, "cold: %s", name)
					sent := d.takeRequests()
					require.NotEmpty(t, sent, name)
					warm := roundTrip(t, rt, req)
					requireSameAnswer(t, want, warm, "warm: %s", name)
					warmSent := d.takeRequests()
					switch {
					case !mode.cache:
						require.Len(t, warmSent, len(sent), name)
						require.Empty(t, warm.header.Get(CacheHeader), name)
					case q.notCached:
						require.NotEmpty(t, warmSent, "warm: %s: parts with warnings must be asked again", name)
					default:
						require.Empty(t, warmSent, "warm: %s asked the querier again", name)
						require.Equal(t, CacheHit, warm.header.Get(CacheHeader), name)
						require.Equal(t, CacheMiss, cold.header.Get(CacheHeader), name)
					}
				}
			}
		})
	}
}

func TestRangeQuery_SplitsAtMidnightsOnTheQueryGrid(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t, "-query-frontend.cache-results=false"), testLimits(nil), d, dataEnd)
	start := time.Date(2025, 3, 1, 22, 0, 7, 0, time.UTC)
	end := time.Date(2025, 3, 3, 1, 0, 0, 0, time.UTC)

	got := roundTrip(t, rt, rangeRequest(t, `up`, start, end, "7m"))
	require.Equal(t, http.StatusOK, got.status, string(got.body))

	sent := d.takeRequests()
	require.Len(t, sent, 3)
	slices.SortFunc(sent, func(a, b recordedRequest) int { return cmp.Compare(a.start, b.start) })
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	// Points are 22:00:07 + k*7m: the last before the first midnight is 23:59:07 (k=17), the first
	// after it 00:06:07; the last of that day 23:54:07, then 00:01:07, and 00:57:07 before the end.
	require.Equal(t, [][2]int64{
		{ms(start), ms(time.Date(2025, 3, 1, 23, 59, 7, 0, time.UTC))},
		{ms(time.Date(2025, 3, 2, 0, 6, 7, 0, time.UTC)), ms(time.Date(2025, 3, 2, 23, 54, 7, 0, time.UTC))},
		{ms(time.Date(2025, 3, 3, 0, 1, 7, 0, time.UTC)), ms(time.Date(2025, 3, 3, 0, 57, 7, 0, time.UTC))},
	}, [][2]int64{{sent[0].start, sent[0].end}, {sent[1].start, sent[1].end}, {sent[2].start, sent[2].end}})
	for _, r := range sent {
		require.Equal(t, http.MethodGet, r.method)
		require.Equal(t, "7m", r.step)
		require.Equal(t, testTenant, r.header.Get("X-Scope-OrgID"))
	}
	require.Equal(t, 3.0, testutil.ToFloat64(rt.splitQueries))
}

func TestRangeQuery_PostFormAnswersAsGet(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd.Add(time.Hour))
	get := rangeRequest(t, `sum(rate(http_requests_total[5m]))`, dataStart, dataEnd, "5m", "lookback_delta", "2m")
	want := directAnswer(t, handler, get)

	form := get.URL.Query()
	post, err := http.NewRequestWithContext(get.Context(), http.MethodPost, "http://frontend/prometheus/api/v1/query_range", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	post.Header = get.Header.Clone()
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	requireSameAnswer(t, want, roundTrip(t, rt, post), "POST")
	sent := d.takeRequests()
	require.Greater(t, len(sent), 1)
	for _, r := range sent {
		require.Equal(t, http.MethodGet, r.method)
		require.Equal(t, "2m", r.params.Get("lookback_delta"), "parameters other than the range go with every part")
	}
	got := roundTrip(t, rt, get)
	requireSameAnswer(t, want, got, "GET")
	require.Equal(t, CacheHit, got.header.Get(CacheHeader), "a GET finds what the POST cached")
}

func TestRangeQuery_LeavesOtherRequestsUnchanged(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd)
	for _, path := range []string{"/prometheus/api/v1/query?query=up&time=1740900000", "/prometheus/api/v1/labels", "/prometheus/api/v1/query_range_other?query=up"} {
		req, err := http.NewRequest(http.MethodGet, "http://frontend"+path, nil)
		require.NoError(t, err)
		req.Header.Set("X-Scope-OrgID", testTenant)
		want := directAnswer(t, handler, req)
		requireSameAnswer(t, want, roundTrip(t, rt, req), "%s", path)
		sent := d.takeRequests()
		require.Len(t, sent, 1, path)
	}
}

func TestRangeQuery_StatsParameterIsEvaluatedWholeAndNotCached(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd.Add(time.Hour))
	req := rangeRequest(t, `rate(http_requests_total[5m])`, dataStart, dataEnd, "1m", "stats", "all")
	for range 2 {
		got := roundTrip(t, rt, req)
		require.Equal(t, http.StatusOK, got.status)
		require.Contains(t, string(got.body), `"stats":{`)
		require.Empty(t, got.header.Get(CacheHeader))
		sent := d.takeRequests()
		require.Len(t, sent, 1)
		require.Equal(t, formatMillis(dataStart.UnixMilli()), formatMillis(sent[0].start))
		require.Equal(t, dataEnd.UnixMilli(), sent[0].end)
	}
}

func TestRangeQuery_MaxTotalQueryLengthIsTheQuerierRefusal(t *testing.T) {
	limits := testLimits(func(l *validation.Limits) { l.MaxTotalQueryLength = model.Duration(24 * time.Hour) })
	handler := querierHandlerWithLimits(t, limits)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), limits, d, dataEnd)
	req := rangeRequest(t, `up`, dataStart, dataEnd, "1m")
	want := directAnswer(t, handler, req)
	require.Equal(t, http.StatusUnprocessableEntity, want.status, string(want.body))

	requireSameAnswer(t, want, roundTrip(t, rt, req), "its parts, each a day long, would pass the limit")
	sent := d.takeRequests()
	require.Len(t, sent, 1, "a query over the limit goes whole to the querier")
	require.Equal(t, url.Values{"query": {"up"}, "start": {formatMillis(dataStart.UnixMilli())}, "end": {formatMillis(dataEnd.UnixMilli())}, "step": {"1m"}}, sent[0].params)
}
