package querymiddleware

import (
	"cmp"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

// sentRanges returns the ranges of requests, in time order.
func sentRanges(requests []recordedRequest) [][2]time.Time {
	slices.SortFunc(requests, func(a, b recordedRequest) int { return cmp.Compare(a.start, b.start) })
	var out [][2]time.Time
	for _, r := range requests {
		out = append(out, [2]time.Time{time.UnixMilli(r.start).UTC(), time.UnixMilli(r.end).UTC()})
	}
	return out
}

func noFreshness(l *validation.Limits) { l.MaxCacheFreshness = 0 }

// A refreshed dashboard: the same query over the same length of time, a minute later.
func TestResultsCache_RefreshAsksOnlyForTheNewMinute(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, reg := newTestMiddleware(t, testConfig(t), testLimits(noFreshness), d, time.Time{})
	now := time.Date(2025, 3, 3, 8, 17, 0, 0, time.UTC) // 10h back crosses a midnight
	query := `sum by (instance) (rate(http_requests_total[5m]))`

	rt.now = func() time.Time { return now }
	first := rangeRequest(t, query, now.Add(-10*time.Hour), now, "1m")
	requireSameAnswer(t, directAnswer(t, handler, first), roundTrip(t, rt, first), "first")
	require.Len(t, d.takeRequests(), 2, "one request per day")

	now = now.Add(time.Minute)
	refresh := rangeRequest(t, query, now.Add(-10*time.Hour), now, "1m")
	got := roundTrip(t, rt, refresh)
	requireSameAnswer(t, directAnswer(t, handler, refresh), got, "refresh")
	require.Equal(t, CachePartial, got.header.Get(CacheHeader))
	require.Equal(t, [][2]time.Time{{now, now}}, sentRanges(d.takeRequests()))

	require.Equal(t, 4.0, testutil.ToFloat64(rt.cache.requests))
	require.Equal(t, 2.0, testutil.ToFloat64(rt.cache.hits))
	_ = reg
}

// With max_cache_freshness, the newest part of the answer is asked for every time, and what becomes old
// enough is stored: the refresh asks for the minute that became cacheable and the fresh ten minutes.
func TestResultsCache_NewerThanMaxCacheFreshnessIsAlwaysFetched(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, time.Time{}) // max_cache_freshness 10m
	now := time.Date(2025, 3, 3, 8, 17, 0, 0, time.UTC)
	query := `rate(http_requests_total[5m])`

	rt.now = func() time.Time { return now }
	first := rangeRequest(t, query, now.Add(-10*time.Hour), now, "1m")
	requireSameAnswer(t, directAnswer(t, handler, first), roundTrip(t, rt, first), "first")
	require.Equal(t, [][2]time.Time{
		{now.Add(-10 * time.Hour), time.Date(2025, 3, 2, 23, 59, 0, 0, time.UTC)},
		{time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC), now.Add(-10 * time.Minute)},
		{now.Add(-9 * time.Minute), now},
	}, sentRanges(d.takeRequests()))

	again := roundTrip(t, rt, first)
	requireSameAnswer(t, directAnswer(t, handler, first), again, "again")
	require.Equal(t, CachePartial, again.header.Get(CacheHeader))
	require.Equal(t, [][2]time.Time{{now.Add(-9 * time.Minute), now}}, sentRanges(d.takeRequests()))

	now = now.Add(time.Minute)
	refresh := rangeRequest(t, query, now.Add(-10*time.Hour), now, "1m")
	requireSameAnswer(t, directAnswer(t, handler, refresh), roundTrip(t, rt, refresh), "refresh")
	require.Equal(t, [][2]time.Time{
		{now.Add(-10 * time.Minute), now.Add(-10 * time.Minute)},
		{now.Add(-9 * time.Minute), now},
	}, sentRanges(d.takeRequests()))
}

// A query that reads data later than its steps (negative offset, @ a recent time) holds back more.
func TestResultsCache_QueriesReadingAheadHoldBackMore(t *testing.T) {
	handler := querierHandler(t)
	now := dataEnd.Add(30 * time.Minute)
	start := dataEnd.Add(-3 * time.Hour)
	for _, tc := range []struct {
		query       string
		wantRefetch [][2]time.Time
	}{
		{
			// Steps up to now - 10m - 1h read data older than now - 10m.
			query:       `temperature_celsius offset -1h`,
			wantRefetch: [][2]time.Time{{now.Add(-70*time.Minute + time.Minute), dataEnd}},
		},
		{
			query:       `max_over_time(temperature_celsius[10m:1m] offset -30m)`,
			wantRefetch: [][2]time.Time{{now.Add(-40*time.Minute + time.Minute), dataEnd}},
		},
		{
			// Pinned to a time newer than now - 10m: no step is final.
			query:       `temperature_celsius @ ` + formatMillis(now.Add(-5*time.Minute).UnixMilli()),
			wantRefetch: [][2]time.Time{{start, dataEnd}},
		},
		{
			// Pinned to an old time, with the step reading nothing later than itself: everything is final.
			query:       `temperature_celsius @ ` + formatMillis(dataStart.Add(time.Hour).UnixMilli()) + ` + temperature_celsius`,
			wantRefetch: nil,
		},
	} {
		t.Run(tc.query, func(t *testing.T) {
			d := &downstream{handler: handler}
			rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, now)
			req := rangeRequest(t, tc.query, start, dataEnd, "1m")
			want := directAnswer(t, handler, req)
			requireSameAnswer(t, want, roundTrip(t, rt, req), "first")
			d.takeRequests()

			requireSameAnswer(t, want, roundTrip(t, rt, req), "again")
			got := sentRanges(d.takeRequests())
			if len(got) > 1 { // a range straddling the cacheable bound is asked as two
				got = [][2]time.Time{{got[0][0], got[len(got)-1][1]}}
			}
			require.Equal(t, tc.wantRefetch, got)
		})
	}
}

func TestResultsCache_NoStoreRequestNeitherReadsNorWrites(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd.Add(time.Hour))
	req := rangeRequest(t, `rate(http_requests_total[5m])`, dataStart, dataEnd, "5m")
	want := directAnswer(t, handler, req)

	require.Equal(t, CacheMiss, roundTrip(t, rt, req).header.Get(CacheHeader))
	parts := len(d.takeRequests())
	noStore := req.Clone(req.Context())
	noStore.Header.Set("Cache-Control", "no-cache, no-store")
	got := roundTrip(t, rt, noStore)
	requireSameAnswer(t, want, got, "no-store")
	require.Empty(t, got.header.Get(CacheHeader), "the cache was not read")
	require.Len(t, d.takeRequests(), parts, "the cache was not read")

	other := rangeRequest(t, `rate(http_requests_total[5m])`, dataStart, dataEnd, "10m")
	other.Header.Set("Cache-Control", "no-store")
	roundTrip(t, rt, other)
	d.takeRequests()
	other.Header.Del("Cache-Control")
	require.Equal(t, CacheMiss, roundTrip(t, rt, other).header.Get(CacheHeader), "the cache was not written")
}

func TestResultsCache_NoStoreAnswerIsNotStored(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler, mutate: func(_ *http.Request, resp *http.Response) {
		resp.Header.Set("Cache-Control", "no-store")
	}}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd.Add(time.Hour))
	req := rangeRequest(t, `rate(http_requests_total[5m])`, dataStart, dataEnd, "5m")
	want := directAnswer(t, handler, req)

	requireSameAnswer(t, want, roundTrip(t, rt, req), "first")
	parts := len(d.takeRequests())
	got := roundTrip(t, rt, req)
	requireSameAnswer(t, want, got, "second")
	require.Equal(t, CacheMiss, got.header.Get(CacheHeader))
	require.Len(t, d.takeRequests(), parts)
	require.Equal(t, float64(2*parts), testutil.ToFloat64(rt.cache.skipped.WithLabelValues(skipNoStore)))
}

func TestResultsCache_AnswersWithWarningsAreNotStored(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd.Add(time.Hour))
	// A warning from every part: http_requests_total has no le label.
	req := rangeRequest(t, `histogram_quantile(0.9, rate(http_requests_total[5m]))`, dataStart.Add(time.Hour), dataEnd, "5m")
	want := directAnswer(t, handler, req)
	require.Contains(t, string(want.body), `"warnings":[`)

	requireSameAnswer(t, want, roundTrip(t, rt, req), "first")
	parts := len(d.takeRequests())
	got := roundTrip(t, rt, req)
	requireSameAnswer(t, want, got, "second")
	require.Equal(t, CacheMiss, got.header.Get(CacheHeader))
	require.Len(t, d.takeRequests(), parts)
	require.Equal(t, float64(2*parts), testutil.ToFloat64(rt.cache.skipped.WithLabelValues(skipWarnings)))
}

// An extent with infos is used only whole: the refreshed dashboard asks again for the first day, whose
// range moved, and takes the others from the cache.
func TestResultsCache_AnswerWithInfosIsReusedOnlyWhole(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(noFreshness), d, time.Time{})
	now := dataEnd
	query := `rate(temperature_celsius[5m])`

	rt.now = func() time.Time { return now }
	first := rangeRequest(t, query, now.Add(-48*time.Hour), now, "1m")
	want := directAnswer(t, handler, first)
	require.Contains(t, string(want.body), `"infos":[`)
	requireSameAnswer(t, want, roundTrip(t, rt, first), "first")
	require.Len(t, d.takeRequests(), 3)

	now = now.Add(time.Minute)
	refresh := rangeRequest(t, query, now.Add(-48*time.Hour), now, "1m")
	requireSameAnswer(t, directAnswer(t, handler, refresh), roundTrip(t, rt, refresh), "refresh")
	require.Equal(t, [][2]time.Time{
		{now.Add(-48 * time.Hour), time.Date(2025, 3, 2, 23, 59, 0, 0, time.UTC)},
		{now, now},
	}, sentRanges(d.takeRequests()))
}

func TestResultsCache_TenantsDoNotShareEntries(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd.Add(time.Hour))
	req := rangeRequest(t, `up`, dataStart, dataEnd, "5m")
	require.Equal(t, CacheMiss, roundTrip(t, rt, req).header.Get(CacheHeader))
	require.Equal(t, CacheHit, roundTrip(t, rt, req).header.Get(CacheHeader))

	req.Header.Set("X-Scope-OrgID", "tenant-2")
	require.Equal(t, CacheMiss, roundTrip(t, rt, req).header.Get(CacheHeader))
}

// Federated tenants ("a|b") are one cache tenant, with the most conservative of their limits.
func TestResultsCache_FederatedTenantsTakeTheStrictestLimits(t *testing.T) {
	limits := validation.NewOverrides(validation.DefaultLimits(), fixedTenantLimits{
		"a": {MaxCacheFreshness: model.Duration(time.Minute), MaxTotalQueryLength: model.Duration(48 * time.Hour)},
		"b": {MaxCacheFreshness: model.Duration(time.Hour), MaxTotalQueryLength: model.Duration(24 * time.Hour), MaxQueryLookback: model.Duration(time.Hour)},
	})
	rt, _ := newTestMiddleware(t, testConfig(t), limits, http.DefaultTransport, dataEnd)
	require.Equal(t, tenantLimits{maxCacheFreshness: time.Hour, hasMaxQueryLookback: true}, rt.tenantLimits("a|b"))
	require.Equal(t, tenantLimits{maxCacheFreshness: time.Minute}, rt.tenantLimits("a"))
	twoDays := &rangeQuery{query: "up", start: 0, end: 36 * 3600 * 1000, askedEnd: 36 * 3600 * 1000, step: 60_000}
	require.True(t, rt.acceptsWhole("a", twoDays))
	require.False(t, rt.acceptsWhole("a|b", twoDays), "b's max_total_query_length is 24h")

	q := &rangeQuery{step: 60_000}
	fullAB, keyAB := partKeys("a|b", "up", q, 86400_000, 1)
	fullA, keyA := partKeys("a", "up", q, 86400_000, 1)
	require.NotEqual(t, fullAB, fullA)
	require.NotEqual(t, keyAB, keyA)
}

type fixedTenantLimits map[string]*validation.Limits

func (f fixedTenantLimits) ByTenant(tenant string) *validation.Limits  { return f[tenant] }
func (f fixedTenantLimits) AllByTenant() map[string]*validation.Limits { return f }

func TestResultsCache_NotUsedForTenantWithMaxQueryLookback(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	limits := testLimits(func(l *validation.Limits) { l.MaxQueryLookback = model.Duration(365 * 24 * time.Hour) })
	rt, _ := newTestMiddleware(t, testConfig(t), limits, d, dataEnd.Add(time.Hour))
	req := rangeRequest(t, `up`, dataStart, dataEnd, "5m")
	for range 2 {
		got := roundTrip(t, rt, req)
		require.Equal(t, http.StatusOK, got.status)
		require.Empty(t, got.header.Get(CacheHeader))
		require.Len(t, d.takeRequests(), 4, "split all the same")
	}
}

func TestResultsCache_FailedPartIsTheAnswerAndNothingIsStored(t *testing.T) {
	handler := querierHandler(t)
	failDay := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC).UnixMilli()
	failing := true
	const failure = `{"status":"error","errorType":"unavailable","error":"store-gateway down"}`
	d := &downstream{handler: handler, mutate: func(r *http.Request, resp *http.Response) {
		if start, _ := parseTimeMillis(r.FormValue("start")); failing && start >= failDay && start < failDay+24*3600*1000 {
			resp.Body = io.NopCloser(strings.NewReader(failure))
			resp.StatusCode = http.StatusServiceUnavailable
			resp.Header.Set("Retry-After", "1")
		}
	}}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd.Add(time.Hour))
	req := rangeRequest(t, `rate(http_requests_total[5m])`, dataStart, dataEnd, "1m")

	got := roundTrip(t, rt, req)
	require.Equal(t, http.StatusServiceUnavailable, got.status)
	require.Equal(t, failure, string(got.body))
	require.Equal(t, "1", got.header.Get("Retry-After"), "the failed part's headers come along")
	d.takeRequests()

	failing = false
	got = roundTrip(t, rt, req)
	requireSameAnswer(t, directAnswer(t, handler, req), got, "after the failure")
	require.Equal(t, CacheMiss, got.header.Get(CacheHeader), "the parts that succeeded alongside the failure were not stored")
}

func TestResultsCache_QuerierErrorsComeBackAsTheQuerierGaveThem(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd.Add(time.Hour))
	for _, tc := range []struct {
		query      string
		wantStatus int
		wantSent   int
	}{
		// Fails while evaluating, in every part: the same label set twice.
		{query: `label_replace(http_requests_total, "instance", "x", "", "")`, wantStatus: http.StatusUnprocessableEntity, wantSent: 4},
		// Does not parse: the querier gets the request as it is.
		{query: `rate(http_requests_total)`, wantStatus: http.StatusBadRequest, wantSent: 1},
		{query: `sum(`, wantStatus: http.StatusBadRequest, wantSent: 1},
	} {
		req := rangeRequest(t, tc.query, dataStart, dataEnd, "1m")
		want := directAnswer(t, handler, req)
		require.Equal(t, tc.wantStatus, want.status, string(want.body))
		requireSameAnswer(t, want, roundTrip(t, rt, req), "%s", tc.query)
		sent := d.takeRequests()
		require.LessOrEqual(t, len(sent), tc.wantSent, tc.query)
		if tc.wantSent == 1 {
			require.Equal(t, tc.query, sent[0].query)
		}
	}
}

func TestResultsCache_TransportErrorIsReturned(t *testing.T) {
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), roundTripperFunc(func(*http.Request) (*http.Response, error) {
		return nil, errDownstreamGone
	}), dataEnd)
	_, err := rt.RoundTrip(rangeRequest(t, `up`, dataStart, dataEnd, "1m"))
	require.ErrorIs(t, err, errDownstreamGone)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var errDownstreamGone = &downstreamError{"querier connection reset"}

type downstreamError struct{ msg string }

func (e *downstreamError) Error() string { return e.msg }

func TestResultsCache_UnreadableAnswerIsAnInternalError(t *testing.T) {
	d := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		w := httptest.NewRecorder()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}`)
		return w.Result(), nil
	})
	rt, _ := newTestMiddleware(t, testConfig(t), testLimits(nil), d, dataEnd)
	got := roundTrip(t, rt, rangeRequest(t, `up`, dataStart, dataEnd, "1m"))
	require.Equal(t, http.StatusInternalServerError, got.status)
	require.True(t, strings.HasPrefix(string(got.body), `{"status":"error","errorType":"internal","error":"the querier's answer to part `), string(got.body))
}
