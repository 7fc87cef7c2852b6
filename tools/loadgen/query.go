package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed queries.yaml
var defaultQueries []byte

// maxPoints is Prometheus' limit on points per series of a range query.
const maxPoints = 11000

// queryConfig configures the query mode.
type queryConfig struct {
	QueryURL         string
	CompareURL       string
	CompareHeader    string
	Tenant           tenantConfig
	TenantID         string
	QueriesPath      string
	ScrapeInterval   time.Duration
	Concurrency      int
	Duration         time.Duration
	Runs             int
	Timeout          time.Duration
	CompareTolerance float64
	TimeOffset       time.Duration
	EndMs            int64
}

// RegisterFlags registers the query mode's flags.
func (c *queryConfig) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.QueryURL, "query-url", "http://127.0.0.1:8080/prometheus", "Prometheus API base, the part before /api/v1")
	f.StringVar(&c.CompareURL, "compare-url", "", "second Prometheus API base; each query's result must match the first one's")
	f.StringVar(&c.CompareHeader, "compare-tenant-header", "", "tenant header for -compare-url (empty: none, as for Prometheus)")
	c.Tenant.RegisterFlags(f)
	f.StringVar(&c.TenantID, "tenant", "tenant-0", "tenant to query")
	f.StringVar(&c.QueriesPath, "queries", "", "query file (default: the built-in tools/loadgen/queries.yaml)")
	f.DurationVar(&c.ScrapeInterval, "scrape-interval", 15*time.Second, "scrape interval of the data, for $__rate_interval")
	f.IntVar(&c.Concurrency, "concurrency", 4, "queries in flight")
	f.DurationVar(&c.TimeOffset, "time-offset", 0, "shift each query's start and end by this much after aligning them to the step. Off the sample and step grids, no window edge falls on a sample or a subquery step, where Prometheus 2 (windows closed on the left) and 3 (open) differ")
	f.Int64Var(&c.EndMs, "end-ms", 0, "ask every query as if at this time (unix ms) instead of now: its range ends there, aligned to the step as Grafana does. Two runs a minute apart are a dashboard's refresh")
	f.DurationVar(&c.Duration, "duration", 3*time.Minute, "how long to run queries")
	f.IntVar(&c.Runs, "runs", 0, "stop after this many query runs (0: run for -duration)")
	f.DurationVar(&c.Timeout, "timeout", 2*time.Minute, "timeout of one query")
	f.Float64Var(&c.CompareTolerance, "compare-tolerance", 1e-9, "relative difference under which two values are equal (sums in a different order differ in the last bits)")
}

// Validate reports the first invalid flag.
func (c *queryConfig) Validate() error {
	for _, u := range []string{c.QueryURL, c.CompareURL} {
		if u == "" {
			continue
		}
		if err := checkURL(u); err != nil {
			return err
		}
	}
	switch {
	case c.QueryURL == "":
		return errors.New("-query-url is required")
	case c.Concurrency < 1:
		return fmt.Errorf("-concurrency must be at least 1, got %d", c.Concurrency)
	case c.Duration <= 0 && c.Runs == 0:
		return errors.New("-duration must be positive unless -runs is set")
	case c.EndMs < 0:
		return fmt.Errorf("-end-ms must not be negative, got %d", c.EndMs)
	case c.Runs < 0 || c.Timeout <= 0 || c.ScrapeInterval <= 0 || c.CompareTolerance < 0:
		return errors.New("-runs, -compare-tolerance must not be negative; -timeout, -scrape-interval must be positive")
	}
	return nil
}

// queryFile is the layout of queries.yaml.
type queryFile struct {
	Ranges  []queryRange     `yaml:"ranges"`
	Queries []dashboardQuery `yaml:"queries"`
}

type queryRange struct {
	Name  string   `yaml:"name"`
	Range duration `yaml:"range"`
	Step  duration `yaml:"step"`
}

type dashboardQuery struct {
	Name   string   `yaml:"name"`
	Expr   string   `yaml:"expr"`
	Ranges []string `yaml:"ranges"` // empty: all ranges
}

// duration is a time.Duration that also reads whole days and weeks ("7d", "2w").
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	s := n.Value
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if num, ok := strings.CutSuffix(s, suffix); ok {
			if v, err := strconv.Atoi(num); err == nil {
				*d = duration(time.Duration(v) * unit)
				return nil
			}
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q: want e.g. 15s, 1h or 7d", n.Line, s)
	}
	*d = duration(v)
	return nil
}

// queryJob is one query over one range, its placeholders expanded.
type queryJob struct {
	key   string // name/range
	expr  string
	rng   time.Duration
	step  time.Duration
	index int
}

// parseQueryFile reads a query file into jobs, one per query and range.
func parseQueryFile(data []byte, scrapeInterval time.Duration) ([]queryJob, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f queryFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse query file: %w", err)
	}
	ranges := map[string]queryRange{}
	var names []string
	for _, r := range f.Ranges {
		switch rng, step := time.Duration(r.Range), time.Duration(r.Step); {
		case r.Name == "":
			return nil, errors.New("query file: a range has no name")
		case ranges[r.Name].Name != "":
			return nil, fmt.Errorf("query file: range %q is defined twice", r.Name)
		case rng <= 0 || step <= 0:
			return nil, fmt.Errorf("query file: range %q needs a positive range and step", r.Name)
		case int64(rng/step)+1 > maxPoints:
			return nil, fmt.Errorf("query file: range %q has %d points per series, Prometheus allows %d: use a larger step", r.Name, rng/step+1, maxPoints)
		}
		ranges[r.Name] = r
		names = append(names, r.Name)
	}
	if len(f.Queries) == 0 {
		return nil, errors.New("query file has no queries")
	}
	var jobs []queryJob
	seen := map[string]bool{}
	for _, q := range f.Queries {
		switch {
		case q.Name == "" || strings.TrimSpace(q.Expr) == "":
			return nil, fmt.Errorf("query file: query %q needs a name and an expr", q.Name)
		case seen[q.Name]:
			return nil, fmt.Errorf("query file: query %q is defined twice", q.Name)
		}
		seen[q.Name] = true
		use := q.Ranges
		if len(use) == 0 {
			use = names
		}
		for _, name := range use {
			r, ok := ranges[name]
			if !ok {
				return nil, fmt.Errorf("query file: query %q uses range %q, which is not among the ranges %v", q.Name, name, names)
			}
			step := time.Duration(r.Step)
			jobs = append(jobs, queryJob{key: q.Name + "/" + name, expr: expandVariables(q.Expr, step, time.Duration(r.Range), scrapeInterval),
				rng: time.Duration(r.Range), step: step, index: len(jobs)})
		}
	}
	if len(jobs) == 0 {
		return nil, errors.New("query file: no query has a range")
	}
	return jobs, nil
}

// expandVariables replaces Grafana's interval variables; $__rate_interval is
// max($__interval + scrape interval, 4 × scrape interval), so a rate always spans several samples.
func expandVariables(expr string, step, rng, scrape time.Duration) string {
	return strings.NewReplacer(
		"$__rate_interval", promDuration(max(step+scrape, 4*scrape)),
		"$__interval", promDuration(step),
		"$__range", promDuration(rng),
	).Replace(expr)
}

func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// cacheHeader is the header of Strata's query-frontend that says whether a range query's answer came
// from its results cache: hit, miss or partial.
const cacheHeader = "X-Strata-Cache"

// queryWorkerStats is one worker's tally, merged at the end.
type queryWorkerStats struct {
	latencies     [][]time.Duration  // by job index
	cache         []map[string]int64 // by job index: answers by cacheHeader value
	failed        map[string]int64
	compareFailed map[string]int64
	mismatches    map[string]*mismatch
}

// runQueries runs the jobs round-robin from -concurrency workers until -runs or -duration.
func runQueries(ctx context.Context, cfg queryConfig) (*querySummary, error) {
	data := defaultQueries
	if cfg.QueriesPath != "" {
		var err error
		if data, err = os.ReadFile(cfg.QueriesPath); err != nil {
			return nil, fmt.Errorf("read query file: %w", err)
		}
	}
	jobs, err := parseQueryFile(data, cfg.ScrapeInterval)
	if err != nil {
		return nil, err
	}
	if cfg.Runs == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	primary := newPromClient(cfg.QueryURL, cfg.Tenant.headerName(), cfg.TenantID, cfg.Timeout, cfg.Concurrency)
	var compare *promClient
	if cfg.CompareURL != "" {
		compare = newPromClient(cfg.CompareURL, cfg.CompareHeader, cfg.TenantID, cfg.Timeout, cfg.Concurrency)
	}

	var next atomic.Int64
	workers := make([]queryWorkerStats, cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range workers {
		st := &workers[w]
		*st = queryWorkerStats{latencies: make([][]time.Duration, len(jobs)), cache: make([]map[string]int64, len(jobs)), failed: map[string]int64{},
			compareFailed: map[string]int64{}, mismatches: map[string]*mismatch{}}
		wg.Go(func() {
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				if cfg.Runs > 0 && n >= int64(cfg.Runs) {
					return
				}
				runJob(ctx, jobs[n%int64(len(jobs))], primary, compare, cfg, st)
			}
		})
	}
	wg.Wait()

	s := &querySummary{FailedRequests: map[string]int64{}}
	if compare != nil {
		s.CompareFailed = map[string]int64{}
	}
	var all []time.Duration
	for _, job := range jobs {
		var ds []time.Duration
		var cache map[string]int64
		for w := range workers {
			ds = append(ds, workers[w].latencies[job.index]...)
			for k, v := range workers[w].cache[job.index] {
				if cache == nil {
					cache = map[string]int64{}
				}
				if s.Cache == nil {
					s.Cache = map[string]int64{}
				}
				cache[k] += v
				s.Cache[k] += v
			}
		}
		all = append(all, ds...)
		s.PerQuery = append(s.PerQuery, queryLatency{Query: job.key, Latency: latencyOf(ds), Cache: cache})
	}
	s.Latency = latencyOf(all)
	mismatches := map[string]*mismatch{}
	for w := range workers {
		for k, v := range workers[w].failed {
			s.FailedRequests[k] += v
		}
		for k, v := range workers[w].compareFailed {
			s.CompareFailed[k] += v
		}
		for k, m := range workers[w].mismatches {
			if mismatches[k] == nil {
				mismatches[k] = &mismatch{Query: k, First: m.First}
			}
			mismatches[k].Count += m.Count
		}
	}
	for _, k := range slices.Sorted(maps.Keys(mismatches)) {
		s.Mismatches = append(s.Mismatches, *mismatches[k])
	}
	s.Runs = int64(s.Latency.Count)
	for _, v := range s.FailedRequests {
		s.Runs += v
	}
	if len(s.Mismatches) > 0 {
		return s, fmt.Errorf("%d queries returned different results from -query-url and -compare-url", len(s.Mismatches))
	}
	return s, nil
}

// runJob runs one query over a range ending now, aligned to the step as Grafana does so that
// both backends see the same evaluation times, and compares the results when asked to.
func runJob(ctx context.Context, job queryJob, primary, compare *promClient, cfg queryConfig, st *queryWorkerStats) {
	stepMs := job.step.Milliseconds()
	now := time.Now().UnixMilli()
	if cfg.EndMs > 0 {
		now = cfg.EndMs
	}
	end := now/stepMs*stepMs + cfg.TimeOffset.Milliseconds()
	params := url.Values{
		"query": {job.expr},
		"start": {formatAPITime(end - job.rng.Milliseconds())},
		"end":   {formatAPITime(end)},
		"step":  {strconv.FormatFloat(job.step.Seconds(), 'f', -1, 64)},
	}
	start := time.Now()
	status, body, header, err := primary.post(ctx, "/api/v1/query_range", params)
	if ctx.Err() != nil {
		return // abandoned at the end of the run, not answered
	}
	if err != nil || status != 200 {
		st.failed[statusKey(status, err)]++
		return
	}
	st.latencies[job.index] = append(st.latencies[job.index], time.Since(start))
	if v := header.Get(cacheHeader); v != "" {
		if st.cache[job.index] == nil {
			st.cache[job.index] = map[string]int64{}
		}
		st.cache[job.index][v]++
	}
	if compare == nil {
		return
	}
	cStatus, cBody, _, err := compare.post(ctx, "/api/v1/query_range", params)
	if ctx.Err() != nil {
		return
	}
	if err != nil || cStatus != 200 {
		st.compareFailed[statusKey(cStatus, err)]++
		return
	}
	if diff := compareResults(body, cBody, cfg.CompareTolerance); diff != "" {
		m := st.mismatches[job.key]
		if m == nil {
			m = &mismatch{Query: job.key, First: diff}
			st.mismatches[job.key] = m
		}
		m.Count++
	}
}
