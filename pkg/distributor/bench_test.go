package distributor

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-metrics/strata/pkg/ingester/client"
	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// noopIngester accepts every push without looking at it.
type noopIngester struct{}

// PushEncoded does what the gRPC client does short of writing to a connection: marshal and free.
func (noopIngester) PushEncoded(_ context.Context, req *ingesterpb.EncodedPushRequest) error {
	sent, err := ingesterpb.PushCodec.Marshal(req)
	if err != nil {
		return err
	}
	sent.Free()
	return nil
}

type noopClients struct{}

func (noopClients) PusherFor(string) (client.Pusher, error) {
	return noopIngester{}, nil
}

// BenchmarkPush measures the distributor's work for one remote-write request of 1000 series × 1 sample
// with 10 labels each: decode, validate, shard and marshal per ingester (RF=3 over 3 ingesters that do
// nothing).
func BenchmarkPush(b *testing.B) {
	const seriesCount = 1000
	env := newTestEnv(b, withReplication(3, 3), withDefaultLimits(),
		// Enforced, as in production, but never reached: the benchmark's clock does not move.
		withLimits(func(l *validation.Limits) { l.IngestionRate, l.IngestionBurstSize = 1e15, 1<<50 }))
	env.d.clients = noopClients{}
	body := encodeRequest(b, benchmarkRequest(seriesCount, testNow.UnixMilli()))
	ctx := tenant.NewContext(context.Background(), tenantA)

	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/push", bytes.NewReader(body))
		r.Header.Set("Content-Encoding", "snappy")
		w := httptest.NewRecorder()
		env.d.ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N*seriesCount)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkPushV2 is BenchmarkPush for the same series sent as remote write 2.0, each with the metadata
// Prometheus attaches to every 2.0 series (type and help).
func BenchmarkPushV2(b *testing.B) {
	const seriesCount = 1000
	env := newTestEnv(b, withReplication(3, 3), withDefaultLimits(),
		withLimits(func(l *validation.Limits) { l.IngestionRate, l.IngestionBurstSize = 1e15, 1<<50 }))
	env.d.clients = noopClients{}
	body := encodeRequestV2(b, benchmarkRequest(seriesCount, testNow.UnixMilli()), true)
	ctx := tenant.NewContext(context.Background(), tenantA)

	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/push", bytes.NewReader(body))
		r.Header.Set("Content-Encoding", "snappy")
		r.Header.Set("Content-Type", contentTypeV2)
		w := httptest.NewRecorder()
		env.d.ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N*seriesCount)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkValidateAndShard isolates push (validation, tokens, replication) from HTTP and decoding.
func BenchmarkValidateAndShard(b *testing.B) {
	const seriesCount = 1000
	env := newTestEnv(b, withReplication(3, 3), withDefaultLimits())
	env.d.clients = noopClients{}
	ctx := tenant.NewContext(context.Background(), tenantA)
	src := benchmarkRequest(seriesCount, testNow.UnixMilli())
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		// push filters the request in place; give it a fresh copy of the series headers each time.
		req := &prompb.WriteRequest{Timeseries: append([]prompb.TimeSeries(nil), src.Timeseries...)}
		b.StartTimer()
		if _, err := env.d.push(ctx, req, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*seriesCount)/b.Elapsed().Seconds(), "samples/s")
}
