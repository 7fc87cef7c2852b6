package querier

import (
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/seriespb"
)

// randomSequentialChunks builds n float chunks with gaps of random length between their samples.
func randomSequentialChunks(t *testing.T, rng *rand.Rand, n int) []timedChunk {
	t.Helper()
	var (
		out []timedChunk
		ts  int64
	)
	for range n {
		chk := chunkenc.NewXORChunk()
		app, err := chk.Appender()
		require.NoError(t, err)
		c := timedChunk{chunk: chk, mint: ts + 1}
		for range 1 + rng.IntN(20) {
			ts += 1 + rng.Int64N(30)
			app.Append(0, ts, rng.Float64())
		}
		c.mint = min(c.mint+rng.Int64N(2), ts) // mint need not be the first sample: it only bounds it
		c.maxt = ts
		out = append(out, c)
	}
	return out
}

// The sequential iterator must behave exactly like the generic merge of one iterator per chunk, for any
// mix of Next and Seek, including seeks backwards, into gaps and past the end.
func TestSequentialChunksIteratorMatchesMerge(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		chks := randomSequentialChunks(t, rng, 1+rng.IntN(6))
		lset := labels.FromStrings("__name__", "m")
		parts := make([]storage.Series, len(chks))
		for i, c := range chks {
			parts[i] = &storage.SeriesEntry{Lset: lset, SampleIteratorFn: c.chunk.Iterator}
		}
		want := storage.ChainedSeriesMerge(parts...).Iterator(nil)
		series := &sequentialChunkSeries{lset: lset, chunks: chks}
		got := series.Iterator(nil)
		end := chks[len(chks)-1].maxt
		for op := range 60 {
			var wantType, gotType chunkenc.ValueType
			if rng.IntN(3) == 0 {
				target := rng.Int64N(end+20) - 5
				wantType, gotType = want.Seek(target), got.Seek(target)
			} else {
				wantType, gotType = want.Next(), got.Next()
			}
			require.Equal(t, wantType, gotType, "seed %d op %d", seed, op)
			if wantType == chunkenc.ValNone {
				break
			}
			wt, wv := want.At()
			gt, gv := got.At()
			require.Equal(t, wt, gt, "seed %d op %d", seed, op)
			require.Equal(t, wv, gv, "seed %d op %d", seed, op)
		}
		require.NoError(t, got.Err())
		// Reusing the iterator starts from the first sample again.
		got = series.Iterator(got)
		require.Equal(t, chunkenc.ValFloat, got.Next())
		first := chks[0].chunk.Iterator(nil)
		first.Next()
		require.Equal(t, first.AtT(), got.AtT())
	}
}

// replicaChunks encodes samples (in time order) as a replica would: chunks of random sizes, skipping the
// samples the replica missed.
func replicaChunks(t *testing.T, samples [][2]int64, cut func() int, missed func(int) bool) []*seriespb.Chunk {
	t.Helper()
	var out []*seriespb.Chunk
	var (
		chk   *chunkenc.XORChunk
		app   chunkenc.Appender
		count int
		limit int
	)
	flush := func() {
		if chk != nil && chk.NumSamples() > 0 {
			it := chk.Iterator(nil)
			it.Next()
			mint := it.AtT()
			var maxt int64
			for vt := chunkenc.ValFloat; vt != chunkenc.ValNone; vt = it.Next() {
				maxt = it.AtT()
			}
			out = append(out, &seriespb.Chunk{MinTimeMs: mint, MaxTimeMs: maxt, Encoding: uint32(chk.Encoding()), Data: chk.Bytes()})
		}
		chk, count, limit = chunkenc.NewXORChunk(), 0, cut()
		var err error
		app, err = chk.Appender()
		require.NoError(t, err)
	}
	flush()
	for i, s := range samples {
		if missed(i) {
			continue
		}
		app.Append(0, s[0], float64(s[1]))
		if count++; count >= limit {
			flush()
		}
	}
	flush()
	return out
}

// However replicas cut their chunks and whichever samples each missed, the merged series holds every
// sample any replica has, once, in time order, for any mix of Next and Seek. Identical replicas are read
// without a merge.
func TestNewChunkSeries_MergesReplicas(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 11))
		var samples [][2]int64
		ts := int64(0)
		for range 1 + rng.IntN(200) {
			ts += 1 + rng.Int64N(20)
			samples = append(samples, [2]int64{ts, rng.Int64N(1000)})
		}
		replicas := 1 + rng.IntN(3)
		identical := rng.IntN(2) == 0
		var encoded []*seriespb.Chunk
		have := make([]bool, len(samples))
		cutSize := 1 + rng.IntN(40)
		for range replicas {
			cut, missed := func() int { return cutSize }, func(int) bool { return false }
			if !identical {
				cut = func() int { return 1 + rng.IntN(40) }
				missed = func(int) bool { return rng.IntN(4) == 0 }
			}
			encoded = append(encoded, replicaChunks(t, samples, cut, func(i int) bool {
				m := missed(i)
				have[i] = have[i] || !m
				return m
			})...)
		}
		rng.Shuffle(len(encoded), func(i, j int) { encoded[i], encoded[j] = encoded[j], encoded[i] })
		var want [][2]int64
		for i, s := range samples {
			if have[i] {
				want = append(want, s)
			}
		}

		series, chunkBytes, err := newChunkSeries(labels.FromStrings("__name__", "m"), encoded)
		require.NoError(t, err)
		if identical {
			for _, c := range series.(*sequentialChunkSeries).chunks {
				require.IsType(t, &chunkenc.XORChunk{}, c.chunk, "seed %d: duplicates are dropped, not merged", seed)
			}
			total := 0
			for _, c := range encoded {
				total += len(c.Data)
			}
			require.Equal(t, total/replicas, chunkBytes, "seed %d: identical replicas' chunks count once", seed)
		}
		it := series.Iterator(nil)
		pos := -1 // index in want of the iterator's sample
		for op := range 80 {
			var vt chunkenc.ValueType
			if rng.IntN(3) == 0 {
				target := rng.Int64N(ts+10) - 5
				vt = it.Seek(target)
				if pos < 0 || pos >= len(want) || want[pos][0] < target {
					for pos = max(pos, 0); pos < len(want) && want[pos][0] < target; pos++ {
					}
				}
			} else {
				vt = it.Next()
				pos++
			}
			if pos >= len(want) {
				require.Equal(t, chunkenc.ValNone, vt, "seed %d op %d", seed, op)
				break
			}
			require.Equal(t, chunkenc.ValFloat, vt, "seed %d op %d", seed, op)
			gotT, gotV := it.At()
			require.Equal(t, want[pos], [2]int64{gotT, int64(gotV)}, "seed %d op %d", seed, op)
		}
		require.NoError(t, it.Err())
	}
}
