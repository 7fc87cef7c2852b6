package querier

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
)

// TSDBStatus is the answer of Prometheus' /api/v1/status/tsdb, with its JSON names. Prometheus' own types
// live in its web/api/v1 package, whose dependencies (scraping, rules, notifications) Strata's querier
// does not otherwise need.
type TSDBStatus struct {
	HeadStats                   HeadStats  `json:"headStats"`
	SeriesCountByMetricName     []TSDBStat `json:"seriesCountByMetricName"`
	LabelValueCountByLabelName  []TSDBStat `json:"labelValueCountByLabelName"`
	MemoryInBytesByLabelName    []TSDBStat `json:"memoryInBytesByLabelName"`
	SeriesCountByLabelValuePair []TSDBStat `json:"seriesCountByLabelValuePair"`
}

// HeadStats describes the tenant's heads taken together.
type HeadStats struct {
	NumSeries     uint64 `json:"numSeries"`
	NumLabelPairs int    `json:"numLabelPairs"`
	ChunkCount    int64  `json:"chunkCount"`
	// MinTime and MaxTime are MaxInt64 and MinInt64 when no ingester holds data, as Prometheus reports an
	// empty head.
	MinTime int64 `json:"minTime"`
	MaxTime int64 `json:"maxTime"`
}

// TSDBStat is an entry of a TSDB status list.
type TSDBStat struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// maxIngesterStatusLimit is the longest list an ingester's TSDBStatus answers (ingester.MaxTSDBStatusLimit).
const maxIngesterStatusLimit = 1000

// TSDBStatus returns the tenant's TSDB status across the ingesters, each list cut at limit; see Cardinality
// for how replicas are accounted for. The distinct counts (label values per name, label pairs) come from the
// ingesters' value hashes rather than from their statistics, as those do not add up.
func (c *Cardinality) TSDBStatus(ctx context.Context, limit int) (*TSDBStatus, error) {
	var (
		wg          sync.WaitGroup
		valueCounts map[string]int
		countsErr   error
	)
	wg.Go(func() { valueCounts, countsErr = c.labelValueCounts(ctx, nil, CountInMemory) })
	req := &ingesterpb.TSDBStatusRequest{Limit: int32(min(2*limit, maxIngesterStatusLimit))}
	answers, n, err := askIngesters(ctx, c, func(ctx context.Context, client ingesterpb.IngesterClient) (*ingesterpb.TSDBStatusResponse, error) {
		return client.TSDBStatus(ctx, req)
	})
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if countsErr != nil {
		return nil, countsErr
	}

	out := &TSDBStatus{HeadStats: HeadStats{MinTime: math.MaxInt64, MaxTime: math.MinInt64}}
	var numSeries, chunks uint64
	byMetric, memory, byPair := map[string]uint64{}, map[string]uint64{}, map[string]uint64{}
	for _, a := range answers {
		numSeries += a.NumSeries
		chunks += uint64(max(a.ChunkCount, 0))
		out.HeadStats.MinTime = min(out.HeadStats.MinTime, a.MinTimeMs)
		out.HeadStats.MaxTime = max(out.HeadStats.MaxTime, a.MaxTimeMs)
		addStats(byMetric, a.SeriesCountByMetricName)
		addStats(memory, a.MemoryInBytesByLabelName)
		addStats(byPair, a.SeriesCountByLabelValuePair)
	}
	out.HeadStats.NumSeries = n.perCopy(numSeries)
	out.HeadStats.ChunkCount = int64(n.perCopy(chunks))
	valuesByName := make(map[string]uint64, len(valueCounts))
	for name, count := range valueCounts {
		out.HeadStats.NumLabelPairs += count
		valuesByName[name] = uint64(count)
	}
	out.SeriesCountByMetricName = topStats(byMetric, n, limit)
	out.LabelValueCountByLabelName = topStats(valuesByName, 1, limit)
	out.MemoryInBytesByLabelName = topStats(memory, n, limit)
	out.SeriesCountByLabelValuePair = topStats(byPair, n, limit)
	return out, nil
}

func addStats(sums map[string]uint64, stats []*ingesterpb.CardinalityStat) {
	for _, s := range stats {
		sums[s.Name] += s.Value
	}
}

// topStats divides the sums by the copies and returns the limit largest, then by name.
func topStats(sums map[string]uint64, n copies, limit int) []TSDBStat {
	out := make([]TSDBStat, 0, len(sums))
	for name, sum := range sums {
		out = append(out, TSDBStat{Name: name, Value: n.perCopy(sum)})
	}
	slices.SortFunc(out, func(a, b TSDBStat) int {
		if c := cmp.Compare(b.Value, a.Value); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out[:min(limit, len(out))]
}
