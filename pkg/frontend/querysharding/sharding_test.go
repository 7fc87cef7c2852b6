package querysharding

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// newSharding returns the middleware in front of next, sharding every tenant's queries into count shards.
func newSharding(t *testing.T, next http.RoundTripper, count int, reg prometheus.Registerer) http.RoundTripper {
	t.Helper()
	limits := validation.DefaultLimits()
	limits.QueryShardingTotalShards = count
	cfg := Config{ParallelizeShardableQueries: true, MaxShardedQueries: 128}
	rt, err := New(cfg, validation.NewOverrides(limits, nil), next, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return rt
}

// answer is a decoded query answer: its status and, on success, its series by label set.
type answer struct {
	status     int
	body       string
	resultType string
	series     map[string][][2]float64 // label set → [ms, value] points
	warnings   []string
}

// get sends a GET of path with params as testTenant through rt and decodes the answer.
func get(t *testing.T, rt http.RoundTripper, path string, params url.Values) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://frontend/prometheus/api/v1/"+path+"?"+params.Encode(), nil)
	require.NoError(t, err)
	req.Header.Set(tenant.OrgIDHeader, testTenant)
	return roundTrip(t, rt, req)
}

func roundTrip(t *testing.T, rt http.RoundTripper, req *http.Request) answer {
	t.Helper()
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := answer{status: resp.StatusCode, body: string(body)}
	if resp.StatusCode != http.StatusOK {
		return out
	}
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var envelope struct {
		Status   string          `json:"status"`
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal(body, &envelope), string(body))
	require.Equal(t, "success", envelope.Status)
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if len(envelope.Data) == 0 || envelope.Data[0] != '{' {
		return out // not a query's answer
	}
	require.NoError(t, json.Unmarshal(envelope.Data, &data), string(body))
	out.resultType, out.warnings, out.series = data.ResultType, envelope.Warnings, map[string][][2]float64{}
	var series []struct {
		Metric map[string]string `json:"metric"`
		Value  []any             `json:"value"`
		Values [][]any           `json:"values"`
	}
	require.NoError(t, json.Unmarshal(data.Result, &series), string(body))
	for _, s := range series {
		key := fmt.Sprint(s.Metric)
		require.NotContains(t, out.series, key, "each label set once")
		if s.Value != nil {
			s.Values = [][]any{s.Value}
		}
		for _, p := range s.Values {
			v, err := strconv.ParseFloat(p[1].(string), 64)
			require.NoError(t, err)
			out.series[key] = append(out.series[key], [2]float64{math.Round(p[0].(float64) * 1000), v})
		}
	}
	return out
}

// requireSameAnswer checks that got has the series, points and values of want: exactly, or within the
// relative tolerance where float additions happen in another order.
func requireSameAnswer(t *testing.T, want, got answer, tolerance float64) {
	t.Helper()
	require.Equal(t, http.StatusOK, want.status, want.body)
	require.Equal(t, http.StatusOK, got.status, got.body)
	require.Equal(t, want.resultType, got.resultType)
	require.Equal(t, len(want.series), len(got.series), "series: want %v, got %v", keys(want.series), keys(got.series))
	for key, wantPoints := range want.series {
		gotPoints, ok := got.series[key]
		require.True(t, ok, "series %s is missing; got %v", key, keys(got.series))
		require.Equal(t, len(wantPoints), len(gotPoints), "points of %s:\nwant %v\ngot  %v", key, wantPoints, gotPoints)
		for i := range wantPoints {
			w, g := wantPoints[i], gotPoints[i]
			require.Equal(t, w[0], g[0], "timestamps of %s", key)
			switch {
			case math.IsNaN(w[1]):
				require.True(t, math.IsNaN(g[1]), "value at %v of %s: want NaN, got %v", w[0], key, g[1])
			case tolerance == 0 || math.IsInf(w[1], 0) || w[1] == 0:
				require.Equal(t, w[1], g[1], "value at %v of %s", w[0], key)
			default:
				require.InEpsilon(t, w[1], g[1], tolerance, "value at %v of %s", w[0], key)
			}
		}
	}
}

func keys(m map[string][][2]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// exact and approximate are the tolerances of the comparisons: counts, minima, maxima and the series
// topk picks are exact; sums are added in another order when merged from shards, so their last bits
// may differ.
const (
	exact       = 0
	approximate = 1e-9
)

// The sharded answer of every shardable aggregation equals the unsharded one, with Strata's own querier
// API answering the shard queries over real data.
func TestSharding_AnswersAsTheUnshardedQuery(t *testing.T) {
	ds := newDownstream(t)
	queries := []struct {
		query     string
		tolerance float64
	}{
		{`sum(rate(http_requests_total[5m]))`, approximate},
		{`sum by (job) (rate(http_requests_total[5m]))`, approximate},
		{`sum without (instance) (increase(http_requests_total[10m]))`, approximate},
		{`sum by (instance) (http_requests_total)`, approximate},
		{`count(http_requests_total)`, exact},
		{`count by (code) (http_requests_total)`, exact},
		{`count without (instance, code) (http_requests_total)`, exact},
		{`min by (job) (temperature)`, exact},
		{`max(temperature)`, exact},
		{`max without (instance) (temperature)`, exact},
		{`min by (instance) (resets(http_requests_total[15m]))`, exact},
		{`avg by (job) (temperature)`, approximate},
		{`avg(rate(http_requests_total[5m]))`, approximate},
		{`group by (job) (http_requests_total)`, exact},
		{`group(temperature)`, exact},
		{`topk(3, temperature)`, exact},
		{`bottomk by (job) (2, temperature)`, exact},
		{`topk without (instance) (1, temperature)`, exact},
		{`topk(4, rate(http_requests_total[5m]))`, exact},
		{`sum(nan_gauge)`, exact},
		{`max(nan_gauge)`, exact},
		{`min by (instance) (nan_gauge)`, exact},
		{`avg(nan_gauge)`, exact},
		{`count(nan_gauge > 50)`, exact},
		{`histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))`, approximate},
		{`histogram_quantile(0.5, sum by (le, job) (rate(request_duration_seconds_bucket[5m])))`, approximate},
		{`sum(rate(http_requests_total{code="500"}[5m])) / sum(rate(http_requests_total[5m]))`, approximate},
		{`count(count by (code) (http_requests_total))`, exact},
		{`sum by (job) (max by (job, instance) (temperature))`, approximate},
		{`sum(max_over_time(rate(http_requests_total[5m])[15m:1m]))`, approximate},
		{`sum(temperature * 2 - 10) > 100`, approximate},
		{`sum(rate(http_requests_total[5m] offset 10m))`, approximate},
		{`max(temperature @ 1700001800)`, exact},
		{`clamp_max(sum by (job) (changes(temperature[10m])), 30)`, exact},
		{`absent(sum(temperature{job="nope"}))`, exact},
	}
	instants := []time.Time{dataStart.Add(30 * time.Minute), dataStart.Add(40*time.Minute + 30*time.Second), dataEnd.Add(2 * time.Minute)}
	ranges := []struct{ start, end, step string }{
		{rfc(dataStart.Add(10 * time.Minute)), rfc(dataEnd.Add(5 * time.Minute)), "60"},
		{strconv.FormatInt(dataStart.Add(3*time.Minute).Unix(), 10), strconv.FormatInt(dataEnd.Unix(), 10), "37s"},
	}

	for _, count := range []int{3, 16} {
		sharded := newSharding(t, ds, count, prometheus.NewRegistry())
		for _, q := range queries {
			t.Run(fmt.Sprintf("%d shards/%s", count, q.query), func(t *testing.T) {
				for _, ts := range instants {
					params := url.Values{"query": {q.query}, "time": {rfc(ts)}}
					want := get(t, ds, "query", params)
					ds.sent()
					got := get(t, sharded, "query", params)
					requireSharded(t, ds.sent(), count)
					requireSameAnswer(t, want, got, q.tolerance)
				}
				for _, r := range ranges {
					params := url.Values{"query": {q.query}, "start": {r.start}, "end": {r.end}, "step": {r.step}}
					want := get(t, ds, "query_range", params)
					ds.sent()
					got := get(t, sharded, "query_range", params)
					requireSharded(t, ds.sent(), count)
					requireSameAnswer(t, want, got, q.tolerance)
					require.NotEmpty(t, want.series, "the query selects data")
				}
			})
		}
	}
}

// requireSharded checks that the queriers got shard queries only, a multiple of count of them.
func requireSharded(t *testing.T, sent []string, count int) {
	t.Helper()
	require.NotEmpty(t, sent)
	require.Zero(t, len(sent)%count, "%d shard queries for %d shards", len(sent), count)
	for _, q := range sent {
		require.Contains(t, q, `__query_shard__="`)
	}
}

func rfc(t time.Time) string { return t.Format(time.RFC3339Nano) }

// A series that a shard no longer returns must not keep its last value in the frontend's evaluation for
// the lookback delta, as it would over real samples: a group whose only series stopped is gone at the
// next step, sharded or not.
func TestSharding_ASeriesGoneAtAStepIsGoneThere(t *testing.T) {
	ds := newDownstream(t)
	sharded := newSharding(t, ds, 4, prometheus.NewRegistry())
	// temperature{job="db",instance="i3"} stops half-way; max by (instance, job) has it as its own group.
	params := url.Values{"query": {`max by (job, instance) (temperature{job="db"})`},
		"start": {rfc(dataStart)}, "end": {rfc(dataEnd)}, "step": {"60"}}
	want := get(t, ds, "query_range", params)
	got := get(t, sharded, "query_range", params)
	require.NotEmpty(t, ds.sent())
	requireSameAnswer(t, want, got, exact)
	stopped := got.series["map[instance:i3 job:db]"]
	require.NotEmpty(t, stopped)
	last := time.UnixMilli(int64(stopped[len(stopped)-1][0]))
	// The gauge's last sample is at 30m; the querier's lookback keeps it for less than 5 minutes, the
	// shard's answer ends there, and so does the merged one.
	require.False(t, last.Before(dataStart.Add(30*time.Minute)), last)
	require.True(t, last.Before(dataStart.Add(35*time.Minute)), last)
}
