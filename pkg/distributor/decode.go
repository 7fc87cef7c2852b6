package distributor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-metrics/strata/pkg/remotewrite"
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

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodedRequest is a decoded remote-write request whose strings point into a pooled buffer: release
// recycles both once nothing reads the request any more (the last replication callback has returned).
type decodedRequest struct {
	req          *prompb.WriteRequest
	decoder      *remotewrite.Decoder
	decompressed *bytes.Buffer
}

func (d *decodedRequest) release() {
	d.decoder.Release()
	putBuffer(d.decompressed)
}

// decodeWriteRequest reads a snappy-compressed remote-write 1.0 body. Both the compressed body and its
// announced decompressed length are checked against maxSize before anything that large is allocated, so a
// small body that expands enormously (a snappy bomb) costs nothing to refuse.
func decodeWriteRequest(r *http.Request, maxSize int) (*decodedRequest, error) {
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		return nil, httpError(http.StatusUnsupportedMediaType, "unsupported Content-Encoding %q: remote write bodies must be snappy-compressed", enc)
	}
	if ct := r.Header.Get("Content-Type"); strings.Contains(ct, "io.prometheus.write.v2.Request") {
		return nil, httpError(http.StatusUnsupportedMediaType, "remote write 2.0 (%s) is not supported yet: send remote write 1.0 (protobuf_message: prometheus.WriteRequest)", ct)
	}
	if r.ContentLength > int64(maxSize) {
		return nil, httpError(http.StatusRequestEntityTooLarge, "request body is %d bytes, limit is %d (-distributor.max-recv-msg-size)", r.ContentLength, maxSize)
	}

	compressed := bufferPool.Get().(*bytes.Buffer)
	defer putBuffer(compressed)
	compressed.Reset()
	if r.ContentLength > 0 {
		compressed.Grow(int(r.ContentLength))
	}
	if _, err := compressed.ReadFrom(io.LimitReader(r.Body, int64(maxSize)+1)); err != nil {
		return nil, httpError(http.StatusBadRequest, "read request body: %v", err)
	}
	if compressed.Len() > maxSize {
		return nil, httpError(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes (-distributor.max-recv-msg-size)", maxSize)
	}
	return decodeSnappyWriteRequest(compressed.Bytes(), maxSize)
}

// decodeSnappyWriteRequest decompresses and decodes body, refusing a decompressed size over maxSize
// before allocating for it.
func decodeSnappyWriteRequest(body []byte, maxSize int) (*decodedRequest, error) {
	// Read the announced length ourselves first: snappy calls a length over 4 GiB corrupt input, but
	// for the client it is the same mistake as any length over the limit.
	if announced, n := binary.Uvarint(body); n > 0 && announced > uint64(maxSize) {
		return nil, httpError(http.StatusRequestEntityTooLarge, "decompressed body would be %d bytes, limit is %d (-distributor.max-recv-msg-size)", announced, maxSize)
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, httpError(http.StatusBadRequest, "body is not valid snappy: %v", err)
	}
	decompressed := bufferPool.Get().(*bytes.Buffer)
	decompressed.Reset()
	decompressed.Grow(n)
	raw, err := snappy.Decode(decompressed.Bytes()[:n], body)
	if err != nil {
		putBuffer(decompressed)
		return nil, httpError(http.StatusBadRequest, "body is not valid snappy: %v", err)
	}
	decoder := remotewrite.GetDecoder()
	req, err := decoder.Decode(raw)
	if err != nil {
		decoder.Release()
		putBuffer(decompressed)
		return nil, httpError(http.StatusBadRequest, "body is not a remote write 1.0 WriteRequest: %v", err)
	}
	return &decodedRequest{req: req, decoder: decoder, decompressed: decompressed}, nil
}

// putBuffer returns a buffer to the pool unless one huge request made it too big to keep around.
func putBuffer(b *bytes.Buffer) {
	if b.Cap() > 16<<20 {
		return
	}
	bufferPool.Put(b)
}

// statusOf returns the HTTP status an error from the push path maps to.
func statusOf(err error) int {
	var ews *errorWithStatus
	if errors.As(err, &ews) {
		return ews.status
	}
	return http.StatusInternalServerError
}
