package storegateway

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"path"
	"slices"
	"sync"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// A chunk in a segment file is: uvarint data length, 1 byte encoding, data, 4 bytes CRC32 (Castagnoli) of
// encoding and data. A chunk reference holds the segment's index (file 000001 is index 0) in its upper 32
// bits and the chunk's offset in the lower 32.
const (
	// chunkReadEstimateBytes is how much is read for a chunk whose length is not known yet. Chunks of
	// 120 float samples are far smaller; a longer chunk costs one more exact read.
	chunkReadEstimateBytes = 16 << 10
	// chunkRangeMaxGapBytes is the largest gap between two wanted chunks of a segment that one read
	// spans: reading a few unwanted bytes is cheaper than another round trip to object storage.
	chunkRangeMaxGapBytes = 64 << 10
	// chunkRangeMaxBytes bounds one range read, and so the memory a request holds for it.
	chunkRangeMaxBytes = 8 << 20
	// chunkReadConcurrency is how many range reads one request runs at a time.
	chunkReadConcurrency = 8
	// maxChunkBytes rejects lengths no TSDB writes, so a corrupt length cannot make us read a huge range.
	maxChunkBytes = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chunkKey identifies a chunk in the chunks cache.
type chunkKey struct {
	tenant string
	block  ulid.ULID
	ref    chunks.ChunkRef
}

// chunkData is a chunk's encoding and data, without its length and checksum.
type chunkData struct {
	enc  chunkenc.Encoding
	data []byte
}

func chunkSize(k chunkKey, c chunkData) int64 { return int64(len(k.tenant) + 24 + len(c.data)) }

// chunkRequest asks for one chunk of a block; fetchChunks fills in out.
type chunkRequest struct {
	block *block
	ref   chunks.ChunkRef
	out   *chunkData
}

func (r chunkRequest) cacheKey() chunkKey {
	return chunkKey{tenant: r.block.tenant, block: r.block.id(), ref: r.ref}
}

// chunkRange is one range read of a segment file covering the chunks at offsets.
type chunkRange struct {
	block      *block
	segment    int
	start, end int64
	reqs       []chunkRequest // sorted by offset
}

// fetchChunks fills every request from the chunks cache, or else from range reads of the bucket that
// cover neighbouring chunks of a segment at once.
func (s *StoreGateway) fetchChunks(ctx context.Context, reqs []chunkRequest) error {
	misses := reqs
	if s.chunksCache.Enabled() {
		keys := make([]chunkKey, len(reqs))
		for i, r := range reqs {
			keys[i] = r.cacheKey()
		}
		cached := make([]chunkData, len(reqs))
		misses = nil
		for i, found := range s.chunksCache.GetMany(keys, cached) {
			if found {
				*reqs[i].out = cached[i]
			} else {
				misses = append(misses, reqs[i])
			}
		}
	}
	if len(misses) == 0 {
		return nil
	}
	ranges := planChunkRanges(misses)

	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, chunkReadConcurrency)
		errMu    sync.Mutex
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, rg := range ranges {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.readChunkRange(ctx, rg); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// planChunkRanges groups requests by block and segment and merges chunks that are close into one range.
// A range ends chunkReadEstimateBytes after its last chunk starts, since chunk lengths are not known
// before reading them.
func planChunkRanges(reqs []chunkRequest) []chunkRange {
	slices.SortFunc(reqs, func(a, b chunkRequest) int {
		if c := a.block.id().Compare(b.block.id()); c != 0 {
			return c
		}
		// Segment in the upper bits, offset in the lower: the reference orders both.
		return cmp.Compare(a.ref, b.ref)
	})
	var out []chunkRange
	for _, r := range reqs {
		seg, off := int(r.ref>>32), int64(r.ref&0xffffffff)
		end := off + chunkReadEstimateBytes
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.block == r.block && last.segment == seg && off <= last.end+chunkRangeMaxGapBytes &&
				max(end, last.end)-last.start <= chunkRangeMaxBytes {
				last.end = max(end, last.end)
				last.reqs = append(last.reqs, r)
				continue
			}
		}
		out = append(out, chunkRange{block: r.block, segment: seg, start: off, end: end, reqs: []chunkRequest{r}})
	}
	return out
}

// segmentName is the bucket object of a segment index, relative to the tenant.
func segmentName(b *block, segment int) string {
	return path.Join(b.id().String(), blockstore.ChunksDirname, fmt.Sprintf("%06d", segment+1))
}

// readChunkRange reads one range and decodes its chunks; a chunk running past the range (longer than
// estimated) is read again exactly. The chunks are copied out of the range into one buffer of their
// size, so that the cache holds only them (a range spans unwanted chunks too) and the range's buffer
// can be used again.
func (s *StoreGateway) readChunkRange(ctx context.Context, rg chunkRange) error {
	buf := getRangeBuffer(int(rg.end - rg.start))
	defer putRangeBuffer(buf)
	n, err := s.readRangeInto(ctx, rg.block, rg.segment, rg.start, *buf)
	if err != nil {
		return err
	}
	read := (*buf)[:n]
	out := make([]chunkData, len(rg.reqs))
	size := 0
	for i, r := range rg.reqs {
		off := int64(r.ref & 0xffffffff)
		c, err := decodeChunk(read[off-rg.start:])
		if errors.Is(err, errShortChunk) {
			c, err = s.readChunk(ctx, r.block, rg.segment, off)
		}
		if err != nil {
			return fmt.Errorf("chunk %d of block %s: %w", r.ref, r.block.id(), err)
		}
		out[i] = c
		size += len(c.data)
	}
	copies := make([]byte, 0, size)
	for i, r := range rg.reqs {
		start := len(copies)
		copies = append(copies, out[i].data...)
		out[i].data = copies[start:len(copies):len(copies)]
		*r.out = out[i]
	}
	if s.chunksCache.Enabled() {
		keys := make([]chunkKey, len(rg.reqs))
		for i, r := range rg.reqs {
			keys[i] = r.cacheKey()
		}
		s.chunksCache.AddMany(keys, out)
	}
	return nil
}

// readChunk reads one chunk whose length is unknown: first its header and the estimate, then, if the
// chunk is longer, exactly the rest.
func (s *StoreGateway) readChunk(ctx context.Context, b *block, segment int, off int64) (chunkData, error) {
	head, err := s.readRange(ctx, b, segment, off, binary.MaxVarintLen32)
	if err != nil {
		return chunkData{}, err
	}
	n, w := binary.Uvarint(head)
	if w <= 0 {
		return chunkData{}, errors.New("corrupt chunk length")
	}
	if n > maxChunkBytes {
		return chunkData{}, fmt.Errorf("chunk length %d exceeds %d bytes", n, maxChunkBytes)
	}
	buf, err := s.readRange(ctx, b, segment, off, int64(w)+1+int64(n)+crc32.Size)
	if err != nil {
		return chunkData{}, err
	}
	return decodeChunk(buf)
}

// readRange reads length bytes at off of a segment into a new buffer; the result is shorter at the end of
// the file.
func (s *StoreGateway) readRange(ctx context.Context, b *block, segment int, off, length int64) ([]byte, error) {
	buf := make([]byte, length)
	n, err := s.readRangeInto(ctx, b, segment, off, buf)
	return buf[:n], err
}

// readRangeInto fills buf from off of a segment and returns how many bytes it read: fewer than len(buf)
// when the range runs past the end of the segment, where the bytes there are all there is.
func (s *StoreGateway) readRangeInto(ctx context.Context, b *block, segment int, off int64, buf []byte) (int, error) {
	s.metrics.bucketRangeReads.Inc()
	name := segmentName(b, segment)
	rc, err := b.bkt.GetRange(ctx, name, off, int64(len(buf)))
	if err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", name, off, err)
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read %s at %d: %w", name, off, err)
	}
	s.metrics.bucketRangeBytes.Add(float64(n))
	return n, nil
}

// rangeBuffers recycles the buffers of range reads by size class, powers of two up to a range's largest
// size (chunkRangeMaxBytes = 1<<23): a cold query reads about twice the bytes of the chunks it wants, and
// allocating and zeroing every range afresh cost a tenth of its CPU.
var rangeBuffers [24]sync.Pool

func rangeBufferClass(n int) int { return bits.Len(uint(n - 1)) } // the smallest class holding n bytes

func getRangeBuffer(n int) *[]byte {
	c := rangeBufferClass(n)
	if c >= len(rangeBuffers) {
		b := make([]byte, n)
		return &b
	}
	if b, ok := rangeBuffers[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<c)
	return &b
}

func putRangeBuffer(b *[]byte) {
	if c := rangeBufferClass(cap(*b)); c < len(rangeBuffers) && cap(*b) == 1<<c {
		rangeBuffers[c].Put(b)
	}
}

// errShortChunk says the bytes read end before the chunk does.
var errShortChunk = errors.New("chunk extends past the bytes read")

// decodeChunk decodes the chunk at the start of b and checks its CRC. The result's data is a part of b.
func decodeChunk(b []byte) (chunkData, error) {
	n, w := binary.Uvarint(b)
	if w == 0 {
		return chunkData{}, errShortChunk
	}
	if w < 0 || n > maxChunkBytes {
		return chunkData{}, errors.New("corrupt chunk length")
	}
	end := w + 1 + int(n) + crc32.Size
	if len(b) < end {
		return chunkData{}, errShortChunk
	}
	encAndData := b[w : end-crc32.Size]
	if got, want := crc32.Checksum(encAndData, castagnoli), binary.BigEndian.Uint32(b[end-crc32.Size:end]); got != want {
		return chunkData{}, fmt.Errorf("chunk checksum mismatch: computed %08x, stored %08x", got, want)
	}
	return chunkData{enc: chunkenc.Encoding(encAndData[0]), data: encAndData[1:]}, nil
}
