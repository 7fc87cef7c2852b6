package validation_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

func TestDiscardedCounters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	samples := validation.NewDiscardedSamples(reg)
	metadata := validation.NewDiscardedMetadata(reg)
	samples.WithLabelValues(validation.ReasonTooFarInFuture, "team-a").Add(3)
	metadata.WithLabelValues(validation.ReasonMetricMetadataTooLong, "team-b").Inc()

	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range families {
		require.Contains(t, mf.GetHelp(), "discarded")
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			got[mf.GetName()+"/"+labels["reason"]+"/"+labels["user"]] = m.GetCounter().GetValue()
		}
	}
	require.Equal(t, map[string]float64{
		"strata_discarded_samples_total/too_far_in_future/team-a":         3,
		"strata_discarded_metadata_total/metric_metadata_too_long/team-b": 1,
	}, got)
}

func TestDiscardedCounters_NilRegisterer(t *testing.T) {
	require.NotPanics(t, func() {
		validation.NewDiscardedSamples(nil).WithLabelValues("r", "t").Inc()
		validation.NewDiscardedMetadata(nil).WithLabelValues("r", "t").Inc()
	})
}
