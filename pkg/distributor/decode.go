package distributor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/grpc/mem"

	"github.com/strata-metrics/strata/pkg/remotewrite"
	"github.com/strata-metrics/strata/pkg/util/pool"
)

// errorWithStatus is an error that carries the HTTP status the push handler answers with.
type errorWithStatus struct {
	status int
	msg    string
}

func (e *errorWithStatus) Error() string { return e.msg }

func httpError(status int, format string, args ...any) error {
	return &errorWithStatus{status: status, msg: fmt.Sprintf(format, args...)}
}

// Request bodies kept for reuse, compressed and decompressed apart since their sizes differ; a
// decompressed body is released by whichever goroutine finishes its last replication.
var (
	compressedBuffers   = pool.NewFreeList(32, func() *bytes.Buffer { return new(bytes.Buffer) })
	decompressedBuffers = pool.NewFreeList(32, func() *bytes.Buffer { return new(bytes.Buffer) })
)

// decodedRequest is a decoded remote-write request whose strings point into a pooled buffer, body.
// Both are recycled once the last reference to body is freed: the distributor's own, freed when the
// last replication to an ingester has returned, or one of gRPC's, which holds views of body until it has
// written the series passed on as they arrived.
type decodedRequest struct {
	req *prompb.WriteRequest
	// version is the remote-write protocol of the request: 1, decoded by decoder, or 2, by decoderV2.
	version      int
	decoder      *remotewrite.Decoder
	decoderV2    *remotewrite.DecoderV2
	decompressed *bytes.Buffer
	body         mem.Buffer
	// size is what the request holds in memory: its compressed and decompressed bodies.
	size int
}

// Get and Put make a decodedRequest the mem.BufferPool of its body: Put runs when body's last reference
// is freed.
func (d *decodedRequest) Get(length int) *[]byte {
	b := make([]byte, length)
	return &b
}

func (d *decodedRequest) Put(*[]byte) {
	d.releaseDecoder()
	putBuffer(decompressedBuffers, d.decompressed)
}

func (d *decodedRequest) releaseDecoder() {
	if d.decoderV2 != nil {
		d.decoderV2.Release()
		return
	}
	d.decoder.Release()
}

// seriesField returns where the i-th decoded series is in the body.
func (d *decodedRequest) seriesField(i int) remotewrite.FieldRange {
	if d.decoderV2 != nil {
		return d.decoderV2.SeriesField(i)
	}
	return d.decoder.SeriesField(i)
}

// Content types of remote write: protobuf, whose proto parameter names the message (1.0's when absent).
const (
	protobufMediaType   = "application/x-protobuf"
	writeRequestV1Proto = "prometheus.WriteRequest"
	writeRequestV2Proto = "io.prometheus.write.v2.Request"
)

// remoteWriteVersion reads from a Content-Type which remote-write message the body holds. A request
// without one is taken for 1.0, which older senders did not always label.
func remoteWriteVersion(contentType string) (int, error) {
	switch contentType { // what senders send, without parsing it
	case "", protobufMediaType, protobufMediaType + ";proto=" + writeRequestV1Proto:
		return 1, nil
	case protobufMediaType + ";proto=" + writeRequestV2Proto:
		return 2, nil
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != protobufMediaType {
		return 0, httpError(http.StatusUnsupportedMediaType, "unsupported Content-Type %q: remote write bodies are %s;proto=%s (1.0) or %s;proto=%s (2.0)",
			contentType, protobufMediaType, writeRequestV1Proto, protobufMediaType, writeRequestV2Proto)
	}
	switch proto := params["proto"]; proto {
	case "", writeRequestV1Proto:
		return 1, nil
	case writeRequestV2Proto:
		return 2, nil
	default:
		return 0, httpError(http.StatusUnsupportedMediaType, "unsupported remote write message %q: send %s (1.0) or %s (2.0)", proto, writeRequestV1Proto, writeRequestV2Proto)
	}
}

// decodeWriteRequest reads a snappy-compressed remote-write 1.0 or 2.0 body, as its Content-Type says. Both the compressed body and its
// announced decompressed length are checked against maxSize, and that length against what the body can
// expand to, before anything that large is allocated, so a small body that announces an enormous length
// (a snappy bomb) costs nothing to refuse.
func decodeWriteRequest(r *http.Request, maxSize int) (*decodedRequest, error) {
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		return nil, httpError(http.StatusUnsupportedMediaType, "unsupported Content-Encoding %q: remote write bodies must be snappy-compressed", enc)
	}
	version, err := remoteWriteVersion(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	if r.ContentLength > int64(maxSize) {
		return nil, httpError(http.StatusRequestEntityTooLarge, "request body is %d bytes, limit is %d (-distributor.max-recv-msg-size)", r.ContentLength, maxSize)
	}

	compressed := compressedBuffers.Get()
	defer putBuffer(compressedBuffers, compressed)
	compressed.Reset()
	// Content-Length is the client's word: trusting it in full would let connections that announce a
	// large body and send nothing hold that much memory each. Beyond the first MiB the buffer grows only
	// as bytes arrive.
	if r.ContentLength > 0 {
		compressed.Grow(int(min(r.ContentLength, maxPreallocatedBody)))
	}
	if _, err := compressed.ReadFrom(io.LimitReader(r.Body, int64(maxSize)+1)); err != nil {
		return nil, httpError(http.StatusBadRequest, "read request body: %v", err)
	}
	if compressed.Len() > maxSize {
		return nil, httpError(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes (-distributor.max-recv-msg-size)", maxSize)
	}
	return decodeSnappyWriteRequest(compressed.Bytes(), maxSize, version)
}

// decodeSnappyWriteRequest decompresses and decodes body, a request of the given remote-write version,
// refusing a decompressed size over maxSize before allocating for it.
func decodeSnappyWriteRequest(body []byte, maxSize, version int) (*decodedRequest, error) {
	// Read the announced length ourselves first: snappy calls a length over 4 GiB corrupt input, but
	// for the client it is the same mistake as any length over the limit.
	if announced, n := binary.Uvarint(body); n > 0 {
		if announced > uint64(maxSize) {
			return nil, httpError(http.StatusRequestEntityTooLarge, "decompressed body would be %d bytes, limit is %d (-distributor.max-recv-msg-size)", announced, maxSize)
		}
		// Below the limit, a length the body cannot expand to is still refused before allocating for it,
		// so tiny requests that lie cannot each hold up to the limit in memory.
		if announced*snappyMaxExpansionDen > uint64(len(body)-n)*snappyMaxExpansionNum {
			return nil, httpError(http.StatusBadRequest, "body is not valid snappy: %d compressed bytes cannot decompress to the %d bytes its header announces", len(body)-n, announced)
		}
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, httpError(http.StatusBadRequest, "body is not valid snappy: %v", err)
	}
	decompressed := decompressedBuffers.Get()
	decompressed.Reset()
	// gRPC reference-counts (and so lets us recycle) only buffers above its pooling threshold.
	decompressed.Grow(max(n, minBodyCapacity))
	raw, err := snappy.Decode(decompressed.Bytes()[:n], body)
	if err != nil {
		putBuffer(decompressedBuffers, decompressed)
		return nil, httpError(http.StatusBadRequest, "body is not valid snappy: %v", err)
	}
	return decodeRawWriteRequest(decompressed, raw, version, len(body))
}

// decodeRawWriteRequest decodes raw, a request of the given remote-write version held in decompressed
// (which the request returns to its pool once freed); compressedSize is what its body took before.
func decodeRawWriteRequest(decompressed *bytes.Buffer, raw []byte, version, compressedSize int) (*decodedRequest, error) {
	var err error
	d := &decodedRequest{version: version, decompressed: decompressed, size: compressedSize + len(raw)}
	if version == 2 {
		d.decoderV2 = remotewrite.GetDecoderV2()
		if d.req, err = d.decoderV2.Decode(raw); err == nil {
			d.decoderV2.MetricMetadata()
		}
	} else {
		d.decoder = remotewrite.GetDecoder()
		d.req, err = d.decoder.Decode(raw)
	}
	if err != nil {
		d.releaseDecoder()
		putBuffer(decompressedBuffers, decompressed)
		message := map[int]string{1: "a remote write 1.0 WriteRequest", 2: "a remote write 2.0 Request"}[version]
		return nil, httpError(http.StatusBadRequest, "body is not %s: %v", message, err)
	}
	d.body = mem.NewBuffer(&raw, d)
	return d, nil
}

const (
	minBodyCapacity     = 4 << 10
	maxPreallocatedBody = 1 << 20
)

// A snappy block expands at most 64/3 times past its length header. Its elements are literals (a tag
// of 1 to 5 bytes, then the n bytes it emits: at most 1x), copies with a 1-byte offset (2 bytes for at
// most 11), with a 2-byte offset (3 bytes for at most 64) and with a 4-byte offset (5 bytes for at most
// 64). The 2-byte-offset copy is the best ratio, and snappy's encoder reaches it on repetitive input.
const (
	snappyMaxExpansionNum = 64
	snappyMaxExpansionDen = 3
)

// putBuffer returns a buffer to its list unless one huge request made it too big to keep around.
func putBuffer(list *pool.FreeList[*bytes.Buffer], b *bytes.Buffer) {
	if b.Cap() > 16<<20 {
		return
	}
	list.Put(b)
}

// statusOf returns the HTTP status an error from the push path maps to.
func statusOf(err error) int {
	var ews *errorWithStatus
	if errors.As(err, &ews) {
		return ews.status
	}
	return http.StatusInternalServerError
}
