package main

import (
	"bytes"
	"flag"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newTestFlagSet() *flag.FlagSet {
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	f.SetOutput(io.Discard)
	return f
}

func TestLatencyOf_NearestRankPercentiles(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range n {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	var hundred []int
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, i)
	}
	tests := []struct {
		name string
		in   []time.Duration
		want latency
	}{
		{name: "empty", in: nil, want: latency{}},
		{name: "one", in: ms(7), want: latency{Count: 1, P50: 0.007, P90: 0.007, P99: 0.007, Max: 0.007}},
		{name: "1..100 unsorted", in: ms(hundred...), want: latency{Count: 100, P50: 0.05, P90: 0.09, P99: 0.099, Max: 0.1}},
		{name: "ten", in: ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), want: latency{Count: 10, P50: 0.005, P90: 0.009, P99: 0.01, Max: 0.01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := latencyOf(tt.in)
			require.Equal(t, tt.want.Count, got.Count)
			for _, pair := range [][2]float64{{tt.want.P50, got.P50}, {tt.want.P90, got.P90}, {tt.want.P99, got.P99}, {tt.want.Max, got.Max}} {
				require.InDelta(t, pair[0], pair[1], 1e-12)
			}
		})
	}
}

func TestSummary_PrintsEveryFigure(t *testing.T) {
	s := summary{Mode: "write", WallSeconds: 2, CPU: cpuSummary{Seconds: 0.5, Percent: 25, Cores: 2},
		Write: &writeSummary{Tenants: 2, SeriesPerTenant: 10, SamplesAccepted: 100, AcceptedSamplesPerSecond: 50,
			FailedRequests: map[string]int64{"500": 2, "400": 1}, PushLatency: latencyOf([]time.Duration{time.Millisecond})}}
	var out bytes.Buffer
	s.print(&out)
	for _, want := range []string{"100 (50/s)", "400: 1, 500: 2", "p50 1.0ms", "0.50s, 25% of one core"} {
		require.Contains(t, out.String(), want)
	}
}

func TestSummary_PrintsBlocksAndCacheFigures(t *testing.T) {
	s := summary{Mode: "blocks", Blocks: &blocksSummary{Series: 3, Rounds: 4, Samples: 12, Blocks: []string{"a", "b"}},
		Query: &querySummary{Cache: map[string]int64{"hit": 3, "partial": 1},
			PerQuery: []queryLatency{{Query: "q/7d", Cache: map[string]int64{"hit": 1}}}}}
	var out bytes.Buffer
	s.print(&out)
	for _, want := range []string{"12 in 2 blocks", "3, 4 rounds", "hit: 3, partial: 1 (X-Strata-Cache)", "cache hit: 1"} {
		require.Contains(t, out.String(), want)
	}
}

func TestRun_RejectsBadFlags(t *testing.T) {
	tests := [][]string{
		{},
		{"nope"},
		{"write", "-batch", "0"},
		{"write", "-tenants", "2", "-auth-disabled"},
		{"write", "-url", "localhost:8080"},
		{"query", "-concurrency", "0"},
		{"verify"},
		{"blocks"},
		{"blocks", "-dir", "x", "-block-range", "1s"},
		{"write", "-backfill-send-from-ms", "1000"},
		{"query", "-end-ms", "-1"},
	}
	for _, args := range tests {
		var stderr bytes.Buffer
		require.Equal(t, 2, run(t.Context(), args, io.Discard, &stderr), "%v", args)
		require.NotEmpty(t, stderr.String())
	}
}
