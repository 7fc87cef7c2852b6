package app

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// In -target=all the distributor pushes to its own ingester with a function call: writes keep working
// with the gRPC server gone, and the ingester checks them exactly as it checks a remote push.
func TestApp_AllInOnePushesToTheLocalIngesterWithoutGRPC(t *testing.T) {
	a := newTestApp(t, t.TempDir())
	r := startApp(t, a)
	a.server.grpcServer.Stop()

	ingested := func() float64 {
		mfs, err := a.reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "strata_ingester_ingested_samples_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatal("no strata_ingester_ingested_samples_total")
		return 0
	}
	before := ingested()
	now := time.Now()
	status, body := r.push(t, "tenant-1", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "instance", Value: "a"}},
		Samples: []prompb.Sample{{Timestamp: now.Add(-time.Second).UnixMilli(), Value: 1}, {Timestamp: now.UnixMilli(), Value: 1}},
	}}})
	require.Equal(t, http.StatusNoContent, status, body)
	require.Equal(t, before+2, ingested())

	// The ingester's own rejections come back as they do over gRPC: a 400, not retried.
	status, body = r.push(t, "tenant-1", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "instance", Value: "a"}},
		Samples: []prompb.Sample{{Timestamp: now.Add(-time.Hour).UnixMilli(), Value: 1}},
	}}})
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, "out of order")
	require.Equal(t, before+2, ingested())
}
