package querier

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-metrics/strata/pkg/seriespb"
)

// timedChunk is something to read samples from (one decoded chunk, or a merge of overlapping ones) with
// the time range it covers.
type timedChunk struct {
	chunk      chunkenc.Iterable
	mint, maxt int64
}

// newChunkSeries decodes a series' chunks, gathered from one or more answers, into a series that reads
// them in time order. Chunks identical to another one are dropped (replicas fed the same samples cut
// the same chunks), and chunks that still overlap are grouped and merged sample by sample. chunkBytes is
// the size of the chunks kept, what the series counts against the tenant's chunk bytes limit.
func newChunkSeries(lset labels.Labels, encoded []*seriespb.Chunk) (s storage.Series, chunkBytes int, err error) {
	if len(encoded) == 0 {
		// Label sets only (/api/v1/series), or a series without samples in range.
		return storage.NewListSeries(lset, nil), 0, nil
	}
	sorted := slices.IsSortedFunc(encoded, compareChunkRanges)
	if !sorted {
		encoded = slices.Clone(encoded)
		slices.SortStableFunc(encoded, compareChunkRanges)
	}
	chks := make([]timedChunk, 0, len(encoded))
	var group []chunkenc.Iterable // the chunks overlapping the last entry of chks, when more than one
	for i, c := range encoded {
		if isDuplicateChunk(encoded, i) {
			continue
		}
		chk, err := chunkenc.FromData(chunkenc.Encoding(c.Encoding), c.Data)
		if err != nil {
			return nil, 0, fmt.Errorf("decode chunk of series %s: %w", lset, err)
		}
		chunkBytes += len(c.Data)
		last := len(chks) - 1
		if last < 0 || c.MinTimeMs > chks[last].maxt {
			chks = append(chks, timedChunk{chunk: chk, mint: c.MinTimeMs, maxt: c.MaxTimeMs})
			group = nil
			continue
		}
		if group == nil {
			group = []chunkenc.Iterable{chks[last].chunk}
		}
		group = append(group, chk)
		chks[last].chunk = overlappingChunks(group)
		chks[last].maxt = max(chks[last].maxt, c.MaxTimeMs)
	}
	return &sequentialChunkSeries{lset: lset, chunks: chks}, chunkBytes, nil
}

func compareChunkRanges(a, b *seriespb.Chunk) int {
	if a.MinTimeMs != b.MinTimeMs {
		return cmp.Compare(a.MinTimeMs, b.MinTimeMs)
	}
	return cmp.Compare(a.MaxTimeMs, b.MaxTimeMs)
}

// isDuplicateChunk reports whether an earlier chunk of the sorted chunks, with the same time range, has
// the same encoding and bytes as chunk i.
func isDuplicateChunk(sorted []*seriespb.Chunk, i int) bool {
	c := sorted[i]
	for j := i - 1; j >= 0 && compareChunkRanges(sorted[j], c) == 0; j-- {
		if sorted[j].Encoding == c.Encoding && bytes.Equal(sorted[j].Data, c.Data) {
			return true
		}
	}
	return false
}

// overlappingChunks reads chunks that overlap in time as one, keeping one sample per timestamp.
type overlappingChunks []chunkenc.Iterable

func (o overlappingChunks) Iterator(reuse chunkenc.Iterator) chunkenc.Iterator {
	return storage.ChainSampleIteratorFromIterables(reuse, o)
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

// Seek implements chunkenc.Iterator. Plain `go vet` mistakes it for io.Seeker's; `make vet` runs vet
// without that check.
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
