package promutil

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestRegisterOrReuse_SharesEqualCollectorsAndRefusesConflicts(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := RegisterOrReuse(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	require.NoError(t, err)
	second, err := RegisterOrReuse(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	require.NoError(t, err)
	require.Same(t, first, second)

	_, err = RegisterOrReuse(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other help"}))
	require.Error(t, err)

	c, err := RegisterOrReuse[prometheus.Counter](nil, prometheus.NewCounter(prometheus.CounterOpts{Name: "y", Help: "y"}))
	require.NoError(t, err)
	require.NotNil(t, c)
}
