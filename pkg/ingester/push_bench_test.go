package ingester

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
)

// BenchmarkIngesterPush appends one sample to every series of a request per operation, to one tenant's
// head, every round of requests one second after the previous one. With 1000 series the head fits in the
// CPU's caches; with 200k (scenario a's load, 2000 series per request) finding each series costs what it
// costs under real load, which depends on the head's stripe count (-blocks-storage.tsdb.stripe-size: 512,
// the TSDB's default 16384). Steps are short so that no head compaction runs during the benchmark.
func BenchmarkIngesterPush(b *testing.B) {
	for _, c := range []struct{ series, perRequest, stripes int }{
		{1000, 1000, 512},
		{200_000, 2000, 512},
		{200_000, 2000, 16384},
	} {
		b.Run(fmt.Sprintf("series=%d/stripes=%d", c.series, c.stripes), func(b *testing.B) {
			benchmarkIngesterPush(b, c.series, c.perRequest, c.stripes, false)
		})
	}
}

// BenchmarkIngesterPushV2 is BenchmarkIngesterPush with the series sent as remote write 2.0, as a
// distributor passes 2.0 series on (the request's symbols table and its series).
func BenchmarkIngesterPushV2(b *testing.B) {
	for _, c := range []struct{ series, perRequest, stripes int }{
		{1000, 1000, 512},
		{200_000, 2000, 512},
	} {
		b.Run(fmt.Sprintf("series=%d/stripes=%d", c.series, c.stripes), func(b *testing.B) {
			benchmarkIngesterPush(b, c.series, c.perRequest, c.stripes, true)
		})
	}
}

func benchmarkIngesterPush(b *testing.B, seriesCount, perRequest, stripes int, v2 bool) {
	cfg := testConfig(b.TempDir())
	cfg.StripeSize = stripes
	limits := defaultLimits(b)
	limits.MaxGlobalSeriesPerUser = 1_000_000 // enforced, as in production, but not reached
	ing := startIngesterWith(b, cfg, nil, limits)
	ctx := context.WithoutCancel(tenantCtx(tenantA))

	series := make([]prompb.TimeSeries, seriesCount)
	for i := range series {
		series[i] = prompb.TimeSeries{
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
	// Request n carries the series [n*perRequest, (n+1)*perRequest) of round n/requestsPerRound.
	// Marshalling happens outside the timer: the measurement is the ingester's own work.
	requestsPerRound := seriesCount / perRequest
	request := func(n int) *ingesterpb.PushRequest {
		ts := baseTs + int64(n/requestsPerRound)*1000
		first := (n % requestsPerRound) * perRequest
		batch := series[first : first+perRequest]
		for i := range batch {
			batch[i].Samples[0] = prompb.Sample{Timestamp: ts, Value: float64(ts)}
		}
		if v2 {
			return &ingesterpb.PushRequest{WriteRequestV2: marshalV2(b, batch)}
		}
		raw, err := (&prompb.WriteRequest{Timeseries: batch}).Marshal()
		if err != nil {
			b.Fatal(err)
		}
		return &ingesterpb.PushRequest{WriteRequest: raw}
	}

	// The first round creates the series; the benchmark measures appends to existing ones.
	n := 0
	for ; n < requestsPerRound; n++ {
		if _, err := ing.Push(ctx, request(n)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		req := request(n)
		n++
		b.StartTimer()
		if _, err := ing.Push(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perRequest)/b.Elapsed().Seconds(), "samples/s")
}

// marshalV2 encodes float series as a remote write 2.0 request.
func marshalV2(tb testing.TB, series []prompb.TimeSeries) []byte {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: make([]writev2.TimeSeries, len(series))}
	for i, ts := range series {
		for _, l := range ts.Labels {
			req.Timeseries[i].LabelsRefs = append(req.Timeseries[i].LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		for _, smp := range ts.Samples {
			req.Timeseries[i].Samples = append(req.Timeseries[i].Samples, writev2.Sample{Value: smp.Value, Timestamp: smp.Timestamp})
		}
	}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}
