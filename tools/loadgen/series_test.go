package main

import (
	"regexp"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// decodeRound encodes the tenant's current round as one request and decodes it with prompb.
func decodeRound(t *testing.T, ts *tenantSeries, tsMillis int64) []prompb.TimeSeries {
	t.Helper()
	var raw []byte
	ts.series(0, ts.n, func(tg *target, j int) {
		raw = appendSeries(raw, tg.labels[j], tg.values[j], tsMillis)
	})
	var wr prompb.WriteRequest
	require.NoError(t, wr.Unmarshal(raw))
	require.Len(t, wr.Timeseries, ts.n)
	return wr.Timeseries
}

func (k valueKind) monotonic() bool { return k != kindGauge }

func labelsKey(ls []prompb.Label) string {
	m := map[string]string{}
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return selector(m)
}

func TestSeries_HaveFiveToFifteenValidSortedLabels(t *testing.T) {
	labelName := regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	metricName := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	for _, n := range []int{1, 84, 200} {
		ts := newTenantSeries("t", n, 1, nil)
		seen := map[string]bool{}
		for _, s := range decodeRound(t, ts, 1000) {
			require.GreaterOrEqual(t, len(s.Labels), 5)
			require.LessOrEqual(t, len(s.Labels), 15)
			for i, l := range s.Labels {
				require.Regexp(t, labelName, l.Name)
				require.NotEmpty(t, l.Value, l.Name)
				if i > 0 {
					require.Less(t, s.Labels[i-1].Name, l.Name, "labels must be sorted and unique")
				}
				if l.Name == "__name__" {
					require.Regexp(t, metricName, l.Value)
				}
			}
			key := labelsKey(s.Labels)
			require.False(t, seen[key], "duplicate series %s", key)
			seen[key] = true
			require.Len(t, s.Samples, 1)
			require.Equal(t, int64(1000), s.Samples[0].Timestamp)
		}
	}
}

func TestSeries_CountersNeverDecreaseAndHistogramsStayCumulative(t *testing.T) {
	ts := newTenantSeries("t", 300, 7, nil)
	prev := map[int]float64{}
	for round := range 200 {
		ts.advance(15, 0)
		i := 0
		ts.series(0, ts.n, func(tg *target, j int) {
			s := &ts.tpl.series[j]
			v := tg.values[j]
			if s.kind.monotonic() {
				if p, ok := prev[i]; ok {
					require.GreaterOrEqual(t, v, p, "round %d: %s decreased", round, s.name)
				}
				prev[i] = v
			}
			if s.kind == kindHistBucket && s.le > 0 {
				require.GreaterOrEqual(t, v, tg.values[j-1], "bucket le=%v below the previous bucket", histBuckets[s.le])
			}
			if s.kind == kindHistCount {
				require.Equal(t, tg.values[j-2], v, "+Inf bucket must equal _count")
			}
			i++
		})
	}
}

func TestSeries_ChurnReplacesWholeTargetsWithFreshCounters(t *testing.T) {
	ts := newTenantSeries("t", 168, 1, nil) // two targets of 84
	before := map[string]bool{}
	for _, s := range decodeRound(t, ts, 1) {
		before[labelsKey(s.Labels)] = true
	}
	require.Equal(t, 0, ts.advance(30, 84), "half a minute owes 42 series, less than a target")
	require.Equal(t, 84, ts.advance(30, 84))
	require.Equal(t, 2, ts.targets[0].id, "the first slot holds a new target")

	fresh := 0
	for _, s := range decodeRound(t, ts, 2) {
		if before[labelsKey(s.Labels)] {
			continue
		}
		fresh++
		name := s.Labels[0].Value
		if name == "node_cpu_seconds_total" {
			// 30s since start at most 1.5 × rate × scale: far below a long-running counter.
			require.Less(t, s.Samples[0].Value, 30*1.5*0.7*8)
		}
	}
	require.Equal(t, 84, fresh)
}
