package querier

import (
	"time"

	"github.com/prometheus/prometheus/storage"
)

// TimeSplitQueryable sends each query to where its data lives: ingesters hold the last
// -querier.query-ingesters-within, object storage (through store-gateways) everything older than
// -querier.query-store-after. The two windows overlap so that nothing between a block's upload and its
// discovery by store-gateways is missed; the merge keeps one sample per timestamp. Object storage is asked
// for the whole range: the blocks queryable itself skips recent blocks that ingesters still hold, but not
// recent blocks that were uploaded (backfilled), which no ingester has.
type TimeSplitQueryable struct {
	ingesters            storage.Queryable
	store                storage.Queryable // nil: no long-term storage to read
	queryIngestersWithin time.Duration
	now                  func() time.Time
}

// NewTimeSplitQueryable returns a queryable over ingesters and, when store is not nil, object storage.
func NewTimeSplitQueryable(ingesters, store storage.Queryable, cfg Config) *TimeSplitQueryable {
	return &TimeSplitQueryable{
		ingesters:            ingesters,
		store:                store,
		queryIngestersWithin: cfg.QueryIngestersWithin,
		now:                  time.Now,
	}
}

// Querier implements storage.Queryable.
func (q *TimeSplitQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	now := q.now()
	var queriers []storage.Querier
	ingMint := mint
	if q.queryIngestersWithin > 0 {
		ingMint = max(mint, now.Add(-q.queryIngestersWithin).UnixMilli())
	}
	if ingMint <= maxt {
		iq, err := q.ingesters.Querier(ingMint, maxt)
		if err != nil {
			return nil, err
		}
		queriers = append(queriers, iq)
	}
	if q.store != nil {
		sq, err := q.store.Querier(mint, maxt)
		if err != nil {
			return nil, err
		}
		queriers = append(queriers, sq)
	}
	if len(queriers) == 1 {
		return queriers[0], nil
	}
	return storage.NewMergeQuerier(queriers, nil, storage.ChainedSeriesMerge), nil
}
