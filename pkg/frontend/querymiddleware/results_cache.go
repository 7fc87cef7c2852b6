package querymiddleware

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/strata-metrics/strata/pkg/cache"
)

// resultsCache keeps, for each part of a range query (tenant, query, parameters, step and its phase,
// split interval), the extents of its answer already known, so that a query over a range answered
// before asks queriers only for the rest.
//
// What it stores is final: only steps older than now - max_cache_freshness (less the query's reach past
// its steps, see preparedQuery), never answers with warnings (which say an answer may be partial or
// degraded: a truncated result, data that could not be read) nor answers a querier marked
// Cache-Control: no-store. Answers with infos are stored with their infos, and then used only whole.
type resultsCache struct {
	backend cache.Cache
	ttl     time.Duration
	logger  *slog.Logger
	// corruptLogs rate-limits the lines about entries that cannot be decoded.
	corruptLogs *rate.Limiter

	requests prometheus.Counter
	hits     prometheus.Counter
	skipped  *prometheus.CounterVec
}

// Reasons a query or a part's answer is not stored, for strata_frontend_query_result_cache_skipped_total.
const (
	skipNoStore          = "no-store"
	skipWarnings         = "warnings"
	skipMaxQueryLookback = "max-query-lookback"
	skipNoGeneration     = "no-generation"
)

func newResultsCache(backend cache.Cache, ttl time.Duration, reg prometheus.Registerer, logger *slog.Logger) *resultsCache {
	c := &resultsCache{
		backend:     backend,
		ttl:         ttl,
		logger:      logger,
		corruptLogs: rate.NewLimiter(rate.Every(10*time.Second), 1),
		requests: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_frontend_query_result_cache_requests_total",
			Help: "Parts of range queries looked up in the results cache.",
		}),
		hits: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_frontend_query_result_cache_hits_total",
			Help: "Parts of range queries looked up in the results cache that it answered wholly or partly.",
		}),
		skipped: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_frontend_query_result_cache_skipped_total",
			Help: "Range queries (max-query-lookback, no-store, no-generation: the tenant's series deletions could not be read) or parts' answers (warnings, no-store) the results cache did not store.",
		}, []string{"reason"}),
	}
	for _, reason := range []string{skipNoStore, skipWarnings, skipMaxQueryLookback, skipNoGeneration} {
		c.skipped.WithLabelValues(reason)
	}
	return c
}

// partPlan is how one part is answered: extents from the cache and ranges fetched from queriers.
type partPlan struct {
	part
	// key and fullKey name the part's cache entry; empty when the cache is not used.
	key, fullKey string
	// stored is the part's cache entry as read; fromCache the points of it that answer the part.
	stored    []*extent
	fromCache []*extent
	fetches   []*fetch
}

// fetch is a range of a part asked from a querier, and its answer.
type fetch struct {
	start, end int64
	answer     *extent
	// storable is false when the answer must not be cached (warnings, Cache-Control: no-store).
	storable bool
}

// partKeys returns the full key of a part's entry and the key it is stored under: a SHA-256 of it,
// short and safe for any backend. The full key is stored in the entry to tell a collision.
func partKeys(tenantKey, query string, q *rangeQuery, interval int64, index int64) (full, hashed string) {
	params := q.params
	if params.Has("timeout") { // it does not change an answer that succeeded
		params = maps.Clone(params)
		params.Del("timeout")
	}
	var b strings.Builder
	for _, field := range []string{"v1", tenantKey, query, params.Encode(),
		strconv.FormatInt(q.step, 10), strconv.FormatInt(floorMod(q.start, q.step), 10), // the grid
		strconv.FormatInt(interval, 10), strconv.FormatInt(index, 10)} {
		b.WriteString(field)
		b.WriteByte(0)
	}
	full = b.String()
	sum := sha256.Sum256([]byte(full))
	return full, "qfr:" + hex.EncodeToString(sum[:])
}

// lookup reads the entries of plans (whose keys are set) and sets what the cache answers of each part:
// the stored points up to lastCacheable.
func (c *resultsCache) lookup(ctx context.Context, plans []*partPlan, lastCacheable int64) {
	keys := make([]string, 0, len(plans))
	for _, plan := range plans {
		keys = append(keys, plan.key)
	}
	found := c.backend.Fetch(ctx, keys)
	c.requests.Add(float64(len(plans)))
	for _, plan := range plans {
		data, ok := found[plan.key]
		if !ok {
			continue
		}
		stored, err := decodeEntry(plan.fullKey, data)
		if err != nil {
			if !errors.Is(err, errKeyMismatch) && c.corruptLogs.Allow() {
				c.logger.Warn("results cache entry cannot be decoded; answered as a miss (at most one such line per 10s)",
					"component", "query-frontend", "err", err)
			}
			continue
		}
		plan.stored = stored
		plan.fromCache = usableExtents(stored, plan.start, min(plan.end, lastCacheable))
		if len(plan.fromCache) > 0 {
			c.hits.Inc()
		}
	}
}

// usableExtents returns the points of stored (disjoint, in time order) from from to to. An extent with
// infos is used only whole: a part of its range may not give those infos.
func usableExtents(stored []*extent, from, to int64) []*extent {
	var usable []*extent
	for _, e := range stored {
		clipped := e.clip(from, to)
		if clipped == nil || (len(e.infos) > 0 && clipped != e) {
			continue
		}
		usable = append(usable, clipped)
	}
	return usable
}

// planFetches sets the ranges of plan the cache did not answer. A range that straddles lastCacheable is
// fetched as two, so that the older one can be stored whole.
func (plan *partPlan) planFetches(step, lastCacheable int64) {
	next := plan.start
	addGap := func(start, end int64) {
		if start > end {
			return
		}
		if start <= lastCacheable && lastCacheable < end {
			plan.fetches = append(plan.fetches, &fetch{start: start, end: lastCacheable}, &fetch{start: lastCacheable + step, end: end})
			return
		}
		plan.fetches = append(plan.fetches, &fetch{start: start, end: end})
	}
	for _, e := range plan.fromCache {
		addGap(next, e.start-step)
		next = e.end + step
	}
	addGap(next, plan.end)
}

// store writes back the entries of plans that fetched storable ranges up to lastCacheable, joined with
// what the entries held.
func (c *resultsCache) store(ctx context.Context, plans []*partPlan, step, lastCacheable int64) {
	items := map[string][]byte{}
	for _, plan := range plans {
		var added []*extent
		for _, f := range plan.fetches {
			switch {
			case f.end > lastCacheable:
			case !f.storable:
				if len(f.answer.warnings) > 0 {
					c.skipped.WithLabelValues(skipWarnings).Inc()
				} else {
					c.skipped.WithLabelValues(skipNoStore).Inc()
				}
			default:
				added = append(added, f.answer)
			}
		}
		if len(added) == 0 {
			continue
		}
		// A tenant's max_cache_freshness may have grown since the entry was written.
		kept := usableExtents(plan.stored, math.MinInt64, lastCacheable)
		items[plan.key] = encodeEntry(plan.fullKey, coalesce(append(kept, added...), step))
	}
	if len(items) > 0 {
		c.backend.Store(ctx, items, c.ttl)
	}
}

// lastGridPoint returns the last point of the grid start + k*step at or before t; math.MinInt64 when t
// is.
func lastGridPoint(t, start, step int64) int64 {
	if t == math.MinInt64 {
		return t
	}
	return t - floorMod(t-start, step)
}
