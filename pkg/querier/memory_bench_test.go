package querier

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// streamingIngester is a gRPC ingester that streams the same pre-built answer to every QueryStream.
type streamingIngester struct {
	ingesterpb.UnimplementedIngesterServer
	msgs []*ingesterpb.QueryStreamResponse
}

func (s *streamingIngester) QueryStream(_ *ingesterpb.QueryRequest, stream grpc.ServerStreamingServer[ingesterpb.QueryStreamResponse]) error {
	for _, m := range s.msgs {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return nil
}

type connClients map[string]ingesterpb.IngesterClient

func (c connClients) GetClientFor(addr string) (ingesterpb.IngesterClient, error) {
	return c[addr], nil
}

// startStreamingIngesters serves msgs from n gRPC ingesters on 127.0.0.1 and returns a queryable over
// them (RF = n).
func startStreamingIngesters(b *testing.B, n int, msgs []*ingesterpb.QueryStreamResponse) *IngesterQueryable {
	clients := connClients{}
	set := ring.ReplicationSet{MaxErrors: n / 2}
	for i := range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := grpc.NewServer(grpc.MaxSendMsgSize(100 << 20))
		ingesterpb.RegisterIngesterServer(srv, &streamingIngester{msgs: msgs})
		go func() { _ = srv.Serve(lis) }()
		b.Cleanup(srv.Stop)
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(100<<20)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		addr := lis.Addr().String()
		clients[addr] = ingesterpb.NewIngesterClient(conn)
		set.Instances = append(set.Instances, ring.InstanceDesc{ID: fmt.Sprintf("ingester-%d", i), Addr: addr, State: ring.ACTIVE})
	}
	return NewIngesterQueryable(fakeRing{set: set}, clients)
}

// heapPeak samples the heap's object bytes every 200µs until stopped and reports the highest reading.
type heapPeak struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startHeapPeak() *heapPeak {
	h := &heapPeak{stop: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > h.peak.Load() {
			h.peak.Store(v)
		}
	}
	read()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return h
}

func (h *heapPeak) Stop() uint64 {
	close(h.stop)
	h.wg.Wait()
	return h.peak.Load()
}

// BenchmarkIngesterQuerierSelectMemory measures the querier's peak heap while a query returns 200k series
// (one 120-sample chunk each) from 3 real gRPC ingesters holding the same replicas, read as the API reads
// them: through FetchLimitedQueryable, for a tenant without fetch limits. "stream" reads each series once
// and drops it, as a consumer that streams its answer does (remote read, federation); "expand" keeps
// every series, as the PromQL engine does; "expand-fetch-limited" is "expand" for a tenant whose fetch
// limits the query stays under. peak-heap-MB is the highest heap (live objects and garbage not yet
// collected) during the query, above the heap before it; the garbage collector runs at GOGC=20 meanwhile
// so that the peak is close to what is live.
func BenchmarkIngesterQuerierSelectMemory(b *testing.B) {
	const seriesCount = 200_000
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	msgs := benchmarkStreamChunks(b, seriesCount, 1)
	q := fetchLimited(startStreamingIngesters(b, 3, msgs), seriesCount, 1<<30)
	matcher := labels.MustNewMatcher(labels.MatchEqual, "__name__", "node_cpu_seconds_total")
	for _, mode := range []string{"stream", "expand", "expand-fetch-limited"} {
		ctx := tenant.NewContext(context.Background(), "unlimited")
		if mode == "expand-fetch-limited" {
			ctx = tenant.NewContext(context.Background(), "limited")
		}
		b.Run(mode, func(b *testing.B) {
			var peak uint64
			for b.Loop() {
				runtime.GC()
				base := startHeapPeak()
				before := base.Stop()
				h := startHeapPeak()
				querier, err := q.Querier(0, 2*3600*1000)
				if err != nil {
					b.Fatal(err)
				}
				ss := querier.Select(ctx, true, &storage.SelectHints{Start: 0, End: 2 * 3600 * 1000}, matcher)
				var (
					it   chunkenc.Iterator
					kept []storage.Series
					n    int
				)
				for ss.Next() {
					s := ss.At()
					if mode != "stream" {
						kept = append(kept, s)
					}
					it = s.Iterator(it)
					for it.Next() != chunkenc.ValNone {
					}
					if err := it.Err(); err != nil {
						b.Fatal(err)
					}
					n++
				}
				if err := ss.Err(); err != nil {
					b.Fatal(err)
				}
				if n != seriesCount {
					b.Fatalf("got %d series, want %d", n, seriesCount)
				}
				_ = querier.Close()
				peak = max(peak, h.Stop()-before)
				runtime.KeepAlive(kept)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}
