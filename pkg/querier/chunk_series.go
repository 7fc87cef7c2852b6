package querier

import (
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// timedChunk is one decoded chunk of a series with the time range it covers.
type timedChunk struct {
	chunk      chunkenc.Chunk
	mint, maxt int64
}

// chunksAreSequential reports whether every chunk starts after the previous one ends, which is how one
// TSDB hands out a series' chunks. Only then can they be read one after another without a merge.
func chunksAreSequential(chks []timedChunk) bool {
	for i := 1; i < len(chks); i++ {
		if chks[i].mint <= chks[i-1].maxt {
			return false
		}
	}
	return true
}

// sequentialChunkSeries is a series whose chunks are in time order and do not overlap.
type sequentialChunkSeries struct {
	lset   labels.Labels
	chunks []timedChunk
}

func (s *sequentialChunkSeries) Labels() labels.Labels { return s.lset }

func (s *sequentialChunkSeries) Iterator(reuse chunkenc.Iterator) chunkenc.Iterator {
	it, ok := reuse.(*sequentialChunksIterator)
	if !ok {
		it = &sequentialChunksIterator{}
	}
	*it = sequentialChunksIterator{chunks: s.chunks, i: -1, cur: it.cur}
	return it
}

var _ storage.Series = (*sequentialChunkSeries)(nil)

// sequentialChunksIterator reads sequential chunks one after the other. Compared with merging one
// iterator per chunk, it keeps no heap and lets Seek skip whole chunks by their time range, which is
// most of the work of a range query's step-by-step seeks.
type sequentialChunksIterator struct {
	chunks []timedChunk
	i      int               // the chunk cur reads; -1 before the first
	cur    chunkenc.Iterator // reused from chunk to chunk
	typ    chunkenc.ValueType
	err    error
}

func (it *sequentialChunksIterator) Next() chunkenc.ValueType {
	for it.err == nil {
		if it.i >= 0 && it.i < len(it.chunks) {
			if it.typ = it.cur.Next(); it.typ != chunkenc.ValNone {
				return it.typ
			}
			if it.err = it.cur.Err(); it.err != nil {
				break
			}
		}
		if it.i+1 >= len(it.chunks) {
			it.i = len(it.chunks)
			break
		}
		it.i++
		it.cur = it.chunks[it.i].chunk.Iterator(it.cur)
	}
	it.typ = chunkenc.ValNone
	return it.typ
}

func (it *sequentialChunksIterator) Seek(t int64) chunkenc.ValueType {
	if it.err != nil {
		return chunkenc.ValNone
	}
	if it.typ != chunkenc.ValNone && it.cur.AtT() >= t {
		return it.typ
	}
	next := max(it.i, 0)
	for next < len(it.chunks) && it.chunks[next].maxt < t {
		next++
	}
	if next >= len(it.chunks) {
		it.i, it.typ = len(it.chunks), chunkenc.ValNone
		return it.typ
	}
	if next != it.i {
		it.i = next
		it.cur = it.chunks[next].chunk.Iterator(it.cur)
	}
	if it.typ = it.cur.Seek(t); it.typ != chunkenc.ValNone {
		return it.typ
	}
	if it.err = it.cur.Err(); it.err != nil {
		return chunkenc.ValNone
	}
	// Every sample of the following chunks is after this chunk's maxt, so after t.
	return it.Next()
}

func (it *sequentialChunksIterator) At() (int64, float64) { return it.cur.At() }

func (it *sequentialChunksIterator) AtHistogram(h *histogram.Histogram) (int64, *histogram.Histogram) {
	return it.cur.AtHistogram(h)
}

func (it *sequentialChunksIterator) AtFloatHistogram(fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	return it.cur.AtFloatHistogram(fh)
}

func (it *sequentialChunksIterator) AtT() int64  { return it.cur.AtT() }
func (it *sequentialChunksIterator) AtST() int64 { return it.cur.AtST() }
func (it *sequentialChunksIterator) Err() error  { return it.err }
