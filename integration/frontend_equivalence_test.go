package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// sampleInterval is the generated data's scrape interval; Grafana's $__rate_interval depends on it.
const sampleInterval = time.Minute

// defaultMaxCacheFreshness is -query-frontend.max-cache-freshness's default: the results cache keeps no
// step newer than that.
const defaultMaxCacheFreshness = 10 * time.Minute

// TestFrontend_SplitCacheAndShardingGiveTheQueriersAnswer runs two Strata processes on the same week of
// node_exporter and HTTP service data (blocks in the bucket for the store-gateways, the last hours pushed
// to the ingesters): one whose query-frontend splits range queries by day, caches them and shards them,
// one that does none of it and so answers as its querier does. Every dashboard query of
// tools/loadgen/queries.yaml over every range it lists, and expressions chosen for what the frontend
// rewrites (offsets, @, subqueries, topk, absent, vector matching), must get the same answer from both:
// asked once cold and once warm from the results cache, and again one minute later, as a refreshed
// dashboard asks, after a new minute of samples arrived along with the last minutes of a target whose
// samples came late.
func TestFrontend_SplitCacheAndShardingGiveTheQueriersAnswer(t *testing.T) {
	const tenantID = "equivalence"
	newest := time.Now().Truncate(time.Minute) // the newest sample, held back until the refresh
	week := generateDashboardWeek(newest.Add(-7*24*time.Hour), newest)
	// The API server's samples of the last lag come late, with the refresh: by less than
	// max_cache_freshness, which is what the results cache must wait for.
	const lag = 5 * time.Minute
	late := func(s weekSeries, ts int64) bool {
		return ts >= newest.UnixMilli() || (s.labels.Get("instance") == "api-1:8080" && ts >= newest.Add(-lag).UnixMilli())
	}
	// Samples older than split are only in blocks; see TestLongTerm_SevenDayRangeQueryMatchesPrometheus.
	split := newest.Add(-170 * time.Minute).UnixMilli()

	blocks := writeBlocks(t, t.TempDir(), week, split)
	bucketOn, bucketOff := t.TempDir(), t.TempDir()
	var blockSamples uint64
	for _, b := range blocks {
		uploadBlock(t, b, bucketOn, tenantID)
		meta, err := blockstore.ReadMetaFromDir(uploadBlock(t, b, bucketOff, tenantID))
		require.NoError(t, err)
		blockSamples += meta.Stats.NumSamples
	}
	on := startStrata(t, t.TempDir(),
		"-blocks-storage.filesystem.dir="+bucketOn,
		"-compactor.compaction-interval=1s",
		"-blocks-storage.bucket-store.sync-interval=1s",
		"-query-frontend.split-queries-by-interval=24h",
		"-query-frontend.cache-results=true",
		"-query-frontend.parallelize-shardable-queries=true",
		"-query-frontend.query-sharding-total-shards=4",
	)
	off := startStrata(t, t.TempDir(),
		"-blocks-storage.filesystem.dir="+bucketOff,
		"-compactor.compaction-interval=1s",
		"-blocks-storage.bucket-store.sync-interval=1s",
		"-query-frontend.split-queries-by-interval=0",
		"-query-frontend.cache-results=false",
		"-query-frontend.parallelize-shardable-queries=false",
	)

	onTime := filterSamples(week, func(s weekSeries, ts int64) bool { return !late(s, ts) })
	for _, req := range recentWrites(onTime, split, 30*time.Minute) {
		for _, p := range []*strataProcess{on, off} {
			code, body := push(t, p.url("/api/v1/push"), tenantID, req)
			require.Equal(t, http.StatusNoContent, code, body)
		}
	}
	waitForCompactedBlocks(t, on, tenantID, blockSamples)
	waitForCompactedBlocks(t, off, tenantID, blockSamples)

	cases := equivalenceCases(t)
	// Evaluation times are 7 s past the samples' minutes, so that no window edge falls on a sample.
	firstEnd := newest.Add(-time.Minute + 7*time.Second)
	queried := time.Now()
	var first equivalenceTally
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { requireEquivalent(t, on, off, tenantID, c, firstEnd, false, &first) })
	}
	t.Logf("%d cases (%d range queries, %d instant) asked in %s: %d sharded, %d of them within a relative tolerance",
		len(cases), first.ranges, len(cases)-first.ranges, time.Since(queried).Round(time.Millisecond), first.sharded, first.tolerant)
	// Past newest + lag, the late samples would be older than max_cache_freshness: the cache could keep
	// answers without them, as it is meant to.
	require.Less(t, time.Since(newest), defaultMaxCacheFreshness-lag, "the cold and warm queries took too long for the late samples to be fresh")

	// A minute later the dashboard is refreshed, with the samples that arrived in the meantime.
	for _, req := range recentWrites(filterSamples(week, late), newest.Add(-lag).UnixMilli(), time.Hour) {
		for _, p := range []*strataProcess{on, off} {
			code, body := push(t, p.url("/api/v1/push"), tenantID, req)
			require.Equal(t, http.StatusNoContent, code, body)
		}
	}
	queried = time.Now()
	var refreshed equivalenceTally
	for _, c := range cases {
		t.Run(c.name+" refreshed", func(t *testing.T) {
			requireEquivalent(t, on, off, tenantID, c, firstEnd.Add(time.Minute), true, &refreshed)
		})
	}
	t.Logf("%d cases refreshed in %s: %d range queries answered partly from the cache", len(cases), time.Since(queried).Round(time.Millisecond), refreshed.partial)

	for _, name := range []string{"strata_frontend_sharded_queries_total", "strata_frontend_split_queries_total", "strata_frontend_query_result_cache_hits_total"} {
		require.Positive(t, metricTotal(t, on, name), "%s on the process that splits, caches and shards", name)
		require.Zero(t, metricTotal(t, off, name), "%s on the process that does none of it", name)
	}
}

// equivalenceCase is one range query, or an instant query.
type equivalenceCase struct {
	name string
	expr string
	// rng and step are the range and resolution of a range query ending at the time the test asks at;
	// with a step of 0 it is an instant query, at that time less rng.
	rng, step time.Duration
	// dashboard cases are plain dashboard queries: their refresh must be answered partly from the cache
	// when it keeps the grid (15 s steps), and anew otherwise.
	dashboard bool
	// uncached is set for expressions whose answer the cache must not keep (they read data at their
	// query's end, pinned by @ end()).
	uncached bool
	// readsAhead is how far past each step the expression reads (a negative offset): the cache keeps
	// only steps that far older than max_cache_freshness.
	readsAhead time.Duration
	// mayBeEmpty is set where both processes may answer nothing; elsewhere an empty answer would prove
	// nothing, and fails.
	mayBeEmpty bool
	// ordered is set for instant queries whose answer's order is specified (sort_desc).
	ordered bool
	// fails is set for queries that both processes must refuse alike (422).
	fails bool
}

// equivalenceCases returns every query of tools/loadgen/queries.yaml over each of its ranges, and the
// expressions below over each of those ranges and as instant queries.
func equivalenceCases(t *testing.T) []equivalenceCase {
	t.Helper()
	data, err := os.ReadFile("../tools/loadgen/queries.yaml")
	require.NoError(t, err)
	var file struct {
		Ranges []struct {
			Name  string `yaml:"name"`
			Range string `yaml:"range"`
			Step  string `yaml:"step"`
		} `yaml:"ranges"`
		Queries []struct {
			Name   string   `yaml:"name"`
			Expr   string   `yaml:"expr"`
			Ranges []string `yaml:"ranges"`
		} `yaml:"queries"`
	}
	require.NoError(t, yaml.Unmarshal(data, &file))
	type queryRange struct {
		name      string
		rng, step time.Duration
	}
	var ranges []queryRange
	for _, r := range file.Ranges {
		rng, err := model.ParseDuration(r.Range)
		require.NoError(t, err)
		step, err := model.ParseDuration(r.Step)
		require.NoError(t, err)
		ranges = append(ranges, queryRange{r.Name, time.Duration(rng), time.Duration(step)})
	}
	require.Len(t, ranges, 3, "queries.yaml's ranges")

	var cases []equivalenceCase
	for _, q := range file.Queries {
		for _, r := range ranges {
			if len(q.Ranges) > 0 && !slices.Contains(q.Ranges, r.name) {
				continue
			}
			cases = append(cases, equivalenceCase{name: "dashboard " + q.Name + " " + r.name, expr: grafanaExpand(q.Expr, r.rng, r.step),
				rng: r.rng, step: r.step, dashboard: true})
		}
	}
	require.GreaterOrEqual(t, len(cases), 36, "every dashboard query over every range")

	// A step that does not divide a day, over a range that is not a multiple of it: the split parts start
	// at other phases of the grid, and the query's last point is before the end asked for, which @ end()
	// means.
	ranges = append(ranges, queryRange{"2d/7m", 48 * time.Hour, 7 * time.Minute})
	exprs := []struct {
		expr       string
		uncached   bool          // reads data at the query's end (@ end()): the cache must not keep it
		readsAhead time.Duration // reads data this far past each step (offset -1h)
		// mayBeEmpty is set for expressions that answer nothing over some ranges: absent() while its
		// series exists, data before the week began or after it ends.
		mayBeEmpty bool
		ordered    bool // the order of an instant answer's samples is specified (sort_desc)
		fails      bool // both must answer with the same error
	}{
		{expr: `increase(http_requests_total{code="500"}[1h])`},
		{expr: `sum by (job) (irate(http_requests_total[5m]))`},
		{expr: `avg_over_time(node_load1[30m])`},
		{expr: `max by (region) (quantile_over_time(0.9, node_load1[1h]))`},
		{expr: `bottomk(3, rate(http_requests_total[10m]))`},
		{expr: `topk by (region) (1, node_load1)`},
		{expr: `count_values("load", round(node_load1))`},
		{expr: `absent(node_load1{instance="node-3:9100"})`, mayBeEmpty: true},
		{expr: `label_replace(rate(node_cpu_seconds_total{mode="user"}[5m]), "host", "$1", "instance", "(.*):.*")`},
		{expr: `sum by (cluster) (rate(node_network_transmit_bytes_total[10m] offset 1d))`},
		// Reads an hour past each step: the refreshed 1h range reads the newest sample at steps older
		// than max_cache_freshness.
		{expr: `node_filesystem_avail_bytes{fstype="tmpfs"} offset -1h`, readsAhead: time.Hour, mayBeEmpty: true},
		{expr: `max(node_memory_MemAvailable_bytes @ end())`, uncached: true},
		{expr: `sum(increase(http_requests_total[1h] @ start()))`, mayBeEmpty: true},
		{expr: `max_over_time(rate(http_requests_total{code="200"}[5m])[2h:10m])`},
		{expr: `sum by (instance, mode) (rate(node_cpu_seconds_total[5m])) / on (instance) group_left () sum by (instance) (rate(node_cpu_seconds_total[5m]))`},
		{expr: `sum without (cpu, mode) (rate(node_cpu_seconds_total[5m]))`},
		{expr: `count by (cluster) (rate(node_cpu_seconds_total{mode="idle"}[5m]) > 0.7) or vector(0)`},
		// Subqueries at the default resolution (the querier's evaluation interval) in every shard.
		{expr: `sum by (job) (max_over_time(rate(http_requests_total[5m])[1h:]))`},
		{expr: `max(timestamp(node_load1))`},
		// +Inf, -Inf and NaN (0/0): an average of them by sum / count must still be Prometheus'.
		{expr: `avg by (region) ((node_load1 - 2) / 0)`},
		// rate() of a gauge: every answer carries an info annotation.
		{expr: `sum by (region) (rate(node_load1[5m]))`},
		{expr: `count by (__name__) ({__name__=~"node_memory_.+"})`},
		{expr: `avg(node_load1)`},
		{expr: `scalar(sum(node_load1))`},
		{expr: `sort_desc(sum by (handler) (rate(http_requests_total[5m])))`, ordered: true},
		// Fails: receive and transmit have the same labels once rate() drops their names.
		{expr: `topk(2, rate({__name__=~"node_network_(receive|transmit)_bytes_total", device="eth0"}[5m]))`, fails: true},
	}
	for _, e := range exprs {
		for _, r := range ranges {
			cases = append(cases, equivalenceCase{name: e.expr + " " + r.name, expr: e.expr, rng: r.rng, step: r.step,
				uncached: e.uncached, readsAhead: e.readsAhead, mayBeEmpty: e.mayBeEmpty, fails: e.fails})
		}
		// At the end, where ingesters answer, and mid-week, where store-gateways do.
		for _, back := range []time.Duration{0, 3*24*time.Hour + 5*time.Hour} {
			cases = append(cases, equivalenceCase{name: fmt.Sprintf("%s instant %s before the end", e.expr, back), expr: e.expr, rng: back,
				mayBeEmpty: e.mayBeEmpty, ordered: e.ordered, fails: e.fails})
		}
	}
	return cases
}

// grafanaExpand replaces Grafana's interval variables in a dashboard query for a panel over rng at step,
// over data scraped every sampleInterval: $__rate_interval is max($__interval + scrape interval,
// 4 × scrape interval).
func grafanaExpand(expr string, rng, step time.Duration) string {
	return strings.NewReplacer(
		"$__rate_interval", model.Duration(max(step+sampleInterval, 4*sampleInterval)).String(),
		"$__interval", model.Duration(step).String(),
		"$__range", model.Duration(rng).String(),
	).Replace(expr)
}

// equivalenceTally counts what the cases exercised, for the test's log.
type equivalenceTally struct {
	ranges   int // range queries
	sharded  int // queries the frontend answered from shards
	tolerant int // sharded queries whose values were compared within a tolerance
	partial  int // range queries answered partly from the results cache
}

// requireEquivalent asks on (which splits, caches and shards) and off (which does none of it) c over
// the range or at the time that ends at end, and fails when their answers differ, or when on's results
// cache did not do what it should: see requireCacheUse.
func requireEquivalent(t *testing.T, on, off *strataProcess, tenantID string, c equivalenceCase, end time.Time, refresh bool, tally *equivalenceTally) {
	params := url.Values{"query": {c.expr}}
	path := "/prometheus/api/v1/query"
	if c.step == 0 {
		params.Set("time", formatTime(end.Add(-c.rng)))
	} else {
		path = "/prometheus/api/v1/query_range"
		params.Set("start", formatTime(end.Add(-c.rng)))
		params.Set("end", formatTime(end))
		params.Set("step", strconv.FormatFloat(c.step.Seconds(), 'f', -1, 64))
	}
	what := fmt.Sprintf("%s %v", path, params)
	shardedBefore := metricTotal(t, on, "strata_frontend_sharded_queries_total")
	// The frontend reads a POSTed form, as Grafana sends, and a query string alike: the warm query, a
	// GET, finds what this one cached.
	got, cacheHeader := askAPI(t, on, http.MethodPost, path, tenantID, params)
	sharded := metricTotal(t, on, "strata_frontend_sharded_queries_total") > shardedBefore
	want, _ := askAPI(t, off, http.MethodGet, path, tenantID, params)
	switch {
	case c.fails:
		require.Equal(t, http.StatusUnprocessableEntity, want.status, "%s: %s", what, want.err)
	case want.status != http.StatusOK:
		t.Fatalf("%s failed: %d %s", what, want.status, want.err)
	case !c.mayBeEmpty:
		require.NotEmpty(t, want.result, "%s: both answered nothing, which proves nothing", what)
	}

	// Sharded sums and averages add the same numbers in another order (per shard, then the shards'
	// sums; avg becomes sum / count instead of Prometheus' incremental mean), so their floats may differ
	// in the last bits: a relative difference of 1e-9 is allowed there, and nowhere else.
	tolerance := 0.0
	if sharded {
		tally.sharded++
		if sumsOrAverages(t, c.expr) {
			tolerance = 1e-9
			tally.tolerant++
		}
	}
	requireSameQueryAnswer(t, want, got, tolerance, c.ordered, what)
	if c.step == 0 {
		return
	}
	tally.ranges++
	if cacheHeader == "partial" {
		tally.partial++
	}
	if !c.fails {
		requireCacheUse(t, on, tenantID, c, path, params, got, cacheHeader, refresh)
	}
}

// requireCacheUse checks what on's results cache did for range query c, whose answer got carried
// cacheHeader: nothing cached before it was first asked; on a refresh, a dashboard query on the same grid
// answered partly from the cache, on another grid not at all. A query asked the first time is asked
// again: the second answer must be the first's exactly, and come partly from the cache unless nothing
// of it may be cached.
func requireCacheUse(t *testing.T, on *strataProcess, tenantID string, c equivalenceCase, path string, params url.Values, got queryAnswer, cacheHeader string, refresh bool) {
	t.Helper()
	switch {
	case !refresh:
		require.Equal(t, "miss", cacheHeader, "X-Strata-Cache of a query asked for the first time")
	case c.dashboard && c.step == 15*time.Second:
		// The range moved by a minute on the same grid: only the steps newer than max_cache_freshness
		// are asked again.
		require.Equal(t, "partial", cacheHeader, "X-Strata-Cache of a refreshed dashboard query at a 15s step")
		return
	case c.dashboard:
		// A minute is off the grid of 5m and 1h steps: nothing cached matches.
		require.Equal(t, "miss", cacheHeader, "X-Strata-Cache of a refreshed dashboard query at a %s step", c.step)
		return
	default:
		return
	}

	hitsBefore := metricTotal(t, on, "strata_frontend_query_result_cache_hits_total")
	again, cacheHeader := askAPI(t, on, http.MethodGet, path, tenantID, params)
	hits := metricTotal(t, on, "strata_frontend_query_result_cache_hits_total") - hitsBefore
	// An answer with warnings (sort_desc in a range query) may be partial or degraded: never cached.
	// Nor are steps newer than max_cache_freshness, less how far past them the expression reads.
	start, err := strconv.ParseFloat(params.Get("start"), 64)
	require.NoError(t, err)
	cacheableUntil := time.Now().Add(-defaultMaxCacheFreshness - c.readsAhead)
	if c.uncached || len(got.warnings) > 0 || time.UnixMilli(int64(start*1000)).After(cacheableUntil) {
		require.Equal(t, "miss", cacheHeader, "X-Strata-Cache of a query whose answer must not be cached")
		require.Zero(t, hits, "cache hits of a query whose answer must not be cached")
	} else {
		// The steps newer than max_cache_freshness are asked again: a range that ends now is answered
		// partly from the cache.
		require.Equal(t, "partial", cacheHeader, "X-Strata-Cache of the same query asked again")
		require.Positive(t, hits, "cache hits of the same query asked again")
	}
	requireSameQueryAnswer(t, got, again, 0, c.ordered, fmt.Sprintf("%s %v asked again", path, params))
}

// sumsOrAverages reports whether expr sums or averages, which sharding does in another order.
func sumsOrAverages(t *testing.T, expr string) bool {
	t.Helper()
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	require.NoError(t, err)
	found := false
	parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
		if agg, ok := node.(*parser.AggregateExpr); ok && (agg.Op == parser.SUM || agg.Op == parser.AVG) {
			found = true
		}
		return nil
	})
	return found
}

// queryAnswer is a query's answer normalised for comparison: its result a line per series (labels, then
// "<unix ms>:<value>" points) in the answer's order, and its annotations; or its error.
type queryAnswer struct {
	status     int
	errorType  string
	err        string
	resultType string
	result     string
	warnings   []string
	infos      []string
}

// askAPI asks path of p as tenantID, with a GET or as Grafana does, with a POSTed form, and returns the
// normalised answer and the X-Strata-Cache header.
func askAPI(t *testing.T, p *strataProcess, method, path, tenantID string, params url.Values) (queryAnswer, string) {
	t.Helper()
	var (
		req *http.Request
		err error
	)
	if method == http.MethodPost {
		req, err = http.NewRequest(method, p.url(path), strings.NewReader(params.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, err = http.NewRequest(method, p.url(path)+"?"+params.Encode(), nil)
		require.NoError(t, err)
	}
	req.Header.Set("X-Scope-OrgID", tenantID)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var envelope struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
		Infos    []string `json:"infos"`
	}
	require.NoError(t, json.Unmarshal(body, &envelope), "%s %v: %d %s", path, params, resp.StatusCode, body)
	answer := queryAnswer{status: resp.StatusCode, errorType: envelope.ErrorType, err: envelope.Error,
		resultType: envelope.Data.ResultType, warnings: envelope.Warnings, infos: envelope.Infos}
	if resp.StatusCode != http.StatusOK {
		require.Equal(t, "error", envelope.Status, "%s %v: %d %s", path, params, resp.StatusCode, body)
		return answer, resp.Header.Get("X-Strata-Cache")
	}
	require.Equal(t, "success", envelope.Status, "%s %v: %s", path, params, body)
	var lines []string
	switch envelope.Data.ResultType {
	case "matrix":
		var m []matrixSeries
		require.NoError(t, json.Unmarshal(envelope.Data.Result, &m))
		for _, s := range m {
			var b strings.Builder
			b.WriteString(seriesKey(s.Metric))
			for _, p := range s.Values {
				fmt.Fprintf(&b, " %d:%s", p.millis(t), p[1])
			}
			lines = append(lines, b.String())
		}
	case "vector":
		var v []vectorSample
		require.NoError(t, json.Unmarshal(envelope.Data.Result, &v))
		for _, s := range v {
			lines = append(lines, fmt.Sprintf("%s %d:%s", seriesKey(s.Metric), s.Value.millis(t), s.Value[1]))
		}
	case "scalar":
		var p point
		require.NoError(t, json.Unmarshal(envelope.Data.Result, &p))
		lines = append(lines, fmt.Sprintf("scalar %d:%s", p.millis(t), p[1]))
	default:
		t.Fatalf("%s %v: unexpected result type %q", path, params, envelope.Data.ResultType)
	}
	answer.result = strings.Join(lines, "\n")
	return answer, resp.Header.Get("X-Strata-Cache")
}

// seriesKey names a series in one word, also when it has no labels (sum without by).
func seriesKey(metric map[string]string) string {
	return "{" + labelsKey(metric) + "}"
}

// requireSameQueryAnswer fails when got differs from want: another result type or annotations, series or
// points, or values beyond the relative tolerance. With ordered, the series must also come in the same
// order.
func requireSameQueryAnswer(t *testing.T, want, got queryAnswer, tolerance float64, ordered bool, what string) {
	t.Helper()
	require.Equal(t, [3]any{want.status, want.errorType, want.err}, [3]any{got.status, got.errorType, got.err}, "%s: status, error type and error", what)
	require.Equal(t, want.resultType, got.resultType, what)
	require.Equal(t, want.warnings, got.warnings, what)
	require.Equal(t, want.infos, got.infos, what)
	// answerDifferences calls want "Prometheus" and got "Strata".
	if diff := answerDifferences(want.result, got.result, tolerance); diff != "" {
		t.Fatalf("%s: the answers differ (relative tolerance %g); \"Prometheus\" below is the expected answer, \"Strata\" the one checked:\n%s", what, tolerance, diff)
	}
	if ordered {
		order := func(result string) []string {
			var keys []string
			for _, line := range strings.Split(result, "\n") {
				keys = append(keys, strings.Fields(line)[0])
			}
			return keys
		}
		require.Equal(t, order(want.result), order(got.result), what)
	}
}

// metricTotal returns the sum of a metric's series on p's /metrics; 0 when p does not expose it.
func metricTotal(t *testing.T, p *strataProcess, name string) float64 {
	t.Helper()
	textParser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := textParser.TextToMetricFamilies(strings.NewReader(getText(t, p.url("/metrics"))))
	require.NoError(t, err)
	family, ok := families[name]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range family.GetMetric() {
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		}
	}
	return total
}

// filterSamples returns the series of week with only the samples keep accepts.
func filterSamples(week []weekSeries, keep func(s weekSeries, ts int64) bool) []weekSeries {
	out := make([]weekSeries, 0, len(week))
	for _, s := range week {
		kept := weekSeries{labels: s.labels}
		for _, p := range s.samples {
			if keep(s, p.Timestamp) {
				kept.samples = append(kept.samples, p)
			}
		}
		out = append(out, kept)
	}
	return out
}

// generateDashboardWeek returns the series the dashboard queries of tools/loadgen/queries.yaml read, one
// sample a minute from start to end: 62 series of three node_exporter targets and of an HTTP service
// with classic histograms, on one of them and on an API server. One target starts mid-week, another
// stops two days before the end, and a filesystem is unmounted 90 minutes before the end, where only
// ingesters have the data: series that end do so with a staleness marker, as Prometheus writes it.
// Counters restart from 0 when their process restarts, twice a week or so. Only the timestamps change
// from run to run.
func generateDashboardWeek(start, end time.Time) []weekSeries {
	rng := rand.New(rand.NewPCG(20261214, 11))
	const day = 24 * 60
	last := int(end.Sub(start) / time.Minute) // the minute of the newest sample
	var week []weekSeries
	// add appends a series whose i-th value is at minute from+i, and a staleness marker after the last
	// one when that is before the end.
	add := func(from int, values []float64, name string, nameValues ...string) {
		s := weekSeries{labels: labels.FromStrings(append([]string{"__name__", name}, nameValues...)...)}
		if from+len(values)-1 < last {
			values = append(values, math.Float64frombits(value.StaleNaN))
		}
		for i, v := range values {
			s.samples = append(s.samples, prompb.Sample{Timestamp: start.Add(time.Duration(from+i) * time.Minute).UnixMilli(), Value: v})
		}
		week = append(week, s)
	}
	// counter returns a counter's values: it starts at initial and adds increment() every minute, except
	// at restarts, where it starts again from 0.
	counter := func(restarts []bool, initial float64, increment func() float64) []float64 {
		values := make([]float64, len(restarts))
		v := initial
		for i, restart := range restarts {
			if restart {
				v = 0
			} else if i > 0 {
				v += increment()
			}
			values[i] = v
		}
		return values
	}
	gauge := func(n int, value func(i int) float64) []float64 {
		values := make([]float64, n)
		for i := range values {
			values[i] = value(i)
		}
		return values
	}
	// restartMinutes returns, for each minute of a process that runs n minutes, whether it restarted then.
	restartMinutes := func(n int) []bool {
		out := make([]bool, n)
		for range 2 {
			out[1+rng.IntN(n-1)] = true
		}
		return out
	}
	// addHTTPService adds the HTTP service series of a target: requests by handler and code, and their
	// latency buckets.
	addHTTPService := func(from int, restarts []bool, target []string) {
		for _, handler := range []string{"/api/v1/push", "/api/v1/query"} {
			ls := append([]string{"handler", handler}, target...)
			var initial float64
			if from == 0 {
				initial = float64(rng.IntN(50_000))
			}
			add(from, counter(restarts, initial, func() float64 { return float64(40 + rng.IntN(40)) }), "http_requests_total", append([]string{"code", "200"}, ls...)...)
			add(from, counter(restarts, initial/100, func() float64 { return float64(rng.IntN(3)) }), "http_requests_total", append([]string{"code", "500"}, ls...)...)
			// Cumulative buckets: each minute's requests fall in 0.25s, 1s or above.
			var buckets [3][]float64
			var fast, mid, all float64
			for _, restart := range restarts {
				if restart {
					fast, mid, all = 0, 0, 0
				} else {
					n := rng.IntN(60)
					f := rng.IntN(n + 1)
					m := rng.IntN(n - f + 1)
					fast, mid, all = fast+float64(f), mid+float64(f+m), all+float64(n)
				}
				buckets[0], buckets[1], buckets[2] = append(buckets[0], fast), append(buckets[1], mid), append(buckets[2], all)
			}
			for i, le := range []string{"0.25", "1", "+Inf"} {
				add(from, buckets[i], "http_request_duration_seconds_bucket", append([]string{"le", le}, ls...)...)
			}
		}
	}

	nodes := []struct {
		instance, cluster, region, env string
		from, to                       int // minutes
		http                           bool
	}{
		{"node-1:9100", "prod-eu", "eu-west-1", "prod", 0, last, true},
		{"node-2:9100", "prod-eu", "eu-west-1", "prod", 0, 5*day + 3*60 + 41, false},
		// Off any day boundary, as node-2's end.
		{"node-3:9100", "dev-us", "us-east-1", "dev", 3*day + 11*60 + 17, last, false},
	}
	for _, n := range nodes {
		target := []string{"cluster", n.cluster, "env", n.env, "instance", n.instance, "job", "node", "region", n.region}
		restarts := restartMinutes(n.to - n.from + 1)
		count := len(restarts)
		for _, m := range []struct {
			mode  string
			share float64
		}{{"idle", 0.7}, {"system", 0.1}, {"user", 0.2}} {
			add(n.from, counter(restarts, 0, func() float64 { return 60 * m.share * (0.5 + rng.Float64()) }),
				"node_cpu_seconds_total", append([]string{"cpu", "0", "mode", m.mode}, target...)...)
		}
		total := float64(8+rng.IntN(9)) * (1 << 30)
		add(n.from, gauge(count, func(int) float64 { return total }), "node_memory_MemTotal_bytes", target...)
		add(n.from, gauge(count, func(i int) float64 {
			daily := math.Sin(2 * math.Pi * float64(n.from+i) / day)
			return math.Round(total * (0.5 + 0.2*daily + 0.05*rng.Float64()))
		}), "node_memory_MemAvailable_bytes", target...)
		add(n.from, gauge(count, func(int) float64 { return math.Round(400*rng.Float64()) / 100 }), "node_load1", target...)
		for _, d := range []struct {
			name, device string
			perMinute    int
		}{
			{"node_network_receive_bytes_total", "lo", 1 << 16},
			{"node_network_receive_bytes_total", "eth0", 1 << 24},
			{"node_network_transmit_bytes_total", "eth0", 1 << 22},
		} {
			add(n.from, counter(restarts, 0, func() float64 { return float64(rng.IntN(d.perMinute)) }), d.name, append([]string{"device", d.device}, target...)...)
		}
		add(n.from, counter(restarts, 0, func() float64 { return float64(rng.IntN(30_000)) / 1000 }),
			"node_disk_io_time_seconds_total", append([]string{"device", "sda"}, target...)...)
		for _, fs := range []struct{ device, fstype, mountpoint string }{{"/dev/sda1", "ext4", "/"}, {"tmpfs", "tmpfs", "/run"}} {
			ls := append([]string{"device", fs.device, "fstype", fs.fstype, "mountpoint", fs.mountpoint}, target...)
			mounted := count
			if n.instance == "node-1:9100" && fs.fstype == "tmpfs" {
				mounted = last - 90 - n.from
			}
			size := float64(20+rng.IntN(200)) * (1 << 30)
			used := size * rng.Float64() / 2
			add(n.from, gauge(mounted, func(int) float64 { return size }), "node_filesystem_size_bytes", ls...)
			add(n.from, gauge(mounted, func(int) float64 {
				used = math.Min(size, used+float64(rng.IntN(1<<20)))
				return size - used
			}), "node_filesystem_avail_bytes", ls...)
		}
		if n.http {
			addHTTPService(n.from, restarts, target)
		}
	}
	addHTTPService(0, restartMinutes(last+1), []string{"cluster", "prod-eu", "env", "prod", "instance", "api-1:8080", "job", "api", "region", "eu-west-1"})
	return week
}
