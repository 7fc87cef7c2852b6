package ingester

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
)

// BenchmarkIngesterPush appends 1000 series × 1 sample per operation to one tenant's head, every
// operation one second after the previous one. Steps are short so that no head compaction runs during the
// benchmark.
func BenchmarkIngesterPush(b *testing.B) {
	const seriesCount = 1000
	ing := startIngester(b, testConfig(b.TempDir()))
	ctx := tenantCtx(tenantA)

	req := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, seriesCount)}
	for i := range req.Timeseries {
		req.Timeseries[i] = prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: "http_requests_total"},
				{Name: "cluster", Value: "eu-west-1"},
				{Name: "code", Value: fmt.Sprint(200 + i%5)},
				{Name: "handler", Value: fmt.Sprintf("/api/v1/handler/%d", i%50)},
				{Name: "instance", Value: fmt.Sprintf("10.0.%d.%d:9090", i/250, i%250)},
				{Name: "job", Value: "api-server"},
				{Name: "method", Value: "GET"},
				{Name: "namespace", Value: "production"},
				{Name: "pod", Value: fmt.Sprintf("api-server-%d", i)},
				{Name: "series", Value: fmt.Sprint(i)},
			},
			Samples: []prompb.Sample{{}},
		}
	}
	// Re-marshalling outside the timer keeps the measurement to the ingester's own work.
	body := func(ts int64) *ingesterpb.PushRequest {
		for i := range req.Timeseries {
			req.Timeseries[i].Samples[0] = prompb.Sample{Timestamp: ts, Value: float64(ts)}
		}
		raw, err := req.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		return &ingesterpb.PushRequest{WriteRequest: raw}
	}

	// The first push creates the series; the benchmark measures appends to existing ones.
	if _, err := ing.Push(ctx, body(baseTs)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	ts := baseTs
	for b.Loop() {
		b.StopTimer()
		ts += 1000
		pr := body(ts)
		b.StartTimer()
		if _, err := ing.Push(context.WithoutCancel(ctx), pr); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*seriesCount)/b.Elapsed().Seconds(), "samples/s")
}
