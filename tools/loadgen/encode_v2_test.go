package main

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// The hand-written 2.0 encoding is what Prometheus' generated code reads.
func TestV2Encoder_IsARemoteWrite2Request(t *testing.T) {
	ts := newTenantSeries("t", 200, 1, nil)
	e := newV2Encoder()
	for range 2 { // a second request starts a table of its own
		e.reset()
		var want []labels.Labels
		ts.series(0, 200, func(tg *target, j int) {
			ls := tg.labelSet(ts.tpl, j)
			e.appendSeries(ls, metricTypeOf(ts.tpl.series[j].kind), "help", tg.values[j], 1234)
			b := labels.NewScratchBuilder(len(ls))
			for _, l := range ls {
				b.Add(l.name, l.value)
			}
			want = append(want, b.Labels())
		})
		var req writev2.Request
		require.NoError(t, req.Unmarshal(e.request(nil)))
		require.Len(t, req.Timeseries, 200)
		require.Equal(t, "", req.Symbols[0])
		b := labels.NewScratchBuilder(0)
		for i, s := range req.Timeseries {
			got, err := s.ToLabels(&b, req.Symbols)
			require.NoError(t, err)
			require.Equal(t, want[i], got)
			require.Equal(t, int64(1234), s.Samples[0].Timestamp)
			m, err := s.ToMetadata(req.Symbols)
			require.NoError(t, err)
			require.Equal(t, "help", m.Help)
		}
	}
}
