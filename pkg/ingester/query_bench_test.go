package ingester

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/proto"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/validation"
)

// BenchmarkIngesterQueryStream streams 1000 series × 480 samples (2h scraped every 15 s) from one
// tenant's head, marshalled as gRPC would send them.
func BenchmarkIngesterQueryStream(b *testing.B) {
	const seriesCount, samplesPerSeries = 1000, 480
	ing := startIngester(b, testConfig(b.TempDir()))
	series := make([]prompb.TimeSeries, seriesCount)
	for i := range series {
		series[i] = floatSeries(lbls("__name__", "node_cpu_seconds_total", "cpu", fmt.Sprint(i%8),
			"instance", fmt.Sprintf("10.0.%d.%d:9100", i/250, i%250), "job", "node", "mode", "idle"))
		series[i].Samples = make([]prompb.Sample, 1)
	}
	for n := range int64(samplesPerSeries) {
		for i := range series {
			series[i].Samples[0] = prompb.Sample{Timestamp: baseTs + n*15000, Value: float64(n * int64(i%7))}
		}
		if err := ing.push(b, tenantA, series); err != nil {
			b.Fatal(err)
		}
	}
	defaults := validation.DefaultLimits()
	for name, limits := range map[string]*seriespb.FetchLimits{
		"limits=none": nil,
		// What a query carries by default: the checks run, and the answer is far below the limits.
		"limits=default": seriespb.NewFetchLimits(&defaults),
	} {
		b.Run(name, func(b *testing.B) {
			req := &ingesterpb.QueryRequest{StartMs: everything, EndMs: forever, Limits: limits,
				Matchers: []*seriespb.LabelMatcher{equal("__name__", "node_cpu_seconds_total")}}
			b.ReportAllocs()
			for b.Loop() {
				stream := &marshalOnlyStream{fakeQueryStream{ctx: tenantCtx(tenantA)}}
				if err := ing.QueryStream(req, stream); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*seriesCount*samplesPerSeries)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// marshalOnlyStream does what gRPC's server side does with a response: marshal it.
type marshalOnlyStream struct{ fakeQueryStream }

func (s *marshalOnlyStream) Send(resp *ingesterpb.QueryStreamResponse) error {
	_, err := proto.Marshal(resp)
	return err
}
