package querier

import (
	"context"
	"sync/atomic"

	"github.com/strata-metrics/strata/pkg/seriespb"
)

// QueryStats count what one query read from ingesters and store-gateways; the querier worker reports
// them to the query-frontend, which shows them in its Server-Timing header and slow-query log. A series
// counts once per kind of source (ingesters, store-gateways) it was read from; chunks count every copy sent.
type QueryStats struct {
	FetchedSeries     atomic.Int64
	FetchedChunks     atomic.Int64
	FetchedChunkBytes atomic.Int64
}

type queryStatsKey struct{}

// ContextWithQueryStats returns ctx whose reads add to s.
func ContextWithQueryStats(ctx context.Context, s *QueryStats) context.Context {
	return context.WithValue(ctx, queryStatsKey{}, s)
}

func queryStatsFrom(ctx context.Context) *QueryStats {
	s, _ := ctx.Value(queryStatsKey{}).(*QueryStats)
	return s
}

// addSeries counts a merged series and the chunks its sources sent, replicas' copies included: what
// the query cost in transfer. A nil *QueryStats counts nothing.
func (s *QueryStats) addSeries(chunks []*seriespb.Chunk) {
	if s == nil {
		return
	}
	n := 0
	for _, c := range chunks {
		n += len(c.Data)
	}
	s.FetchedSeries.Add(1)
	s.FetchedChunks.Add(int64(len(chunks)))
	s.FetchedChunkBytes.Add(int64(n))
}
