package querysharding

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-metrics/strata/pkg/frontend"
	"github.com/strata-metrics/strata/pkg/promjson"
	shards "github.com/strata-metrics/strata/pkg/querysharding"
)

// shardJob is one shard query: a subtree evaluated over one shard of the series.
type shardJob struct {
	subtree int
	shard   shards.Shard
	query   string
}

// shardJobs returns the shard queries of p over count shards.
func shardJobs(p *plan, count uint64) []shardJob {
	jobs := make([]shardJob, 0, len(p.subtrees)*int(count))
	for i, t := range p.subtrees {
		for n := uint64(1); n <= count; n++ {
			s := shards.Shard{Index: n, Count: count}
			jobs = append(jobs, shardJob{subtree: i, shard: s, query: t.query(s)})
		}
	}
	return jobs
}

// runSharded sends the shard queries, at most inFlight at once, and answers req from their merged
// answers. The first shard that fails fails the query with its own answer (or error); the others are
// canceled. It returns errNativeHistograms when a shard answered with native histograms.
func (s *shardingRoundTripper) runSharded(req *http.Request, qr queryRange, p *plan, jobs []shardJob, inFlight int) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	var (
		answers = make([]shardAnswer, len(jobs))
		slots   = make(chan struct{}, inFlight)
		wg      sync.WaitGroup
		mu      sync.Mutex
		failed  *http.Response
		failErr error
	)
	fail := func(resp *http.Response, err error) {
		mu.Lock()
		defer mu.Unlock()
		// Only the first failure is the query's: the ones after it may come from canceling the rest.
		if failed == nil && failErr == nil {
			failed, failErr = resp, err
			cancel()
		}
	}
send:
	for i, job := range jobs {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break send
		}
		s.shardQueries.Inc()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			resp, err := s.next.RoundTrip(shardRequest(ctx, req, qr, job.query))
			if err != nil {
				fail(nil, err)
				return
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				fail(nil, fmt.Errorf("read the answer of shard query %s: %w", job.query, err))
				return
			}
			if resp.StatusCode/100 != 2 {
				fail(frontend.NewResponse(req, resp.StatusCode, resp.Header, body), nil)
				return
			}
			part := job.shard.String()
			if p.subtrees[job.subtree].keepLabels {
				part = ""
			}
			answer, err := decodeAnswer(body, part)
			if err != nil {
				if !errors.Is(err, errNativeHistograms) {
					err = fmt.Errorf("shard query %s: %w", job.query, err)
				}
				fail(nil, err)
				return
			}
			answers[i] = answer
		}()
	}
	wg.Wait()
	if failed != nil || failErr != nil {
		return failed, failErr
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return s.evaluate(req, qr, p, jobs, answers)
}

// shardRequest is the GET request for a shard query: the path and headers of the user's request, with
// the query's times written out (an instant query's "now" is the same for every shard).
func shardRequest(ctx context.Context, orig *http.Request, qr queryRange, query string) *http.Request {
	params := url.Values{"query": {query}}
	for k, v := range qr.params {
		params[k] = v
	}
	if qr.instant {
		params.Set("time", formatTime(qr.time))
	} else {
		params.Set("start", formatTime(qr.start))
		params.Set("end", formatTime(qr.end))
		params.Set("step", model.Duration(time.Duration(qr.step)*time.Millisecond).String())
	}
	r := orig.Clone(ctx)
	r.Method = http.MethodGet
	u := *orig.URL
	u.RawQuery = params.Encode()
	r.URL = &u
	r.RequestURI = ""
	r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
	r.Header.Del("Content-Type")
	r.Header.Del("Content-Length")
	// The frontend reads the shards' answers itself: they must come as plain JSON.
	r.Header.Del("Accept-Encoding")
	return r
}

// formatTime writes a time in milliseconds as RFC 3339, which the querier reads back exactly.
func formatTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// evaluate runs the outer query over the shards' answers and writes its answer as the querier would,
// with the shards' warnings and infos and its own.
func (s *shardingRoundTripper) evaluate(req *http.Request, qr queryRange, p *plan, jobs []shardJob, answers []shardAnswer) (*http.Response, error) {
	merged := &mergedAnswers{subtrees: make([][]promql.Series, len(p.subtrees))}
	var warnings, infos []string
	for i, job := range jobs {
		merged.subtrees[job.subtree] = append(merged.subtrees[job.subtree], answers[i].series...)
		warnings = appendNew(warnings, answers[i].warnings...)
		infos = appendNew(infos, answers[i].infos...)
	}
	for i, series := range merged.subtrees {
		slices.SortFunc(series, func(a, b promql.Series) int { return labels.Compare(a.Metric, b.Metric) })
		// topk and bottomk keep the series' own labels: two series that differ only in a label their
		// expression dropped (the metric name, for rate) are the error the unsharded query would have.
		if p.subtrees[i].keepLabels {
			for j := 1; j < len(series); j++ {
				if labels.Equal(series[j-1].Metric, series[j].Metric) {
					return errorResponse(req, http.StatusUnprocessableEntity, "execution", "vector cannot contain metrics with the same labelset")
				}
			}
		}
	}

	ctx := req.Context()
	outer := p.outer.String()
	opts := promql.NewPrometheusQueryOpts(false, outerLookback)
	var (
		qry promql.Query
		err error
	)
	if qr.instant {
		qry, err = s.engine.NewInstantQuery(ctx, merged, opts, outer, time.UnixMilli(qr.time))
	} else {
		qry, err = s.engine.NewRangeQuery(ctx, merged, opts, outer, time.UnixMilli(qr.start), time.UnixMilli(qr.end), time.Duration(qr.step)*time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("prepare the sharded query's outer query %s: %w", outer, err)
	}
	// The result's memory goes back to the engine's pools on Close: it is encoded before.
	defer qry.Close()
	res := qry.Exec(ctx)
	outerWarnings, outerInfos := res.Warnings.AsStrings("", 10, 10)
	warnings, infos = appendNew(warnings, outerWarnings...), appendNew(infos, outerInfos...)
	if res.Err != nil {
		return outerError(req, res.Err, warnings, infos)
	}
	data, err := promjson.AppendQueryData(nil, res.Value)
	if err != nil {
		return nil, fmt.Errorf("encode the sharded query's answer: %w", err)
	}
	body := promjson.AppendSuccess(nil, data, warnings, infos)
	return frontend.NewResponse(req, http.StatusOK, http.Header{"Content-Type": []string{"application/json"}}, body), nil
}

// outerError answers an evaluation that failed in the frontend the way the querier answers one.
func outerError(req *http.Request, err error, warnings, infos []string) (*http.Response, error) {
	var (
		canceled promql.ErrQueryCanceled
		timeout  promql.ErrQueryTimeout
	)
	switch {
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return nil, context.Canceled
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return nil, context.DeadlineExceeded
	}
	return jsonResponse(req, http.StatusUnprocessableEntity, apiResponse{
		Status: "error", ErrorType: "execution", Error: err.Error(), Warnings: warnings, Infos: infos,
	})
}

// appendNew appends to list the strings it does not hold yet: every shard repeats the same warnings.
func appendNew(list []string, items ...string) []string {
	for _, item := range items {
		if !slices.Contains(list, item) {
			list = append(list, item)
		}
	}
	return list
}
