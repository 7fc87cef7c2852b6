package storegateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc"

	"github.com/strata-metrics/strata/pkg/seriespb"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// discardSeriesServer is a Series stream that counts what it is sent, so the benchmark measures the
// store-gateway rather than gRPC.
type discardSeriesServer struct {
	grpc.ServerStream
	ctx    context.Context
	series int
}

func (s *discardSeriesServer) Context() context.Context { return s.ctx }
func (s *discardSeriesServer) Send(r *storegatewaypb.SeriesResponse) error {
	s.series += len(r.Series)
	return nil
}

// BenchmarkSeries reads 1000 series of one 2h block (one chunk each), with the chunks cache warm, cold
// (emptied before each read, so every chunk is read from the in-memory bucket and added to the cache), or
// disabled.
func BenchmarkSeries(b *testing.B) {
	lsets := make([]labels.Labels, 1000)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", "bench_metric", "instance", fmt.Sprintf("host-%04d", i), "job", "bench")
	}
	bkt := objstore.NewInMemBucket()
	hour := time.Hour.Milliseconds()
	ids := uploadBlocks(b, bkt, "bench", createBlocks(b, makeSeries(0, 3*hour+hour/2, lsets...)))
	writeBucketIndex(b, bkt, "bench")
	req := &storegatewaypb.SeriesRequest{
		MinTimeMs: 0, MaxTimeMs: 2*hour - 1,
		Matchers: seriespb.FromLabelMatchers([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "bench_metric")}),
		BlockIds: idStrings(ids),
	}

	for _, cache := range []string{"warm", "cold", "disabled"} {
		b.Run("chunks_cache="+cache, func(b *testing.B) {
			cfg := testConfig(b)
			if cache == "disabled" {
				cfg.ChunksCacheMaxSizeBytes = 0
			}
			sg := startStoreGateway(b, cfg, bkt)
			srv := &discardSeriesServer{ctx: tenant.NewContext(context.Background(), "bench")}
			require.NoError(b, sg.Series(req, srv)) // warm the caches
			require.Equal(b, 1000, srv.series)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if cache == "cold" {
					b.StopTimer()
					sg.chunksCache = newLRUCache("chunks", cfg.ChunksCacheMaxSizeBytes, chunkSize, sg.metrics)
					b.StartTimer()
				}
				srv.series = 0
				if err := sg.Series(req, srv); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
