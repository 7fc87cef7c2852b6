package querymiddleware

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/cache/cachetest"
)

func TestResultsCache_InMemcached(t *testing.T) {
	server := cachetest.StartMemcached(t)
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	cfg := testConfig(t, "-query-frontend.results-cache.backend=memcached",
		"-query-frontend.results-cache.memcached.addresses="+server.Addr)
	rt, reg := newTestMiddleware(t, cfg, testLimits(nil), d, dataEnd.Add(time.Hour))
	queries := []string{`rate(http_requests_total[5m])`, `rpc_latency_seconds`, `rate(temperature_celsius[5m])`}

	for _, query := range queries {
		req := rangeRequest(t, query, dataStart, dataEnd, "1m")
		want := directAnswer(t, handler, req)
		cold := roundTrip(t, rt, req)
		requireSameAnswer(t, want, cold, "cold %s", query)
		require.Equal(t, CacheMiss, cold.header.Get(CacheHeader))
		warm := roundTrip(t, rt, req)
		requireSameAnswer(t, want, warm, "warm %s", query)
		require.Equal(t, CacheHit, warm.header.Get(CacheHeader), "%s: entries larger than the max item size are not stored", query)
	}
	d.takeRequests()
	require.Equal(t, 0.0, testutil.ToFloat64(rt.cache.skipped.WithLabelValues(skipWarnings)))

	// A memcached that is down makes misses, never failures.
	server.Stop(t)
	for _, query := range queries {
		req := rangeRequest(t, query, dataStart, dataEnd, "1m")
		got := roundTrip(t, rt, req)
		require.Equal(t, http.StatusOK, got.status, string(got.body))
		requireSameAnswer(t, directAnswer(t, handler, req), got, "memcached down: %s", query)
		require.Equal(t, CacheMiss, got.header.Get(CacheHeader))
	}
	require.Len(t, d.takeRequests(), 3*4)
	fetchErrors := gaugeOrCounter(t, reg, "strata_cache_memcached_errors_total", "operation", "fetch")
	require.Equal(t, 3.0, fetchErrors, "one failed fetch per query")
}

// gaugeOrCounter returns the value of the series of metric name in reg with label = value.
func gaugeOrCounter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
		for _, m := range family.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	require.Failf(t, "metric not found", "%s{%s=%q}", name, label, value)
	return 0
}
