package querier

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// FetchLimitedQueryable applies the tenant's max_fetched_series_per_query and
// max_fetched_chunk_bytes_per_query to each query (each Querier): the series it reads, after replicas and
// overlapping sources are merged, and the bytes of the chunks it reads, identical replicas' copies
// counted once. The limits also travel with every read to ingesters and store-gateways, which stop once
// their own answer crosses them. When the query crosses a limit, every stream of the query is canceled,
// so that all sources stop sending, and the query fails with the limit's *validation.LimitError.
type FetchLimitedQueryable struct {
	storage.Queryable
	limits *validation.Overrides
	// maxInFlight bounds the series that all queries in flight hold together (0: no bound), so that
	// -querier.max-concurrent queries at their limit cannot exhaust the querier's memory together.
	maxInFlight int64
	inFlight    atomic.Int64
}

// NewFetchLimitedQueryable applies the limits of each query's tenant to q's reads, and bounds the series
// the queries in flight hold together by maxSeriesInFlight (0: no bound).
func NewFetchLimitedQueryable(q storage.Queryable, limits *validation.Overrides, maxSeriesInFlight int) *FetchLimitedQueryable {
	return &FetchLimitedQueryable{Queryable: q, limits: limits, maxInFlight: int64(maxSeriesInFlight)}
}

// SeriesInFlightError refuses a query because the queries in flight already hold the most series this
// querier keeps at once: a 503, the client retries later.
type SeriesInFlightError struct{ Max int64 }

func (e *SeriesInFlightError) Error() string {
	return fmt.Sprintf("the queries running in this querier already hold %d series, its limit (err-strata-querier-max-fetched-series-in-flight, -querier.max-fetched-series-in-flight); retry later", e.Max)
}

// Querier implements storage.Queryable.
func (q *FetchLimitedQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	inner, err := q.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &fetchLimitedQuerier{Querier: inner, overrides: q.limits, queryable: q}, nil
}

// fetchLimitedQuerier counts what one query reads: the engine makes one Querier per query.
type fetchLimitedQuerier struct {
	storage.Querier
	overrides *validation.Overrides
	queryable *FetchLimitedQueryable

	mtx     sync.Mutex
	limiter *fetchLimiter // made by the first Select, which brings the tenant
	looked  bool
}

// limiterFor returns the query's limiter, nil when its tenant has no fetch limits.
func (q *fetchLimitedQuerier) limiterFor(ctx context.Context) *fetchLimiter {
	q.mtx.Lock()
	defer q.mtx.Unlock()
	if !q.looked {
		q.looked = true
		// Without a tenant there is nothing to limit; the sources refuse such a read anyway.
		if tenantID, err := tenant.FromContext(ctx); err == nil {
			limits := seriespb.NewFetchLimits(q.overrides.For(tenantID))
			if limits != nil || q.queryable.maxInFlight > 0 {
				if limits == nil {
					limits = &seriespb.FetchLimits{} // counted for the querier's bound only
				}
				q.limiter = &fetchLimiter{limits: limits, queryable: q.queryable}
			}
		}
	}
	return q.limiter
}

// Select implements storage.Querier.
func (q *fetchLimitedQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	l := q.limiterFor(ctx)
	if l == nil {
		return q.Querier.Select(ctx, sortSeries, hints, matchers...)
	}
	ctx = context.WithValue(l.streams.new(ctx), fetchLimiterKey{}, l)
	return &fetchLimitedSeriesSet{SeriesSet: q.Querier.Select(ctx, sortSeries, hints, matchers...), limiter: l}
}

// Close implements storage.Querier.
func (q *fetchLimitedQuerier) Close() error {
	q.mtx.Lock()
	l := q.limiter
	q.mtx.Unlock()
	if l != nil {
		l.streams.cancel(nil)
		l.queryable.inFlight.Add(-l.reserved.Swap(0))
	}
	return q.Querier.Close()
}

// fetchLimitedSeriesSet counts the series of one Select, after the merge of all its sources.
type fetchLimitedSeriesSet struct {
	storage.SeriesSet
	limiter *fetchLimiter
	err     error
}

func (s *fetchLimitedSeriesSet) Next() bool {
	if s.err != nil || !s.SeriesSet.Next() {
		return false
	}
	s.err = s.limiter.addSeries(s.SeriesSet.At().Labels())
	return s.err == nil
}

// Err returns the limit's error rather than the cancellations it caused in the sources.
func (s *fetchLimitedSeriesSet) Err() error {
	if s.err != nil {
		return s.err
	}
	err := s.SeriesSet.Err()
	if err == nil {
		return nil
	}
	if limitErr := s.limiter.failure(); limitErr != nil {
		return limitErr
	}
	return err
}

type fetchLimiterKey struct{}

// fetchLimiterFrom returns the limiter of the query that ctx reads for, or nil.
func fetchLimiterFrom(ctx context.Context) *fetchLimiter {
	l, _ := ctx.Value(fetchLimiterKey{}).(*fetchLimiter)
	return l
}

// fetchLimitsFrom returns the limits that reads for ctx pass on to their sources, or nil.
func fetchLimitsFrom(ctx context.Context) *seriespb.FetchLimits {
	if l := fetchLimiterFrom(ctx); l != nil && (l.limits.MaxSeries > 0 || l.limits.MaxChunkBytes > 0) {
		return l.limits
	}
	return nil
}

// fetchLimiter counts one query's series and chunk bytes against its tenant's limits. Its methods are
// safe for concurrent use: the sources' series sets are read concurrently.
type fetchLimiter struct {
	limits    *seriespb.FetchLimits
	streams   streamContexts // every stream of the query, ended with the limit's error once one is crossed
	queryable *FetchLimitedQueryable
	reserved  atomic.Int64 // this query's series in the querier's in-flight count
	overload  atomic.Pointer[SeriesInFlightError]

	mtx    sync.Mutex
	series map[uint64]struct{} // hashes of the label sets read, when series are limited

	chunkBytes atomic.Int64
	failed     atomic.Pointer[validation.LimitError]
}

// addSeries counts a series read, once however many Selects of the query read it.
func (l *fetchLimiter) addSeries(lset labels.Labels) error {
	if l.limits.MaxSeries <= 0 && l.queryable.maxInFlight <= 0 {
		return nil
	}
	h := lset.Hash()
	l.mtx.Lock()
	if l.series == nil {
		l.series = map[uint64]struct{}{}
	}
	before := len(l.series)
	l.series[h] = struct{}{}
	n := int64(len(l.series))
	l.mtx.Unlock()
	if max := l.limits.MaxSeries; max > 0 && n > max {
		return l.exceeded(seriespb.SeriesLimitError(max))
	}
	if max := l.queryable.maxInFlight; max > 0 && int(n) > before {
		if l.queryable.inFlight.Add(1) > max {
			l.queryable.inFlight.Add(-1)
			return l.overloaded(&SeriesInFlightError{Max: max})
		}
		l.reserved.Add(1)
	}
	return nil
}

// overloaded fails the query because the querier holds too many series, and ends its streams.
func (l *fetchLimiter) overloaded(err *SeriesInFlightError) error {
	if l.overload.CompareAndSwap(nil, err) {
		l.streams.cancel(err)
	}
	return l.overload.Load()
}

// addChunkBytes counts the bytes of a series' chunks.
func (l *fetchLimiter) addChunkBytes(n int) error {
	if l.limits.MaxChunkBytes <= 0 {
		return nil
	}
	if l.chunkBytes.Add(int64(n)) > l.limits.MaxChunkBytes {
		return l.exceeded(seriespb.ChunkBytesLimitError(l.limits.MaxChunkBytes))
	}
	return nil
}

// exceeded records that the query crossed a limit, its own count or a source's, and cancels every stream
// of the query with the first such error, which it returns. A nil limiter (a read without limits that a
// source still refused) returns err.
func (l *fetchLimiter) exceeded(err *validation.LimitError) error {
	if l == nil {
		return err
	}
	if l.failed.CompareAndSwap(nil, err) {
		l.streams.cancel(err)
	}
	return l.failed.Load()
}

// failure returns the limit the query crossed, or nil.
func (l *fetchLimiter) failure() error {
	if err := l.failed.Load(); err != nil {
		return err
	}
	if err := l.overload.Load(); err != nil {
		return err
	}
	return nil
}
