package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
)

// localAlertSender gives the ruler's alerts to the Alertmanager of the same process by calling its
// handler. Going through the process' own HTTP port instead would need its TLS and, with -auth.type
// other than header, a credential: neither makes sense between two parts of one process.
type localAlertSender struct {
	// handler returns the Alertmanager, nil until it is initialised.
	handler func() http.Handler
}

func (s localAlertSender) send(ctx context.Context, req *http.Request) (*http.Response, error) {
	h := s.handler()
	if h == nil {
		return nil, errors.New("the Alertmanager of this process is not running")
	}
	w := &bufferedResponse{header: http.Header{}}
	// ctx carries the tenant, which the Alertmanager reads as its HTTP middleware would have set it.
	h.ServeHTTP(w, req.WithContext(ctx))
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status:        http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(&w.body),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}, nil
}

// bufferedResponse keeps what a handler answers, to hand it back as an *http.Response.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *bufferedResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}
