package app

import (
	"context"
	"errors"
	"net/http"

	"github.com/strata-metrics/strata/pkg/util/inprocess"
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
	rec := inprocess.NewRecorder(0)
	// ctx carries the tenant, which the Alertmanager reads as its HTTP middleware would have set it.
	h.ServeHTTP(rec, req.WithContext(ctx))
	return rec.Response(req), nil
}
