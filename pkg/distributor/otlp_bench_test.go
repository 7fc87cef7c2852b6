package distributor

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// benchmarkOTLPMetrics is BenchmarkPush's request as an OTel SDK would export it: 10 resources (the
// instances) of 100 cumulative counter points each, every point becoming a series of 10 labels.
func benchmarkOTLPMetrics(seriesCount int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	ts := pcommon.NewTimestampFromTime(testNow)
	const perResource = 100
	for r := range seriesCount / perResource {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "api-server")
		rm.Resource().Attributes().PutStr("service.instance.id", fmt.Sprintf("10.0.0.%d:9090", r))
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("http.requests")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for p := range perResource {
			i := r*perResource + p
			dp := sum.DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(float64(i))
			attrs := dp.Attributes()
			attrs.PutStr("cluster", "eu-west-1")
			attrs.PutStr("code", fmt.Sprint(200+i%5))
			attrs.PutStr("handler", fmt.Sprintf("/api/v1/handler/%d", i%50))
			attrs.PutStr("method", "GET")
			attrs.PutStr("namespace", "production")
			attrs.PutStr("pod", fmt.Sprintf("api-server-%d", i))
			attrs.PutStr("series", fmt.Sprint(i))
		}
	}
	return md
}

// BenchmarkOTLPPush measures the distributor's work for one OTLP export of 1000 series × 1 sample with
// 10 labels each, protobuf as SDKs send it: decode, translate, validate, shard and marshal per ingester
// (RF=3 over 3 ingesters that do nothing). Compare with BenchmarkPush, the same series in remote write.
func BenchmarkOTLPPush(b *testing.B) {
	b.Run("start-times=off", func(b *testing.B) { benchmarkOTLPPush(b, false) })
	// Every point has a start time, which goes to the ingesters as a 2.0 request.
	b.Run("start-times=on", func(b *testing.B) { benchmarkOTLPPush(b, true) })
}

func benchmarkOTLPPush(b *testing.B, startTimes bool) {
	const seriesCount = 1000
	env := newOTLPEnv(b, withReplication(3, 3),
		withLimits(func(l *validation.Limits) {
			l.IngestionRate, l.IngestionBurstSize = 1e15, 1<<50
			l.OTelCreatedTimestampZeroIngestionEnabled = startTimes
		}))
	env.d.clients = noopClients{}
	md := benchmarkOTLPMetrics(seriesCount)
	if startTimes {
		start := pcommon.NewTimestampFromTime(testNow.Add(-time.Hour))
		rms := md.ResourceMetrics()
		for i := range rms.Len() {
			dps := rms.At(i).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
			for j := range dps.Len() {
				dps.At(j).SetStartTimestamp(start)
			}
		}
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	ctx := tenant.NewContext(context.Background(), tenantA)

	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	cpuStart := processCPUTime(b)
	for b.Loop() {
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/otlp/v1/metrics", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		env.otlp.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N*seriesCount)/b.Elapsed().Seconds(), "samples/s")
	// Per CPU-second of the whole process (GC and replication goroutines included): unlike samples/s, it
	// holds on a machine that other work shares.
	b.ReportMetric(float64(b.N*seriesCount)/(processCPUTime(b)-cpuStart).Seconds(), "samples/cpu-s")
}

// processCPUTime is the user and system CPU time the process has used.
func processCPUTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
