package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// verifyConfig configures the verify mode.
type verifyConfig struct {
	StatePath   string
	QueryURL    string
	Tenant      tenantConfig
	Concurrency int
	MaxSeries   int
	Timeout     time.Duration
}

// RegisterFlags registers the verify mode's flags.
func (c *verifyConfig) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.StatePath, "state", "", "state file written by `loadgen write -state`")
	f.StringVar(&c.QueryURL, "query-url", "http://127.0.0.1:8080/prometheus", "Prometheus API base, the part before /api/v1")
	c.Tenant.RegisterFlags(f)
	f.IntVar(&c.Concurrency, "concurrency", 4, "queries in flight")
	f.IntVar(&c.MaxSeries, "max-series", 10000, "check every series when there are at most this many, else an evenly spread sample of this many")
	f.DurationVar(&c.Timeout, "timeout", time.Minute, "timeout of one query")
}

// Validate reports the first invalid flag.
func (c *verifyConfig) Validate() error {
	switch {
	case c.StatePath == "":
		return errors.New("-state is required: the file `loadgen write -state` wrote")
	case c.Concurrency < 1 || c.MaxSeries < 1:
		return fmt.Errorf("-concurrency and -max-series must be at least 1, got %d and %d", c.Concurrency, c.MaxSeries)
	case c.Timeout <= 0:
		return fmt.Errorf("-timeout must be positive, got %s", c.Timeout)
	}
	return checkURL(c.QueryURL)
}

// verifyJob is one series to read back.
type verifyJob struct {
	tenant string
	series *seriesState
}

// seriesResult is what reading one series found.
type seriesResult struct {
	expected     int
	missing      int
	firstMissing int64
	failed       string // status key when the query failed
	latency      time.Duration
}

const maxMissingExamples = 10

// runVerify reads back the acknowledged samples of the state file's series and reports every one
// that is missing. It queries each series raw, `{labels}[range]` at the time of its last sample,
// which returns exactly the stored samples.
func runVerify(ctx context.Context, cfg verifyConfig) (*verifySummary, error) {
	st, err := readState(cfg.StatePath)
	if err != nil {
		return nil, err
	}
	var all []verifyJob
	for _, t := range st.Tenants {
		for i := range t.Series {
			if len(t.Series[i].Acked) > 0 {
				all = append(all, verifyJob{tenant: t.Name, series: &t.Series[i]})
			}
		}
	}
	jobs := all
	if len(all) > cfg.MaxSeries {
		jobs = make([]verifyJob, cfg.MaxSeries)
		for i := range jobs {
			jobs[i] = all[i*len(all)/cfg.MaxSeries]
		}
	}

	clients := map[string]*promClient{}
	for _, t := range st.Tenants {
		clients[t.Name] = newPromClient(cfg.QueryURL, cfg.Tenant.headerName(), t.Name, cfg.Timeout, cfg.Concurrency)
	}
	results := make([]seriesResult, len(jobs))
	queue := make(chan int)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for i := range queue {
				results[i] = verifySeries(ctx, clients[jobs[i].tenant], jobs[i].series, st.RoundsMs)
			}
		})
	}
	for i := range jobs {
		if ctx.Err() != nil {
			break
		}
		queue <- i
	}
	close(queue)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	s := &verifySummary{SeriesRecorded: len(all), SeriesChecked: len(jobs), FailedRequests: map[string]int64{}}
	var latencies []time.Duration
	for i, r := range results {
		if r.failed != "" {
			s.SeriesUnverified++
			s.FailedRequests[r.failed]++
			continue
		}
		latencies = append(latencies, r.latency)
		s.SamplesExpected += int64(r.expected)
		s.SamplesMissing += int64(r.missing)
		if r.missing == 0 {
			continue
		}
		s.SeriesWithMissing++
		if len(s.Examples) < maxMissingExamples {
			s.Examples = append(s.Examples, missingSeries{Tenant: jobs[i].tenant, Series: selector(jobs[i].series.Labels),
				Missing: r.missing, FirstMissing: r.firstMissing})
		}
	}
	s.Latency = latencyOf(latencies)
	switch {
	case s.SamplesMissing > 0:
		return s, fmt.Errorf("%d acknowledged samples are missing in %d series", s.SamplesMissing, s.SeriesWithMissing)
	case s.SeriesUnverified > 0:
		return s, fmt.Errorf("%d series could not be queried", s.SeriesUnverified)
	}
	return s, nil
}

// verifySeries queries one series' raw samples over the span of its acknowledged rounds.
func verifySeries(ctx context.Context, c *promClient, s *seriesState, roundsMs []int64) seriesResult {
	var expected []int64
	for _, r := range s.Acked {
		expected = append(expected, roundsMs[r[0]:r[1]+1]...)
	}
	first, last := expected[0], expected[len(expected)-1]
	// Range selectors are left-open since Prometheus 3 and closed before; one extra millisecond
	// includes the first sample either way.
	params := url.Values{
		"query": {fmt.Sprintf("%s[%dms]", selector(s.Labels), last-first+1)},
		"time":  {formatAPITime(last)},
	}
	start := time.Now()
	status, body, _, err := c.post(ctx, "/api/v1/query", params)
	res := seriesResult{expected: len(expected), latency: time.Since(start)}
	if err != nil || status != 200 {
		res.failed = statusKey(status, err)
		return res
	}
	typ, series, err := normalise(body)
	if err != nil || typ != "matrix" {
		res.failed = "bad response"
		return res
	}
	got := map[int64]bool{}
	for _, sr := range series {
		for _, p := range sr.points {
			got[p.ms] = true
		}
	}
	for _, ts := range expected {
		if !got[ts] {
			if res.missing == 0 {
				res.firstMissing = ts
			}
			res.missing++
		}
	}
	return res
}

// selector is the PromQL selector matching exactly the series with labels ls.
func selector(ls map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(ls)) {
		parts = append(parts, k+"="+strconv.Quote(ls[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}
