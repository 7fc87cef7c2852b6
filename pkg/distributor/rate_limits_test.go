package distributor

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/validation"
)

func withLimits(f func(*validation.Limits)) envOption {
	return func(s *envSettings) { f(&s.limits) }
}

// samplesRequest is one series with n samples.
func samplesRequest(n int) *prompb.WriteRequest {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = testNow.UnixMilli() - int64(n-i)
	}
	return &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(lbls("__name__", "up"), ts...)}}
}

func TestIngestionRate_429BeyondTheTenantsRateOthersUnaffected(t *testing.T) {
	env := newTestEnv(t, withLimits(func(l *validation.Limits) { l.IngestionRate, l.IngestionBurstSize = 10, 20 }))

	require.Equal(t, http.StatusNoContent, env.push(t, "a", samplesRequest(15)).Code)
	resp := env.push(t, "a", samplesRequest(10))
	require.Equal(t, http.StatusTooManyRequests, resp.Code, resp.Body.String())
	require.Contains(t, resp.Body.String(), "err-strata-ingestion-rate")
	require.Contains(t, resp.Body.String(), "-distributor.ingestion-rate-limit")
	require.Equal(t, "1", resp.Header().Get("Retry-After"), "Prometheus waits before it retries")
	require.Equal(t, 10.0, testutil.ToFloat64(env.discardedSamples.WithLabelValues(validation.ReasonIngestionRate, "a")))
	require.Equal(t, http.StatusNoContent, env.push(t, "b", samplesRequest(20)).Code, "each tenant has its own bucket")

	env.d.now = func() time.Time { return testNow.Add(time.Second) } // refills 10 samples
	require.Equal(t, http.StatusNoContent, env.push(t, "a", samplesRequest(10)).Code)
	require.Equal(t, http.StatusTooManyRequests, env.push(t, "a", samplesRequest(10)).Code)
}

func TestRequestRate_RefusedBeforeTheBodyIsDecoded(t *testing.T) {
	env := newTestEnv(t, withLimits(func(l *validation.Limits) { l.RequestRate, l.RequestBurstSize = 1, 2 }))
	require.Equal(t, http.StatusNoContent, env.push(t, "a", samplesRequest(1)).Code)
	require.Equal(t, http.StatusNoContent, env.push(t, "a", samplesRequest(1)).Code)
	// Not even snappy: a 400 would mean the body was read.
	resp := env.do(newPushRequest(t, "a", []byte("garbage")))
	require.Equal(t, http.StatusTooManyRequests, resp.Code, resp.Body.String())
	require.True(t, strings.Contains(resp.Body.String(), "err-strata-request-rate"), resp.Body.String())
	require.Equal(t, http.StatusNoContent, env.push(t, "b", samplesRequest(1)).Code)
}

type fixedCount int

func (n fixedCount) HealthyInstancesCount(ring.Operation) int { return int(n) }

func TestIngestionRate_SharedOutOverTheHealthyDistributors(t *testing.T) {
	env := newTestEnv(t, withLimits(func(l *validation.Limits) { l.IngestionRate, l.IngestionBurstSize = 20, 10 }))
	env.d.rates.distributors = ring.NewHealthyCount(fixedCount(2), ring.Write)
	require.Equal(t, http.StatusNoContent, env.push(t, "a", samplesRequest(10)).Code, "the burst is per distributor")
	env.d.now = func() time.Time { return testNow.Add(time.Second) }
	require.Equal(t, http.StatusTooManyRequests, env.push(t, "a", samplesRequest(11)).Code, "one second refills 20/2")
	require.Equal(t, http.StatusNoContent, env.push(t, "a", samplesRequest(10)).Code)
}
