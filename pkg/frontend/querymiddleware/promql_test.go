package querymiddleware

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPrepareQuery_PinsStartAndEndAndMeasuresReadsAhead(t *testing.T) {
	const start, end = 1740808020000, 1740894420123 // end with milliseconds
	for _, tc := range []struct {
		query          string
		wantQuery      string // empty: unchanged
		wantReadsAfter int64
		wantPinned     int64
	}{
		{query: `rate(x[5m])`, wantPinned: math.MinInt64},
		{query: `x offset 1h`, wantPinned: math.MinInt64},
		{query: `x offset -1h`, wantReadsAfter: 3600_000, wantPinned: math.MinInt64},
		{query: `x offset -1h + y offset -2h`, wantReadsAfter: 7200_000, wantPinned: math.MinInt64},
		{query: `rate(x[5m] offset -10m)`, wantReadsAfter: 600_000, wantPinned: math.MinInt64},
		// A subquery's offset moves its inner steps: the reads add up.
		{query: `max_over_time(x[10m:1m] offset -30m)`, wantReadsAfter: 1800_000, wantPinned: math.MinInt64},
		{query: `max_over_time((x offset -5m)[10m:1m] offset -30m)`, wantReadsAfter: 2100_000, wantPinned: math.MinInt64},
		{query: `max_over_time((x offset 40m)[10m:1m] offset -30m)`, wantReadsAfter: 0, wantPinned: math.MinInt64},
		{query: `x @ 1740800000`, wantPinned: 1740800000000},
		{query: `x @ 1740800000 offset -1h`, wantPinned: 1740803600000},
		{query: `max_over_time((x offset -5m)[10m:1m] @ 1740800000)`, wantPinned: 1740800300000},
		{
			query:      `x @ start() + y @ end()`,
			wantQuery:  `x @ 1740808020.000 + y @ 1740894420.123`,
			wantPinned: end,
		},
		{
			query:      `max_over_time(rate(x[5m])[1h:] @ end())`,
			wantQuery:  `max_over_time(rate(x[5m])[1h:] @ 1740894420.123)`,
			wantPinned: end,
		},
		{
			query:          `rate(x{job="a\"b"}[5m] @ start()) / on(job) group_left sum by (job) (y offset -1m)`,
			wantQuery:      `rate(x{job="a\"b"}[5m] @ 1740808020.000) / on (job) group_left () sum by (job) (y offset -1m)`,
			wantReadsAfter: 60_000,
			wantPinned:     start,
		},
	} {
		t.Run(tc.query, func(t *testing.T) {
			p, err := prepareQuery(tc.query, start, end)
			require.NoError(t, err)
			wantQuery := tc.wantQuery
			if wantQuery == "" {
				wantQuery = tc.query
			}
			require.Equal(t, wantQuery, p.query)
			require.Equal(t, tc.wantReadsAfter, p.readsAfterStep)
			require.Equal(t, tc.wantPinned, p.latestPinnedRead)
		})
	}
}

func TestPrepareQuery_RefusesWhatDoesNotParse(t *testing.T) {
	for _, query := range []string{`sum(`, `rate(x)`, ``, `x[5m:1m:1m]`} {
		_, err := prepareQuery(query, 0, 1)
		require.Error(t, err, query)
	}
}

func TestCacheableUntil(t *testing.T) {
	const freshUntil = 1_000_000
	require.Equal(t, int64(freshUntil), (&preparedQuery{latestPinnedRead: math.MinInt64}).cacheableUntil(freshUntil))
	require.Equal(t, int64(freshUntil-60_000), (&preparedQuery{readsAfterStep: 60_000, latestPinnedRead: math.MinInt64}).cacheableUntil(freshUntil))
	require.Equal(t, int64(freshUntil), (&preparedQuery{latestPinnedRead: freshUntil}).cacheableUntil(freshUntil))
	require.Equal(t, int64(math.MinInt64), (&preparedQuery{latestPinnedRead: freshUntil + 1}).cacheableUntil(freshUntil))
}
