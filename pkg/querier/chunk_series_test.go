package querier

import (
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
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
		require.True(t, chunksAreSequential(chks))
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

func TestChunksAreSequential(t *testing.T) {
	chk := chunkenc.NewXORChunk()
	require.True(t, chunksAreSequential(nil))
	require.True(t, chunksAreSequential([]timedChunk{{chk, 0, 10}, {chk, 11, 20}}))
	require.False(t, chunksAreSequential([]timedChunk{{chk, 0, 10}, {chk, 10, 20}}), "shared timestamp")
	require.False(t, chunksAreSequential([]timedChunk{{chk, 11, 20}, {chk, 0, 10}}), "out of order")
}
