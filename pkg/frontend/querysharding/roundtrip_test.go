package querysharding

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/frontend"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

var instantAt30m = rfc(dataStart.Add(30 * time.Minute))

func TestSharding_PassesThroughWhatItCannotShard(t *testing.T) {
	ds := newDownstream(t)
	reg := prometheus.NewRegistry()
	sharded := newSharding(t, ds, 4, reg)
	for _, tc := range []struct {
		name   string
		params url.Values
		reason string
	}{
		{"a selector", url.Values{"query": {`temperature`}}, reasonNotShardable},
		{"a per-series function", url.Values{"query": {`rate(http_requests_total[5m])`}}, reasonNotShardable},
		{"quantile", url.Values{"query": {`quantile(0.5, temperature)`}}, reasonNotShardable},
		{"stddev", url.Values{"query": {`stddev by (job) (temperature)`}}, reasonNotShardable},
		{"count_values", url.Values{"query": {`count_values("v", round(temperature))`}}, reasonNotShardable},
		{"a join inside", url.Values{"query": {`sum(temperature / on(instance, job) group_left temperature)`}}, reasonNotShardable},
		{"label_replace inside", url.Values{"query": {`sum(label_replace(temperature, "job", "x", "", ""))`}}, reasonNotShardable},
		{"a subquery over an aggregation", url.Values{"query": {`max_over_time(sum(temperature)[10m:1m])`}}, reasonNotShardable},
		{"a selector beside an aggregation", url.Values{"query": {`sum(temperature) - on() group_right temperature`}}, reasonNotShardable},
		{"a reserved label", url.Values{"query": {`sum by (__strata_shard__) (temperature)`}}, reasonNotShardable},
		{"stats", url.Values{"query": {`sum(temperature)`}, "stats": {"all"}}, reasonParameters},
		{"an unknown parameter", url.Values{"query": {`sum(temperature)`}, "limit": {"1"}}, reasonParameters},
		{"a query of its own shard", url.Values{"query": {`sum(temperature{__query_shard__="1_of_2"})`}}, reasonAlreadySharded},
		{"a query that does not parse", url.Values{"query": {`sum(`}}, ""},
		{"a bad time", url.Values{"query": {`sum(temperature)`}, "time": {"yesterday"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(sharded.(*shardingRoundTripper).unshardedQueries.WithLabelValues(tc.reason))
			if tc.params.Get("time") == "" {
				tc.params.Set("time", instantAt30m)
			}
			want := get(t, ds, "query", tc.params)
			ds.sent()
			got := get(t, sharded, "query", tc.params)
			require.Equal(t, []string{tc.params.Get("query")}, ds.sent(), "one request, the user's query unchanged")
			requireSamePassedThrough(t, want, got)
			if tc.reason != "" {
				require.Equal(t, before+1, testutil.ToFloat64(sharded.(*shardingRoundTripper).unshardedQueries.WithLabelValues(tc.reason)))
			}
		})
	}
	require.Zero(t, testutil.ToFloat64(sharded.(*shardingRoundTripper).shardedQueries))

	t.Run("other paths", func(t *testing.T) {
		got := get(t, sharded, "series", url.Values{"match[]": {`temperature`}})
		require.Equal(t, http.StatusOK, got.status, got.body)
		require.Equal(t, []string{""}, ds.sent())
	})
	ds.sent()
	t.Run("a tenant with one shard", func(t *testing.T) {
		one := newSharding(t, ds, 1, prometheus.NewRegistry())
		got := get(t, one, "query", url.Values{"query": {`sum(temperature)`}, "time": {instantAt30m}})
		require.Equal(t, http.StatusOK, got.status)
		require.Equal(t, []string{`sum(temperature)`}, ds.sent())
	})
	t.Run("sharding off", func(t *testing.T) {
		rt, err := New(Config{MaxShardedQueries: 128}, validation.NewOverrides(validation.DefaultLimits(), nil), ds, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.Same(t, ds, rt, "the middleware is not in the way")
	})
	t.Run("shard queries over the tenant's expression size limit", func(t *testing.T) {
		limits := validation.DefaultLimits()
		limits.QueryShardingTotalShards = 4
		query := `sum(temperature)`
		limits.MaxQueryExpressionSizeBytes = len(query) + 10
		rt, err := New(Config{ParallelizeShardableQueries: true, MaxShardedQueries: 128}, validation.NewOverrides(limits, nil), ds, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, get(t, rt, "query", url.Values{"query": {query}, "time": {instantAt30m}}).status)
		require.Equal(t, []string{query}, ds.sent())
	})
	t.Run("more shardable parts than shard queries", func(t *testing.T) {
		limits := validation.DefaultLimits()
		limits.QueryShardingTotalShards = 16
		rt, err := New(Config{ParallelizeShardableQueries: true, MaxShardedQueries: 5}, validation.NewOverrides(limits, nil), ds, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		// Two parts get 2 shards each; three would get 1, which is no sharding.
		require.Equal(t, http.StatusOK, get(t, rt, "query", url.Values{"query": {`sum(temperature) / count(temperature)`}, "time": {instantAt30m}}).status)
		require.Len(t, ds.sent(), 4)
		require.Equal(t, http.StatusOK, get(t, rt, "query", url.Values{"query": {`sum(temperature) / count(temperature) + max(temperature)`}, "time": {instantAt30m}}).status)
		require.Len(t, ds.sent(), 1)
	})
}

func TestSharding_ShardsAPostedForm(t *testing.T) {
	ds := newDownstream(t)
	sharded := newSharding(t, ds, 4, prometheus.NewRegistry())
	form := url.Values{"query": {`sum by (job) (rate(http_requests_total[5m]))`}, "start": {rfc(dataStart.Add(10 * time.Minute))}, "end": {rfc(dataEnd)}, "step": {"60"}}
	post := func(rt http.RoundTripper, form url.Values) answer {
		req, err := http.NewRequest(http.MethodPost, "http://frontend/prometheus/api/v1/query_range", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(tenant.OrgIDHeader, testTenant)
		return roundTrip(t, rt, req)
	}
	want := post(ds, form)
	ds.sent()
	requireSameAnswer(t, want, post(sharded, form), approximate)
	requireSharded(t, ds.sent(), 4)

	// Passed through, the body arrives whole.
	form.Set("query", `quantile(0.5, rate(http_requests_total[5m]))`)
	want = post(ds, form)
	ds.sent()
	requireSamePassedThrough(t, want, post(sharded, form))
	require.Equal(t, []string{form.Get("query")}, ds.sent())
}

func TestSharding_MalformedShardSelectorIsBadRequest(t *testing.T) {
	ds := newDownstream(t)
	sharded := newSharding(t, ds, 4, prometheus.NewRegistry())
	for _, query := range []string{
		`sum(temperature{__query_shard__="5_of_4"})`,
		`sum(temperature{__query_shard__=~"1_of_4"})`,
		`temperature{__query_shard__="one"}`,
		`sum(rate(temperature{__query_shard__="1_of_4", __query_shard__="2_of_4"}[5m]))`,
	} {
		got := get(t, sharded, "query", url.Values{"query": {query}, "time": {instantAt30m}})
		require.Equal(t, http.StatusBadRequest, got.status, query)
		require.Contains(t, got.body, `"errorType":"bad_data"`)
		require.Contains(t, got.body, `__query_shard__`)
		require.Empty(t, ds.sent(), "no querier is asked")
	}
}

func TestSharding_AShardFailureFailsTheQueryWithItsAnswer(t *testing.T) {
	ds := newDownstream(t)
	sharded := newSharding(t, ds, 4, prometheus.NewRegistry())
	params := url.Values{"query": {`sum(rate(http_requests_total[5m])) / count(temperature)`}, "time": {instantAt30m}}

	ds.fail = func(r *http.Request) *http.Response {
		if strings.Contains(r.FormValue("query"), `"3_of_4"`) && strings.Contains(r.FormValue("query"), "temperature") {
			return frontend.NewResponse(r, http.StatusUnprocessableEntity, http.Header{"Content-Type": {"application/json"}},
				[]byte(`{"status":"error","errorType":"execution","error":"the query fetched more than 10 series"}`))
		}
		return nil
	}
	got := get(t, sharded, "query", params)
	require.Equal(t, http.StatusUnprocessableEntity, got.status)
	require.JSONEq(t, `{"status":"error","errorType":"execution","error":"the query fetched more than 10 series"}`, got.body)

	ds.fail = nil
	failure := errors.New("connection refused")
	broken := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.FormValue("query"), `"2_of_4"`) {
			return nil, failure
		}
		return ds.RoundTrip(r)
	})
	req, err := http.NewRequest(http.MethodGet, "http://frontend/prometheus/api/v1/query?"+params.Encode(), nil)
	require.NoError(t, err)
	req.Header.Set(tenant.OrgIDHeader, testTenant)
	_, err = newSharding(t, broken, 4, prometheus.NewRegistry()).RoundTrip(req)
	require.ErrorIs(t, err, failure)
}

// requireSamePassedThrough checks that got is the querier's answer to the same request as want: the same
// status and, for a success, the same series (bodies differ in what is not deterministic, such as the
// order of an instant vector's samples or timings).
func requireSamePassedThrough(t *testing.T, want, got answer) {
	t.Helper()
	if want.status != http.StatusOK {
		require.Equal(t, want, got)
		return
	}
	requireSameAnswer(t, want, got, exact)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A query's shard queries are sent at most as many at once as it has shards, however many shardable
// parts it has.
func TestSharding_BoundsTheShardQueriesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			inFlight, most, started atomic.Int64
			release                 = make(chan struct{})
			mu                      sync.Mutex
		)
		next := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			started.Add(1)
			n := inFlight.Add(1)
			mu.Lock()
			most.Store(max(most.Load(), n))
			mu.Unlock()
			<-release
			inFlight.Add(-1)
			return frontend.NewResponse(r, http.StatusOK, http.Header{"Content-Type": {"application/json"}},
				[]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700001800,"2"]}]}}`)), nil
		})
		reg := prometheus.NewRegistry()
		sharded := newSharding(t, next, 3, reg)
		done := make(chan answer)
		go func() {
			// Three shardable parts, three shards: nine shard queries.
			done <- get(t, sharded, "query", url.Values{"query": {`sum(a) + sum(b) + sum(c)`}, "time": {"1700001800"}})
		}()
		for sent := int64(0); sent < 9; sent++ {
			synctest.Wait()
			require.Equal(t, min(3, 9-sent), inFlight.Load(), "after %d answers", sent)
			release <- struct{}{}
		}
		got := <-done
		require.Equal(t, http.StatusOK, got.status, got.body)
		require.Equal(t, map[string][][2]float64{"map[]": {{1700001800000, 18}}}, got.series, "3 parts × 3 shards × 2")
		require.Equal(t, int64(3), most.Load())
		require.Equal(t, int64(9), started.Load())
		require.Equal(t, 1.0, testutil.ToFloat64(sharded.(*shardingRoundTripper).shardedQueries))
		require.Equal(t, 9.0, testutil.ToFloat64(sharded.(*shardingRoundTripper).shardQueries))
	})
}

// Native histograms cannot be merged from Prometheus' JSON: the query is asked again, unsharded.
func TestSharding_NativeHistogramsAreAskedAgainUnsharded(t *testing.T) {
	ds := newDownstream(t)
	sharded := newSharding(t, ds, 4, prometheus.NewRegistry())
	for _, path := range []string{"query", "query_range"} {
		params := url.Values{"query": {`sum(rate(native_latency_seconds[5m]))`}, "time": {instantAt30m},
			"start": {rfc(dataStart.Add(10 * time.Minute))}, "end": {rfc(dataEnd)}, "step": {"60"}}
		if path == "query" {
			params.Del("start")
			params.Del("end")
			params.Del("step")
		} else {
			params.Del("time")
		}
		want := get(t, ds, path, params)
		ds.sent()
		got := get(t, sharded, path, params)
		requireSamePassedThrough(t, want, got)
		require.Contains(t, got.body, `"histogram`)
		sent := ds.sent()
		require.Equal(t, params.Get("query"), sent[len(sent)-1], "the last request is the unsharded query")
	}
	require.Equal(t, 2.0, testutil.ToFloat64(sharded.(*shardingRoundTripper).unshardedQueries.WithLabelValues(reasonNativeHistograms)))
}

// The shards' warnings and infos are merged, each once, as the unsharded query reports them.
func TestSharding_MergesAnnotations(t *testing.T) {
	ds := newDownstream(t)
	sharded := newSharding(t, ds, 4, prometheus.NewRegistry())
	params := url.Values{"query": {`sum by (job) (rate(temperature[5m]))`}, "time": {instantAt30m}}
	infos := func(a answer) []string {
		var envelope struct {
			Infos []string `json:"infos"`
		}
		require.NoError(t, json.Unmarshal([]byte(a.body), &envelope))
		return envelope.Infos
	}
	want := get(t, ds, "query", params)
	require.NotEmpty(t, infos(want), "rate over a gauge is reported")
	got := get(t, sharded, "query", params)
	requireSameAnswer(t, want, got, approximate)
	require.Equal(t, infos(want), infos(got))
}

// Every shard query is a plain GET of the Prometheus API that a querier answers: the query, its times
// written out, the request's timeout and lookback_delta, and the request's headers.
func TestSharding_ShardQueriesArePlainPrometheusRequests(t *testing.T) {
	ds := newDownstream(t)
	var (
		mu   sync.Mutex
		seen []*http.Request
	)
	recording := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		return ds.RoundTrip(r)
	})
	sharded := newSharding(t, recording, 3, prometheus.NewRegistry())
	form := url.Values{"query": {`sum by (instance) (http_requests_total)`}, "start": {"1700000600.5"}, "end": {rfc(dataEnd)}, "step": {"1m30s"},
		"timeout": {"30s"}, "lookback_delta": {"1m"}}
	req, err := http.NewRequest(http.MethodPost, "http://frontend/prometheus/api/v1/query_range", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(tenant.OrgIDHeader, testTenant)
	req.Header.Set("Accept-Encoding", "gzip")
	got := roundTrip(t, sharded, req)

	require.Len(t, seen, 3)
	for _, r := range seen {
		require.Equal(t, http.MethodGet, r.Method)
		require.Equal(t, "/prometheus/api/v1/query_range", r.URL.Path)
		require.Zero(t, r.ContentLength)
		require.Empty(t, r.Header.Get("Content-Type"))
		require.Empty(t, r.Header.Get("Accept-Encoding"), "the frontend reads the answer itself")
		require.Equal(t, testTenant, r.Header.Get(tenant.OrgIDHeader))
		params := r.URL.Query()
		require.ElementsMatch(t, []string{"query", "start", "end", "step", "timeout", "lookback_delta"}, keysOf(params))
		require.Equal(t, "2023-11-14T22:23:20.5Z", params.Get("start"))
		require.Equal(t, rfc(dataEnd), params.Get("end"))
		require.Equal(t, "1m30s", params.Get("step"))
		require.Equal(t, "30s", params.Get("timeout"))
		require.Equal(t, "1m", params.Get("lookback_delta"))
		require.Contains(t, params.Get("query"), `__query_shard__="`)
	}
	// With a shorter lookback, series go missing sooner; the sharded answer follows it.
	requireSameAnswer(t, get(t, ds, "query_range", form), got, approximate)
}

func keysOf(v url.Values) []string {
	var out []string
	for k := range v {
		out = append(out, k)
	}
	return out
}
