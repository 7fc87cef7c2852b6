package querymiddleware

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/strata-metrics/strata/pkg/cache"
	"github.com/strata-metrics/strata/pkg/frontend"
	"github.com/strata-metrics/strata/pkg/querycheck"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// maxConcurrentParts bounds the requests one range query has in flight downstream, so one long query
// does not take every querier at once (Mimir's default max_query_parallelism).
const maxConcurrentParts = 14

// CacheHeader tells how much of a range query's answer came from the results cache: CacheHit, CacheMiss
// or CachePartial. See the package documentation.
const (
	CacheHeader  = "X-Strata-Cache"
	CacheHit     = "hit"
	CacheMiss    = "miss"
	CachePartial = "partial"
)

// RangeQueryRoundTripper splits range queries by interval and answers them from the results cache where
// it can, asking next for the rest. Other requests go to next unchanged.
type RangeQueryRoundTripper struct {
	next          http.RoundTripper
	limits        *validation.Overrides
	splitInterval int64         // milliseconds; 0 does not split
	cache         *resultsCache // nil when results are not cached
	now           func() time.Time

	splitQueries prometheus.Counter

	// generations, when set, name the state of each tenant's series deletions in cache keys.
	generations CacheGenerations
}

// CacheGenerations names the generation of a tenant's data that cached answers depend on beyond time:
// a series deletion changes it, so that answers cached before the deletion are not used after it.
type CacheGenerations interface {
	CacheGeneration(ctx context.Context, tenantID string) (string, error)
}

// UseCacheGenerations makes cache keys carry g's generations. Call it before serving.
func (rt *RangeQueryRoundTripper) UseCacheGenerations(g CacheGenerations) { rt.generations = g }

// cacheGeneration returns the generation of every tenant of tenantKey, joined.
func (rt *RangeQueryRoundTripper) cacheGeneration(ctx context.Context, tenantKey string) (string, error) {
	if rt.generations == nil {
		return "", nil
	}
	var gens []string
	for _, id := range tenant.IDs(tenantKey) {
		g, err := rt.generations.CacheGeneration(ctx, id)
		if err != nil {
			return "", err
		}
		gens = append(gens, g)
	}
	return strings.Join(gens, "|"), nil
}

// New returns the middleware in front of next, which must answer as a querier's Prometheus API does.
// Its results cache is the backend cfg.ResultsCache configures, whose metrics carry name="query-frontend-results".
// Close it when done.
func New(cfg Config, limits *validation.Overrides, next http.RoundTripper, reg prometheus.Registerer, logger *slog.Logger) (*RangeQueryRoundTripper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rt := &RangeQueryRoundTripper{
		next:          next,
		limits:        limits,
		splitInterval: cfg.SplitQueriesByInterval.Milliseconds(),
		now:           time.Now,
		splitQueries: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_frontend_split_queries_total",
			Help: "Parts the range queries were split into by -query-frontend.split-queries-by-interval, before the results cache answered some.",
		}),
	}
	if cfg.CacheResults {
		backend, err := cache.New(cfg.ResultsCache, prometheus.WrapRegistererWith(prometheus.Labels{"name": "query-frontend-results"}, reg), logger)
		if err != nil {
			return nil, fmt.Errorf("results cache: %w", err)
		}
		rt.cache = newResultsCache(backend, cfg.ResultsCacheTTL, reg, logger)
	}
	return rt, nil
}

// Close releases the results cache's connections.
func (rt *RangeQueryRoundTripper) Close() error {
	if rt.cache == nil {
		return nil
	}
	return rt.cache.backend.Close()
}

// RoundTrip implements http.RoundTripper.
func (rt *RangeQueryRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, rangeQueryPath) || (rt.splitInterval == 0 && rt.cache == nil) {
		return rt.next.RoundTrip(req)
	}
	q, req, err := readRangeQuery(req)
	if err != nil {
		return nil, err
	}
	// With stats the answer carries the querier's statistics of one evaluation, which parts' statistics
	// cannot be added up into: such a query is evaluated whole, and not cached.
	if q == nil || q.params.Has("stats") {
		return rt.next.RoundTrip(req)
	}
	tenantKey := req.Header.Get(tenant.OrgIDHeader)
	if tenantKey == "" {
		tenantKey, _ = tenant.FromContext(req.Context())
	}
	if !rt.acceptsWhole(tenantKey, q) {
		return rt.next.RoundTrip(req) // the querier refuses it, as it is
	}
	prepared, err := prepareQuery(q.query, q.start, q.askedEnd)
	if err != nil {
		return rt.next.RoundTrip(req)
	}
	limits := rt.tenantLimits(tenantKey)

	parts := splitRange(q.start, q.end, q.step, rt.splitInterval)
	rt.splitQueries.Add(float64(len(parts)))
	useCache := rt.cache != nil && tenantKey != "" && !hasNoStore(req.Header)
	cacheKey := tenantKey
	if useCache {
		gen, err := rt.cacheGeneration(req.Context(), tenantKey)
		if err != nil {
			// Without the generation a cached answer might show deleted series.
			rt.cache.skipped.WithLabelValues(skipNoGeneration).Inc()
			useCache = false
		} else if gen != "" {
			cacheKey = tenantKey + "@" + gen
		}
	}
	if useCache && limits.hasMaxQueryLookback {
		// The querier hides data older than now - max_query_lookback: a cached answer over data that
		// has since gone out of reach would still show it.
		rt.cache.skipped.WithLabelValues(skipMaxQueryLookback).Inc()
		useCache = false
	} else if rt.cache != nil && hasNoStore(req.Header) {
		rt.cache.skipped.WithLabelValues(skipNoStore).Inc()
	}
	if len(parts) == 1 && !useCache {
		return rt.next.RoundTrip(req) // one evaluation of the query as the client sent it
	}

	plans := make([]*partPlan, len(parts))
	for i, p := range parts {
		plans[i] = &partPlan{part: p}
	}
	lastCacheable := int64(math.MinInt64)
	if useCache {
		freshUntil := rt.now().Add(-limits.maxCacheFreshness).UnixMilli()
		lastCacheable = lastGridPoint(prepared.cacheableUntil(freshUntil), q.start, q.step)
		for _, plan := range plans {
			plan.fullKey, plan.key = partKeys(cacheKey, prepared.query, q, rt.splitInterval, plan.index)
		}
		rt.cache.lookup(req.Context(), plans, lastCacheable)
	}
	var fetches []*fetch
	for _, plan := range plans {
		plan.planFetches(q.step, lastCacheable)
		fetches = append(fetches, plan.fetches...)
	}
	failure, err := rt.fetchAll(req.Context(), q, prepared.query, fetches)
	if err != nil || failure != nil {
		return failure, err
	}

	body, fromCache := assemble(plans)
	header := http.Header{"Content-Type": {"application/json"}}
	if useCache {
		rt.cache.store(req.Context(), plans, q.step, lastCacheable)
		switch {
		case len(fetches) == 0:
			header.Set(CacheHeader, CacheHit)
		case fromCache == 0:
			header.Set(CacheHeader, CacheMiss)
		default:
			header.Set(CacheHeader, CachePartial)
		}
	}
	return frontend.NewResponse(req, http.StatusOK, header, body), nil
}

// acceptsWhole reports whether the querier's checks before evaluation (querycheck.Check: expression
// size and complexity, max_total_query_length, parsing) pass for the whole query. A query they refuse is
// not split: its parts, each shorter, might pass where the whole does not, and parsing a query too
// complex would cost the frontend what the check protects the querier from. The subquery steps bound is
// left out: it depends on the querier's default evaluation interval, which the frontend does not know,
// so a split query is held to it part by part.
func (rt *RangeQueryRoundTripper) acceptsWhole(tenantKey string, q *rangeQuery) bool {
	r := querycheck.Range{Start: time.UnixMilli(q.start), End: time.UnixMilli(q.askedEnd), Step: time.Duration(q.step) * time.Millisecond}
	for _, id := range strings.Split(tenantKey, "|") {
		limits := *rt.limits.For(id)
		limits.MaxSubquerySteps = 0
		if querycheck.Check(q.query, &limits, r, 0) != nil {
			return false
		}
	}
	return true
}

// tenantLimits are the limits the results cache applies, for one tenant or, federated ("a|b"), for all.
type tenantLimits struct {
	maxCacheFreshness   time.Duration // the largest of the tenants'
	hasMaxQueryLookback bool          // any tenant has one
}

func (rt *RangeQueryRoundTripper) tenantLimits(tenantKey string) tenantLimits {
	var out tenantLimits
	for _, id := range strings.Split(tenantKey, "|") {
		l := rt.limits.For(id)
		out.maxCacheFreshness = max(out.maxCacheFreshness, time.Duration(l.MaxCacheFreshness))
		out.hasMaxQueryLookback = out.hasMaxQueryLookback || l.MaxQueryLookback > 0
	}
	return out
}

// fetchAll asks next for each fetch, at most maxConcurrentParts at once. The first part that fails ends
// the others, and its answer (the querier's status and body) or transport error is the query's.
func (rt *RangeQueryRoundTripper) fetchAll(ctx context.Context, q *rangeQuery, query string, fetches []*fetch) (*http.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu         sync.Mutex
		failure    *http.Response
		failureErr error
		wg         sync.WaitGroup
		slots      = make(chan struct{}, maxConcurrentParts)
	)
	for _, f := range fetches {
		slots <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			resp, err := rt.fetchOne(ctx, q, query, f)
			if resp == nil && err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if failure == nil && failureErr == nil {
				failure, failureErr = resp, err
				cancel()
			} else if resp != nil {
				_ = resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if failure == nil && failureErr == nil && ctx.Err() != nil {
		return nil, ctx.Err() // the client went away before any part was sent
	}
	return failure, failureErr
}

// fetchOne asks next for f's range and sets its answer. A querier's error comes back as the response to
// return; an answer that cannot be read as a 500.
func (rt *RangeQueryRoundTripper) fetchOne(ctx context.Context, q *rangeQuery, query string, f *fetch) (*http.Response, error) {
	resp, err := rt.next.RoundTrip(q.partRequest(ctx, query, f.start, f.end))
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read the answer to part %s..%s of a range query: %w", formatMillis(f.start), formatMillis(f.end), err)
	}
	if resp.StatusCode != http.StatusOK {
		return frontend.NewResponse(q.request, resp.StatusCode, resp.Header, body), nil
	}
	answer, err := decodeAnswer(body, f.start, f.end)
	if err != nil {
		return internalError(q.request, fmt.Errorf("the querier's answer to part %s..%s of the query cannot be read: %w", formatMillis(f.start), formatMillis(f.end), err)), nil
	}
	f.answer = answer
	f.storable = len(answer.warnings) == 0 && !hasNoStore(resp.Header)
	return nil, nil
}

// assemble concatenates the parts' answers, from the cache and from queriers, in time order, and
// returns the API's JSON and how many extents came from the cache.
func assemble(plans []*partPlan) (body []byte, fromCache int) {
	m := newMatrixBuilder()
	var pieces []*extent
	for _, plan := range plans {
		pieces = append(pieces[:0], plan.fromCache...)
		fromCache += len(plan.fromCache)
		for _, f := range plan.fetches {
			pieces = append(pieces, f.answer)
		}
		slices.SortFunc(pieces, func(a, b *extent) int { return cmp.Compare(a.start, b.start) })
		for _, piece := range pieces {
			m.add(piece)
		}
	}
	return appendAnswer(nil, m.matrix(), m.warnings.items, m.infos.items), fromCache
}

// internalError is a 500 in the API's error envelope.
func internalError(req *http.Request, err error) *http.Response {
	body, _ := json.Marshal(struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", "internal", err.Error()})
	return frontend.NewResponse(req, http.StatusInternalServerError, http.Header{"Content-Type": {"application/json"}}, body)
}
