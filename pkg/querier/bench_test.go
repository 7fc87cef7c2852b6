package querier

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"google.golang.org/grpc"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/seriespb"
)

// replayIngester answers every QueryStream with the same pre-built messages, so that a benchmark
// measures the querier alone.
type replayIngester struct {
	ingesterpb.IngesterClient
	msgs []*ingesterpb.QueryStreamResponse
}

func (r *replayIngester) QueryStream(context.Context, *ingesterpb.QueryRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[ingesterpb.QueryStreamResponse], error) {
	return &fakeStream[ingesterpb.QueryStreamResponse]{msgs: r.msgs}, nil
}

type replayClients map[string]*replayIngester

func (c replayClients) GetClientFor(addr string) (ingesterpb.IngesterClient, error) {
	return c[addr], nil
}

// benchmarkStream is what one ingester streams for 2h of 1000 series scraped every 15 s: 480 samples
// per series in 4 chunks of 120, as the TSDB cuts them.
func benchmarkStream(b *testing.B, seriesCount int) []*ingesterpb.QueryStreamResponse {
	return benchmarkStreamChunks(b, seriesCount, 4)
}

// benchmarkStreamChunks is benchmarkStream with chunksPerSeries chunks of 120 samples per series.
func benchmarkStreamChunks(tb testing.TB, seriesCount, chunksPerSeries int) []*ingesterpb.QueryStreamResponse {
	const samplesPerChunk, interval = 120, 15000
	var msgs []*ingesterpb.QueryStreamResponse
	batch := &ingesterpb.QueryStreamResponse{}
	for i := range seriesCount {
		// In label order, as ingesters stream them.
		lset := labels.FromStrings("__name__", "node_cpu_seconds_total", "cpu", fmt.Sprint(i*8/seriesCount),
			"instance", fmt.Sprintf("10.%03d.%03d.%03d:9100", i/62500, i/250%250, i%250), "job", "node", "mode", "idle")
		s := &seriespb.Series{Labels: seriespb.FromLabels(lset)}
		ts, v := int64(0), 0.0
		for range chunksPerSeries {
			chk := chunkenc.NewXORChunk()
			app, err := chk.Appender()
			if err != nil {
				tb.Fatal(err)
			}
			mint := ts
			for range samplesPerChunk {
				app.Append(0, ts, v)
				ts += interval
				v += float64(i%7) + 0.25
			}
			s.Chunks = append(s.Chunks, &seriespb.Chunk{MinTimeMs: mint, MaxTimeMs: ts - interval, Encoding: uint32(chk.Encoding()), Data: chk.Bytes()})
		}
		batch.Series = append(batch.Series, s)
		if len(batch.Series) == 128 {
			msgs = append(msgs, batch)
			batch = &ingesterpb.QueryStreamResponse{}
		}
	}
	return append(msgs, batch)
}

// BenchmarkIngesterQuerierSelect reads 1000 series × 480 samples through the ingester queryable: decode
// the stream, merge the replicas' answers dropping duplicates, and iterate. "all" reads every sample;
// "range-steps" seeks as a range query's rate over 1m windows at a 5m step does.
func BenchmarkIngesterQuerierSelect(b *testing.B) {
	const seriesCount = 1000
	msgs := benchmarkStream(b, seriesCount)
	for _, rf := range []int{1, 3} {
		clients := replayClients{}
		set := ring.ReplicationSet{MaxErrors: rf / 2}
		for i := range rf {
			addr := fmt.Sprintf("10.0.0.%d:9095", i)
			clients[addr] = &replayIngester{msgs: msgs}
			set.Instances = append(set.Instances, ring.InstanceDesc{ID: addr, Addr: addr, State: ring.ACTIVE})
		}
		q := NewIngesterQueryable(fakeRing{set: set}, clients)
		matcher := labels.MustNewMatcher(labels.MatchEqual, "__name__", "node_cpu_seconds_total")
		for _, mode := range []string{"all", "range-steps"} {
			b.Run(fmt.Sprintf("rf=%d/%s", rf, mode), func(b *testing.B) {
				b.ReportAllocs()
				var samples int
				for b.Loop() {
					querier, err := q.Querier(0, 2*3600*1000)
					if err != nil {
						b.Fatal(err)
					}
					ss := querier.Select(context.Background(), true, &storage.SelectHints{Start: 0, End: 2 * 3600 * 1000}, matcher)
					var it chunkenc.Iterator
					for ss.Next() {
						it = ss.At().Iterator(it)
						if mode == "all" {
							for it.Next() != chunkenc.ValNone {
								samples++
							}
						} else {
							for t := int64(60000); t <= 2*3600*1000; t += 300000 {
								if it.Seek(t-60000) == chunkenc.ValNone {
									break
								}
								for it.AtT() <= t && it.Next() != chunkenc.ValNone {
									samples++
								}
							}
						}
						if err := it.Err(); err != nil {
							b.Fatal(err)
						}
					}
					if err := ss.Err(); err != nil {
						b.Fatal(err)
					}
					_ = querier.Close()
				}
				b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}
