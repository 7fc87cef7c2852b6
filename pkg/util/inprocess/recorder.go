// Package inprocess keeps the answers of HTTP handlers called within the process: the query-frontend's
// queries run by a querier worker, Alertmanager API calls forwarded between replicas or made by the UI,
// the ruler's alerts to the Alertmanager of its own process.
package inprocess

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// Recorder is an http.ResponseWriter that keeps a handler's answer in memory: the first status written
// (200 if none), the headers and the body, the body up to MaxBody bytes when MaxBody is set.
type Recorder struct {
	header http.Header
	status int
	// Body is what the handler wrote.
	Body bytes.Buffer
	// MaxBody, when positive, bounds Body; a write past it fails and sets TooLarge.
	MaxBody  int
	TooLarge bool
}

// NewRecorder returns an empty recorder whose body is bounded by maxBody bytes (0: unbounded).
func NewRecorder(maxBody int) *Recorder {
	return &Recorder{header: http.Header{}, MaxBody: maxBody}
}

// Header implements http.ResponseWriter.
func (r *Recorder) Header() http.Header { return r.header }

// WriteHeader implements http.ResponseWriter; as on a connection, only the first status counts.
func (r *Recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

// Write implements http.ResponseWriter.
func (r *Recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.MaxBody > 0 && r.Body.Len()+len(p) > r.MaxBody {
		r.TooLarge = true
		return 0, fmt.Errorf("the answer is larger than %d bytes", r.MaxBody)
	}
	return r.Body.Write(p)
}

// Status is the answer's status.
func (r *Recorder) Status() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Response is the answer as the *http.Response to req that a client would have received.
func (r *Recorder) Response(req *http.Request) *http.Response {
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", r.Status(), http.StatusText(r.Status())),
		StatusCode:    r.Status(),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        r.header,
		Body:          io.NopCloser(&r.Body),
		ContentLength: int64(r.Body.Len()),
		Request:       req,
	}
}
