package querier

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// WithMinTime returns q restricted to data at or after minT (milliseconds): a tenant's
// max_query_lookback. Queries wholly before it read nothing; the rest read from minT on.
func WithMinTime(q storage.Queryable, minT int64) storage.Queryable {
	return minTimeQueryable{q: q, minT: minT}
}

type minTimeQueryable struct {
	q    storage.Queryable
	minT int64
}

func (m minTimeQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	if maxt < m.minT {
		return storage.NoopQuerier(), nil
	}
	q, err := m.q.Querier(max(mint, m.minT), maxt)
	if err != nil {
		return nil, err
	}
	return minTimeQuerier{Querier: q, minT: m.minT}, nil
}

// minTimeQuerier also clamps the hints of each Select, which some queriers read instead of their range.
type minTimeQuerier struct {
	storage.Querier
	minT int64
}

func (m minTimeQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	if hints != nil {
		if hints.End < m.minT {
			return storage.EmptySeriesSet()
		}
		h := *hints
		h.Start = max(h.Start, m.minT)
		hints = &h
	}
	return m.Querier.Select(ctx, sortSeries, hints, matchers...)
}
