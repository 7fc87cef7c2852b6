package querier

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestQueryStats_CountTheSeriesAndChunksAQueryRead(t *testing.T) {
	const n = 25
	q := scriptedQueryable(1,
		&scriptedIngester{t: t, n: n, failAfter: -1},
		&scriptedIngester{t: t, n: n, failAfter: -1},
	)
	querier, err := q.Querier(0, 5000)
	require.NoError(t, err)
	defer querier.Close()
	stats := &QueryStats{}
	ctx := ContextWithQueryStats(context.Background(), stats)
	got, err := collect(t, querier.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "m")))
	require.NoError(t, err)
	require.Len(t, got, n)

	require.EqualValues(t, n, stats.FetchedSeries.Load(), "replicas of a series count once")
	require.EqualValues(t, 2*n, stats.FetchedChunks.Load(), "each replica's chunk was fetched")
	require.EqualValues(t, 2*n*len(oneSampleSeries(t, 0, 1000).Chunks[0].Data), stats.FetchedChunkBytes.Load())
}
