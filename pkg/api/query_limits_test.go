package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/validation"
)

func defaultTestLimits() validation.Limits { return validation.DefaultLimits() }

// Defects 1, 2 and 4 of issue 12: each of these queries took the process (out of memory) or a core
// (for minutes, past the timeout) with it. Each is now refused up front with the reason.
func TestQuery_HostileQueriesAreRefusedBeforeTheyRun(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	tests := map[string]struct {
		query      string
		status     int
		errorType  string
		errContain string
	}{
		"one subquery of 8.6 billion steps": {query: "count_over_time(vector(1)[100d:1ms])",
			status: http.StatusUnprocessableEntity, errorType: "execution", errContain: "err-strata-max-subquery-steps"},
		"nested subqueries": {query: "max_over_time(max_over_time(max_over_time(vector(1)[1h:1ms])[1h:1ms])[1h:1ms])",
			status: http.StatusUnprocessableEntity, errorType: "execution", errContain: "err-strata-max-subquery-steps"},
		"100k nested parentheses": {query: strings.Repeat("(", 100_000) + "m" + strings.Repeat(")", 100_000),
			status: http.StatusUnprocessableEntity, errorType: "execution", errContain: "err-strata-max-query-expression-size-bytes"},
		"1 MB of additions": {query: "m" + strings.Repeat(" + m", 250_000),
			status: http.StatusUnprocessableEntity, errorType: "execution", errContain: "err-strata-max-query-expression-size-bytes"},
		"20k nested parentheses, under the size limit": {query: strings.Repeat("(", 20_000) + "m" + strings.Repeat(")", 20_000),
			status: http.StatusBadRequest, errorType: "bad_data", errContain: "nests brackets more than 1000 deep"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			methods := []string{http.MethodGet, http.MethodPost}
			if len(tc.query) > 500_000 {
				methods = methods[1:] // the HTTP server refuses such a URL itself (431)
			}
			for _, method := range methods {
				start := time.Now()
				code, resp := a.call(t, method, "/query", url.Values{"query": {tc.query}})
				require.Equal(t, tc.status, code, resp.Error)
				require.Equal(t, tc.errorType, resp.ErrorType)
				require.Contains(t, resp.Error, tc.errContain)
				require.Less(t, time.Since(start), 5*time.Second, "refused without evaluating")
			}
			code, resp := a.call(t, http.MethodPost, "/query_range", url.Values{"query": {tc.query},
				"start": {unixSeconds(dataStart)}, "end": {unixSeconds(dataEnd)}, "step": {"60"}})
			require.Equal(t, tc.status, code, resp.Error)
			require.Contains(t, resp.Error, tc.errContain)
		})
	}
}

func TestQueryRange_TotalQueryLengthLimit(t *testing.T) {
	limits := defaultTestLimits()
	require.NoError(t, limits.MaxTotalQueryLength.Set("10m"))
	a := newTestAPIWithLimits(t, testEngineConfig(), nil, limits)
	code, resp := a.call(t, http.MethodGet, "/query_range", url.Values{"query": {"up"},
		"start": {unixSeconds(dataEnd.Add(-time.Hour))}, "end": {unixSeconds(dataEnd)}, "step": {"60"}})
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Contains(t, resp.Error, "err-strata-max-total-query-length")
	require.Contains(t, resp.Error, "-query-frontend.max-total-query-length")
	code, _ = a.call(t, http.MethodGet, "/query_range", url.Values{"query": {"up"},
		"start": {unixSeconds(dataEnd.Add(-5 * time.Minute))}, "end": {unixSeconds(dataEnd)}, "step": {"60"}})
	require.Equal(t, http.StatusOK, code)
}

// blockingQueryable holds every Select until the query's context ends, and counts the Selects still running.
type blockingQueryable struct {
	started, running atomic.Int64
}

func (b *blockingQueryable) Querier(int64, int64) (storage.Querier, error) {
	return blockingQuerier{b}, nil
}

type blockingQuerier struct{ b *blockingQueryable }

func (q blockingQuerier) Select(ctx context.Context, _ bool, _ *storage.SelectHints, _ ...*labels.Matcher) storage.SeriesSet {
	q.b.started.Add(1)
	q.b.running.Add(1)
	defer q.b.running.Add(-1)
	<-ctx.Done()
	return storage.ErrSeriesSet(ctx.Err())
}

func (blockingQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (blockingQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (blockingQuerier) Close() error { return nil }

// Defect 3 of issue 12: with every evaluation slot held, further queries waited for one forever. The
// timeout now covers the wait, the answer is 503 (retry later), and the held queries' work stops at
// the timeout too.
func TestQuery_WaitForASlotAndEvaluationEndAtTheTimeout(t *testing.T) {
	cfg := testEngineConfig()
	cfg.MaxConcurrent = 1
	cfg.Timeout = 2 * time.Second
	blocking := &blockingQueryable{}
	a := newTestAPI(t, cfg, blocking)

	first := make(chan int, 1)
	go func() {
		code, _ := a.call(t, http.MethodGet, "/query", url.Values{"query": {"up"}})
		first <- code
	}()
	deadline := time.Now().Add(5 * time.Second)
	for blocking.started.Load() == 0 {
		require.True(t, time.Now().Before(deadline), "first query never selected")
		time.Sleep(time.Millisecond) // polling interval
	}
	start := time.Now()
	code, resp := a.call(t, http.MethodGet, "/query", url.Values{"query": {"up"}, "timeout": {"200ms"}})
	require.Equal(t, http.StatusServiceUnavailable, code, resp.Error)
	require.Equal(t, "timeout", resp.ErrorType)
	require.Less(t, time.Since(start), 1500*time.Millisecond, "answered before the slot was free")
	require.Equal(t, http.StatusServiceUnavailable, <-first)
	require.EqualValues(t, 1, blocking.started.Load(), "the second query never got a slot")
	for blocking.running.Load() != 0 {
		require.True(t, time.Now().Before(deadline), "the timed-out query's Select still runs")
		time.Sleep(time.Millisecond) // polling interval
	}

	// A shorter timeout parameter wins; a longer one cannot extend -querier.timeout.
	start = time.Now()
	code, _ = a.call(t, http.MethodGet, "/query", url.Values{"query": {"up"}, "timeout": {"1h"}})
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestMaxQueryLookback_OlderDataIsNotRead(t *testing.T) {
	limits := defaultTestLimits()
	// The test data spans dataStart..dataEnd, and the API's clock is dataEnd.
	lookback := dataEnd.Sub(dataStart) / 2
	require.NoError(t, limits.MaxQueryLookback.Set(lookback.String()))
	a := newTestAPIWithLimits(t, testEngineConfig(), nil, limits)
	full := newTestAPI(t, testEngineConfig(), nil)

	params := url.Values{"query": {"count_over_time(up[1h])"}, "start": {unixSeconds(dataStart)}, "end": {unixSeconds(dataEnd)}, "step": {"300"}}
	code, limited := a.call(t, http.MethodGet, "/query_range", params)
	require.Equal(t, http.StatusOK, code, limited.Error)
	_, unlimited := full.call(t, http.MethodGet, "/query_range", params)
	require.NotEqual(t, string(unlimited.Data), string(limited.Data))
	require.NotContains(t, string(limited.Data), unixSeconds(dataStart)+",", "nothing at the start of the data")

	code, before := a.call(t, http.MethodGet, "/query", url.Values{"query": {"up"}, "time": {unixSeconds(dataStart.Add(time.Minute))}})
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"resultType":"vector","result":[]}`, string(before.Data))
	code, series := a.call(t, http.MethodGet, "/series", url.Values{"match[]": {"up"}, "end": {unixSeconds(dataStart.Add(time.Minute))}})
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `[]`, string(series.Data))
}

func TestSeries_OverTheFetchedSeriesLimitIs422(t *testing.T) {
	limits := defaultTestLimits()
	limits.MaxFetchedSeriesPerQuery = 1
	db := openTestDB(t)
	a := newTestAPIWithLimits(t, testEngineConfig(), querier.NewFetchLimitedQueryable(db, validation.NewOverrides(limits, nil), 0), limits)
	code, resp := a.call(t, http.MethodGet, "/series", url.Values{"match[]": {"up"}})
	require.Equal(t, http.StatusUnprocessableEntity, code, resp.Error)
	require.Equal(t, "execution", resp.ErrorType)
	require.Contains(t, resp.Error, "err-strata-max-fetched-series-per-query")
}

// A shutdown does not wait for queries: StopQueries ends those in flight with 503 (retry elsewhere) and
// their reads stop, and later queries are refused at once.
func TestStopQueries_EndsQueriesInFlightAndRefusesNewOnes(t *testing.T) {
	cfg := testEngineConfig()
	cfg.Timeout = time.Hour
	blocking := &blockingQueryable{}
	a := newTestAPI(t, cfg, blocking)
	done := make(chan apiResponse, 1)
	codes := make(chan int, 1)
	go func() {
		code, resp := a.call(t, http.MethodGet, "/query", url.Values{"query": {"up"}})
		codes <- code
		done <- resp
	}()
	deadline := time.Now().Add(5 * time.Second)
	for blocking.started.Load() == 0 {
		require.True(t, time.Now().Before(deadline), "the query never selected")
		time.Sleep(time.Millisecond) // polling interval
	}
	a.api.StopQueries()
	require.Equal(t, http.StatusServiceUnavailable, <-codes)
	resp := <-done
	require.Equal(t, "unavailable", resp.ErrorType)
	require.Contains(t, resp.Error, "shutting down")
	for blocking.running.Load() != 0 {
		require.True(t, time.Now().Before(deadline), "the query's read still runs")
		time.Sleep(time.Millisecond) // polling interval
	}
	code, resp := a.call(t, http.MethodGet, "/query_range", url.Values{"query": {"up"},
		"start": {unixSeconds(dataStart)}, "end": {unixSeconds(dataEnd)}, "step": {"60"}})
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, resp.Error, "shutting down")
}
