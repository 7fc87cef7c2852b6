package promutil

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestTrackingRegisterer_UnregistersWhatItRegisteredAndCanRegisterAgain(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "other_total", Help: "h"})
	reg.MustRegister(other)
	tr := NewTrackingRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"tenant": "a"}, reg))
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tenant_total", Help: "h"})
	tr.MustRegister(c)
	require.Len(t, tr.Collectors(), 1)
	n, err := testutil.GatherAndCount(reg, "tenant_total")
	require.NoError(t, err)
	require.Equal(t, 1, n)

	tr.UnregisterAll()
	require.Empty(t, tr.Collectors())
	n, err = testutil.GatherAndCount(reg, "tenant_total", "other_total")
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the tracked metric goes")
	require.NoError(t, tr.Register(c), "and can come back")
}
