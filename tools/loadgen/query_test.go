package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQueryFile_BuiltInParses(t *testing.T) {
	jobs, err := parseQueryFile(defaultQueries, 15*time.Second)
	require.NoError(t, err)
	require.Len(t, jobs, 12*3)
	kinds := map[string]bool{}
	for _, j := range jobs {
		require.NotContains(t, j.expr, "$", j.key)
		require.LessOrEqual(t, int(j.rng/j.step)+1, maxPoints, j.key)
		for _, k := range []string{"rate(", "sum by", "histogram_quantile(", "topk(", ":5m]"} {
			if strings.Contains(j.expr, k) {
				kinds[k] = true
			}
		}
	}
	require.Len(t, kinds, 5, "the file covers rate, sum by, histogram_quantile, topk and a subquery")
	require.Equal(t, "cpu_busy_percent/1h", jobs[0].key)
	require.Contains(t, jobs[0].expr, "[60s]", "1h at 15s step: $__rate_interval is 4 × scrape interval")
	require.Equal(t, 7*24*time.Hour, jobs[2].rng)
	require.Contains(t, jobs[2].expr, "[3615s]", "7d at 1h step: $__rate_interval is step + scrape interval")
}

func TestQueryFile_RejectsBadInput(t *testing.T) {
	const ranges = "ranges:\n  - {name: 1h, range: 1h, step: 15s}\n"
	tests := []struct {
		name, file, wantErr string
	}{
		{name: "not yaml", file: "ranges: [", wantErr: "parse query file"},
		{name: "unknown field", file: ranges + "queries:\n  - {name: a, expr: up, step: 1m}\n", wantErr: "field step not found"},
		{name: "no queries", file: ranges, wantErr: "no queries"},
		{name: "query without expr", file: ranges + "queries:\n  - {name: a}\n", wantErr: `query "a" needs a name and an expr`},
		{name: "duplicate query", file: ranges + "queries:\n  - {name: a, expr: up}\n  - {name: a, expr: up}\n", wantErr: "defined twice"},
		{name: "unknown range", file: ranges + "queries:\n  - {name: a, expr: up, ranges: [2h]}\n", wantErr: `uses range "2h"`},
		{name: "bad duration", file: "ranges:\n  - {name: x, range: 1y, step: 1m}\nqueries:\n  - {name: a, expr: up}\n", wantErr: `invalid duration "1y"`},
		{name: "zero step", file: "ranges:\n  - {name: x, range: 1h, step: 0s}\nqueries:\n  - {name: a, expr: up}\n", wantErr: "positive range and step"},
		{name: "too many points", file: "ranges:\n  - {name: x, range: 7d, step: 15s}\nqueries:\n  - {name: a, expr: up}\n", wantErr: "40321 points"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseQueryFile([]byte(tt.file), 15*time.Second)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func matrixJSON(series ...string) string {
	return `{"status":"success","data":{"resultType":"matrix","result":[` + strings.Join(series, ",") + `]}}`
}

func TestCompareResults(t *testing.T) {
	a := `{"metric":{"job":"node","instance":"a"},"values":[[1700000000,"1"],[1700000015.5,"2.5"]]}`
	b := `{"metric":{"instance":"b","job":"node"},"values":[[1700000000,"NaN"]]}`
	tests := []struct {
		name, x, y, want string
	}{
		{name: "identical", x: matrixJSON(a, b), y: matrixJSON(a, b)},
		{name: "series order and label order do not matter", x: matrixJSON(a, b), y: matrixJSON(b,
			`{"metric":{"instance":"a","job":"node"},"values":[[1700000000.000,"1.0"],[1700000015.5,"2.5e0"]]}`)},
		{name: "tiny float difference", x: matrixJSON(a), y: matrixJSON(`{"metric":{"job":"node","instance":"a"},"values":[[1700000000,"1.0000000000001"],[1700000015.5,"2.5"]]}`)},
		{name: "value differs", x: matrixJSON(a), y: matrixJSON(`{"metric":{"job":"node","instance":"a"},"values":[[1700000000,"1"],[1700000015.5,"2.6"]]}`),
			want: `at 1700000015500ms: 2.5 vs 2.6`},
		{name: "timestamp differs", x: matrixJSON(a), y: matrixJSON(`{"metric":{"job":"node","instance":"a"},"values":[[1700000000,"1"],[1700000016,"2.5"]]}`),
			want: "point 1 at 1700000015500ms vs 1700000016000ms"},
		{name: "missing point", x: matrixJSON(a), y: matrixJSON(`{"metric":{"job":"node","instance":"a"},"values":[[1700000000,"1"]]}`),
			want: "2 points vs 1"},
		{name: "missing series", x: matrixJSON(a, b), y: matrixJSON(a), want: `series only in the first: {instance="b",job="node"}`},
		{name: "extra series", x: matrixJSON(b), y: matrixJSON(a, b), want: `series only in the second: {instance="a",job="node"}`},
		{name: "error answer", x: matrixJSON(a), y: `{"status":"error","error":"boom"}`, want: "boom"},
		{name: "vector vs matrix", x: matrixJSON(a), y: `{"status":"success","data":{"resultType":"vector","result":[]}}`, want: "result type matrix vs vector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compareResults([]byte(tt.x), []byte(tt.y), 1e-9)
			if tt.want == "" {
				require.Empty(t, got)
				return
			}
			require.Contains(t, got, tt.want)
		})
	}
}

// fakePromAPI answers query_range with one series whose value is value(query).
func fakePromAPI(t *testing.T, header string, value func(query string) string) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var tenants []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/prom/api/v1/query_range", r.URL.Path)
		require.NoError(t, r.ParseForm())
		for _, p := range []string{"query", "start", "end", "step"} {
			require.NotEmpty(t, r.Form.Get(p), p)
		}
		mu.Lock()
		tenants = append(tenants, r.Header.Get(header))
		mu.Unlock()
		_, _ = fmt.Fprint(w, matrixJSON(fmt.Sprintf(`{"metric":{"q":"x"},"values":[[%s,"%s"]]}`, r.Form.Get("end"), value(r.Form.Get("query")))))
	}))
	t.Cleanup(srv.Close)
	return srv, &tenants
}

func TestRunQueries_RecordsLatencyAndReportsMismatches(t *testing.T) {
	primary, primaryTenants := fakePromAPI(t, "X-Scope-OrgID", func(string) string { return "1" })
	other, otherTenants := fakePromAPI(t, "X-Scope-OrgID", func(q string) string {
		if strings.HasPrefix(q, "topk") {
			return "2"
		}
		return "1"
	})
	var cfg queryConfig
	cfg.RegisterFlags(newTestFlagSet())
	cfg.QueryURL, cfg.CompareURL, cfg.TenantID = primary.URL+"/prom", other.URL+"/prom", "team-a"
	cfg.Runs, cfg.Concurrency = 2*36, 3
	require.NoError(t, cfg.Validate())

	s, err := runQueries(context.Background(), cfg)
	require.ErrorContains(t, err, "3 queries returned different results")
	require.Equal(t, int64(72), s.Runs)
	require.Equal(t, 72, s.Latency.Count)
	require.Len(t, s.PerQuery, 36)
	for _, q := range s.PerQuery {
		require.Equal(t, 2, q.Latency.Count, q.Query)
	}
	require.Len(t, s.Mismatches, 3, "topk over three ranges")
	for _, m := range s.Mismatches {
		require.True(t, strings.HasPrefix(m.Query, "network_receive_top5/"), m.Query)
		require.Equal(t, int64(2), m.Count)
		require.Contains(t, m.First, "1 vs 2")
	}
	require.Len(t, *primaryTenants, 72)
	require.Equal(t, "team-a", (*primaryTenants)[0])
	require.Empty(t, (*otherTenants)[0], "no tenant header for the compare backend unless asked")
}

func TestRunQueries_TimeOffsetShiftsTheStepGrid(t *testing.T) {
	var (
		mu     sync.Mutex
		checks int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.NoError(t, r.ParseForm())
		start, err := strconv.ParseFloat(r.Form.Get("start"), 64)
		assert.NoError(t, err)
		end, err := strconv.ParseFloat(r.Form.Get("end"), 64)
		assert.NoError(t, err)
		step, err := strconv.ParseFloat(r.Form.Get("step"), 64)
		assert.NoError(t, err)
		endMs, stepMs := int64(math.Round(end*1000)), int64(math.Round(step*1000))
		assert.Equal(t, int64(3750), endMs%stepMs, "end is a step multiple plus the offset")
		assert.Zero(t, (endMs-int64(math.Round(start*1000)))%stepMs, "start stays on the same grid")
		mu.Lock()
		checks++
		mu.Unlock()
		_, _ = fmt.Fprint(w, matrixJSON())
	}))
	t.Cleanup(srv.Close)
	var cfg queryConfig
	cfg.RegisterFlags(newTestFlagSet())
	cfg.QueryURL, cfg.Runs, cfg.TimeOffset = srv.URL, 36, 3750*time.Millisecond
	require.NoError(t, cfg.Validate())
	_, err := runQueries(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, 36, checks)
}

func TestRunQueries_EndMsPinsTheRangeAndCacheHeadersAreCounted(t *testing.T) {
	pinned := time.Date(2026, 3, 1, 12, 34, 56, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.NoError(t, r.ParseForm())
		end, err := strconv.ParseFloat(r.Form.Get("end"), 64)
		assert.NoError(t, err)
		step, err := strconv.ParseFloat(r.Form.Get("step"), 64)
		assert.NoError(t, err)
		stepMs := int64(math.Round(step * 1000))
		assert.Equal(t, pinned.UnixMilli()/stepMs*stepMs, int64(math.Round(end*1000)), "end is the pinned time aligned to the step")
		switch {
		case stepMs == time.Hour.Milliseconds():
			w.Header().Set("X-Strata-Cache", "hit")
		case strings.HasPrefix(r.Form.Get("query"), "topk"):
			w.Header().Set("X-Strata-Cache", "miss")
		default:
			w.Header().Set("X-Strata-Cache", "partial")
		}
		_, _ = fmt.Fprint(w, matrixJSON())
	}))
	t.Cleanup(srv.Close)
	var cfg queryConfig
	cfg.RegisterFlags(newTestFlagSet())
	cfg.QueryURL, cfg.Runs, cfg.EndMs, cfg.Concurrency = srv.URL, 36, pinned.UnixMilli(), 2
	require.NoError(t, cfg.Validate())
	s, err := runQueries(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"hit": 12, "miss": 2, "partial": 22}, s.Cache)
	for _, q := range s.PerQuery {
		require.Len(t, q.Cache, 1, q.Query)
		if strings.HasSuffix(q.Query, "/7d") {
			require.Equal(t, map[string]int64{"hit": 1}, q.Cache, q.Query)
		}
	}
}

func TestRunQueries_NoCacheHeaderNoCacheCounts(t *testing.T) {
	srv, _ := fakePromAPI(t, "X-Scope-OrgID", func(string) string { return "1" })
	var cfg queryConfig
	cfg.RegisterFlags(newTestFlagSet())
	cfg.QueryURL, cfg.Runs = srv.URL+"/prom", 36
	require.NoError(t, cfg.Validate())
	s, err := runQueries(context.Background(), cfg)
	require.NoError(t, err)
	require.Nil(t, s.Cache, "Prometheus sends no X-Strata-Cache")
	for _, q := range s.PerQuery {
		require.Nil(t, q.Cache, q.Query)
	}
}
