package querymiddleware

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// A cache entry holds the extents of one part of one query, in a binary form about an order of magnitude
// smaller than the API's JSON: float samples are Gorilla-compressed (Prometheus' XOR chunks, which keep
// every float bit), the rest is varints and raw floats.
//
//	entry     = magic, string(full key), uvarint(#extents), extent...
//	extent    = varint(start), varint(end), uvarint(#infos), string(info)..., uvarint(#series), series...
//	series    = uvarint(#labels), (string(name), string(value))..., uvarint(#floats), chunk...,
//	            uvarint(#histograms), histogram...
//	chunk     = string(XOR chunk of up to maxSamplesPerChunk floats)
//	histogram = varint(t), float64(count), float64(sum), uvarint(#buckets),
//	            (uvarint(boundaries), float64(lower), float64(upper), float64(count))...
//	string    = uvarint(length), bytes;  float64 = 8 bytes, little endian IEEE 754 bits
//
// The full key is kept so that a lookup can tell its entry from another query's whose hashed key is the
// same.
const entryMagic = "SQRC1"

// maxSamplesPerChunk keeps each XOR chunk's sample count within its 16-bit header.
const maxSamplesPerChunk = 1 << 15

var errKeyMismatch = errors.New("the cache entry belongs to another key")

// encodeEntry encodes the extents of the entry fullKey.
func encodeEntry(fullKey string, extents []*extent) []byte {
	b := make([]byte, 0, 4096)
	b = append(b, entryMagic...)
	b = appendString(b, fullKey)
	b = binary.AppendUvarint(b, uint64(len(extents)))
	for _, e := range extents {
		b = binary.AppendVarint(b, e.start)
		b = binary.AppendVarint(b, e.end)
		b = binary.AppendUvarint(b, uint64(len(e.infos)))
		for _, info := range e.infos {
			b = appendString(b, info)
		}
		b = binary.AppendUvarint(b, uint64(len(e.series)))
		for _, s := range e.series {
			b = appendSeries(b, s)
		}
	}
	return b
}

func appendSeries(b []byte, s *series) []byte {
	b = binary.AppendUvarint(b, uint64(s.Metric.Len()))
	s.Metric.Range(func(l labels.Label) {
		b = appendString(b, l.Name)
		b = appendString(b, l.Value)
	})
	b = binary.AppendUvarint(b, uint64(len(s.Floats)))
	for i := 0; i < len(s.Floats); i += maxSamplesPerChunk {
		chunk := chunkenc.NewXORChunk()
		app, err := chunk.Appender()
		if err != nil {
			panic(fmt.Sprintf("a new XOR chunk has no appender: %v", err)) // cannot happen for an empty chunk
		}
		for _, p := range s.Floats[i:min(i+maxSamplesPerChunk, len(s.Floats))] {
			app.Append(0, p.T, p.F)
		}
		b = appendString(b, string(chunk.Bytes()))
	}
	b = binary.AppendUvarint(b, uint64(len(s.Histograms)))
	for _, h := range s.Histograms {
		b = binary.AppendVarint(b, h.T)
		b = appendFloat(b, h.Count)
		b = appendFloat(b, h.Sum)
		b = binary.AppendUvarint(b, uint64(len(h.Buckets)))
		for _, bucket := range h.Buckets {
			b = binary.AppendUvarint(b, uint64(bucket.Boundaries))
			b = appendFloat(b, bucket.Lower)
			b = appendFloat(b, bucket.Upper)
			b = appendFloat(b, bucket.Count)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// decodeEntry decodes an entry written by encodeEntry for fullKey. Entries come from a cache other
// processes write too, so anything malformed is an error (and the caller's miss), never a panic; extents
// must be in time order and disjoint, and their points in time order within them, as the merge of
// answers requires.
func decodeEntry(fullKey string, data []byte) ([]*extent, error) {
	r := &entryReader{b: data}
	if string(r.next(len(entryMagic))) != entryMagic {
		return nil, errors.New("not a results cache entry of this version")
	}
	if r.string() != fullKey {
		if r.err != nil {
			return nil, r.err
		}
		return nil, errKeyMismatch
	}
	n := r.count()
	extents := make([]*extent, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		e := &extent{start: r.varint(), end: r.varint()}
		if r.err == nil && (e.end < e.start || (i > 0 && e.start <= extents[i-1].end)) {
			return nil, fmt.Errorf("extent %d..%d is empty or overlaps the one before", e.start, e.end)
		}
		if infos := r.count(); infos > 0 {
			e.infos = make([]string, 0, infos)
			for j := 0; j < infos && r.err == nil; j++ {
				e.infos = append(e.infos, r.string())
			}
		}
		nSeries := r.count()
		e.series = make([]*series, 0, nSeries)
		for j := 0; j < nSeries && r.err == nil; j++ {
			e.series = append(e.series, r.series(e.start, e.end))
		}
		extents = append(extents, e)
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d bytes after the last extent", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("malformed results cache entry: %w", r.err)
	}
	return extents, nil
}

// entryReader reads an entry; the first error sticks and makes every later read return zero values.
type entryReader struct {
	b       []byte
	err     error
	builder labels.ScratchBuilder
}

var errTruncated = errors.New("truncated")

func (r *entryReader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errTruncated
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *entryReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *entryReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a number of items to follow, each taking at least one byte, so that a corrupt count
// cannot make the reader allocate more than the entry's size.
func (r *entryReader) count() int {
	v := r.uvarint()
	if v > uint64(len(r.b)) {
		if r.err == nil {
			r.err = fmt.Errorf("count %d exceeds the %d bytes left", v, len(r.b))
		}
		return 0
	}
	return int(v)
}

// sampleCount reads a number of float samples to follow in XOR chunks, where a sample can take as little
// as two bits.
func (r *entryReader) sampleCount() int {
	v := r.uvarint()
	if v > 4*uint64(len(r.b)) {
		if r.err == nil {
			r.err = fmt.Errorf("%d samples cannot fit in the %d bytes left", v, len(r.b))
		}
		return 0
	}
	return int(v)
}

func (r *entryReader) string() string {
	return string(r.next(r.count()))
}

func (r *entryReader) float() float64 {
	b := r.next(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// series reads a series whose points must lie in start..end, in time order.
func (r *entryReader) series(start, end int64) *series {
	s := &series{}
	r.builder.Reset()
	for i, n := 0, r.count(); i < n && r.err == nil; i++ {
		r.builder.Add(r.string(), r.string())
	}
	r.builder.Sort()
	s.Metric = r.builder.Labels()

	if floats := r.sampleCount(); floats > 0 {
		s.Floats = make([]floatPoint, 0, min(floats, len(r.b)))
		for len(s.Floats) < floats && r.err == nil {
			r.readChunk(s, min(floats-len(s.Floats), maxSamplesPerChunk))
		}
	}
	if n := r.count(); n > 0 {
		s.Histograms = make([]histogramPoint, 0, n)
		for i := 0; i < n && r.err == nil; i++ {
			h := histogramPoint{T: r.varint(), Count: r.float(), Sum: r.float()}
			if buckets := r.count(); buckets > 0 {
				h.Buckets = make([]histogramBucket, 0, buckets)
				for j := 0; j < buckets && r.err == nil; j++ {
					boundaries := r.uvarint()
					if boundaries > 3 && r.err == nil {
						r.err = fmt.Errorf("bucket boundaries %d is not 0..3", boundaries)
					}
					h.Buckets = append(h.Buckets, histogramBucket{Boundaries: int64(boundaries), Lower: r.float(), Upper: r.float(), Count: r.float()})
				}
			}
			s.Histograms = append(s.Histograms, h)
		}
	}
	if r.err == nil {
		r.err = checkPoints(s, start, end)
	}
	return s
}

// readChunk appends the want samples of the next XOR chunk to s.
func (r *entryReader) readChunk(s *series, want int) {
	data := r.next(r.count())
	if r.err == nil && len(data) < 2 {
		r.err = errors.New("a chunk shorter than its header")
	}
	if r.err != nil {
		return
	}
	chunk, err := chunkenc.FromData(chunkenc.EncXOR, data)
	if err != nil {
		r.err = err
		return
	}
	if chunk.NumSamples() != want {
		r.err = fmt.Errorf("chunk holds %d samples, expected %d", chunk.NumSamples(), want)
		return
	}
	it := chunk.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		t, f := it.At()
		s.Floats = append(s.Floats, floatPoint{T: t, F: f})
	}
	if err := it.Err(); err != nil {
		r.err = err
	}
}

// checkPoints reports points out of start..end or out of time order.
func checkPoints(s *series, start, end int64) error {
	prev := start - 1
	for _, p := range s.Floats {
		if p.T <= prev || p.T > end {
			return fmt.Errorf("float point at %d out of order or outside %d..%d", p.T, start, end)
		}
		prev = p.T
	}
	prev = start - 1
	for _, p := range s.Histograms {
		if p.T <= prev || p.T > end {
			return fmt.Errorf("histogram point at %d out of order or outside %d..%d", p.T, start, end)
		}
		prev = p.T
	}
	return nil
}
