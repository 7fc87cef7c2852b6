package alertmanager

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// maxAPIBodyBytes bounds the body of a request to a tenant's Alertmanager API. Prometheus sends alerts
// in batches of at most 64 and a silence is small: 4 MiB is far above both, and keeps a client from
// making the API decode an unbounded body.
const maxAPIBodyBytes = 4 << 20

// ServeHTTP serves the tenant of the request's context (tenant.FromContext: the app wraps this handler
// with tenant.Middleware); a request without one gets 401. With Replication, the calls under
// PathPrefix (but health) are served by the tenant's replicas (see distribute), unless they carry
// ForwardedHeader: they were sent here by another instance, and are served here.
//
//	PathPrefix/api/v2/...           the tenant's Alertmanager v2 API (alerts, silences, status, ...)
//	PathPrefix/-/healthy, -/ready   200 while the process serves
//	PathPrefix/                     a read-only page of the tenant's alerts and silences
//	ConfigPath                      the configuration API (see serveConfigAPI)
//
// A tenant without a configuration gets 404 "the Alertmanager is not configured" unless there is a
// fallback configuration, with which its Alertmanager starts on this request.
func (am *MultitenantAlertmanager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == ConfigPath:
		am.serveConfigAPI(w, r)
	case p == PathPrefix || strings.HasPrefix(p, PathPrefix+"/"):
		am.serveTenant(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (am *MultitenantAlertmanager) serveTenant(w http.ResponseWriter, r *http.Request) {
	id, ok := tenant.FromContextOr401(w, r)
	if !ok {
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, PathPrefix)
	if rest == "/-/healthy" || rest == "/-/ready" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		_, _ = fmt.Fprintln(w, "OK")
		return
	}
	if am.Replication != nil && r.Header.Get(ForwardedHeader) == "" {
		am.distribute(w, r, id, rest)
		return
	}
	inst, err := am.instanceFor(r.Context(), id)
	switch {
	case errors.Is(err, errNotConfigured):
		// Grafana recognizes this message as a tenant without a configuration.
		http.Error(w, errNotConfigured.Error(), http.StatusNotFound)
		return
	case errors.Is(err, errStopped), errors.Is(err, errInstanceStopped), errors.Is(err, errNotReplica):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	case err != nil:
		am.logger.Error("start tenant Alertmanager", "tenant", id, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if rest == "/api" || strings.HasPrefix(rest, "/api/") {
		if r.ContentLength > maxAPIBodyBytes {
			http.Error(w, fmt.Sprintf("the body is %d bytes, more than the %d an Alertmanager API request may have", r.ContentLength, maxAPIBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBodyBytes)
		h, err := inst.handler()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
		return
	}
	switch rest {
	case "":
		http.Redirect(w, r, PathPrefix+"/", http.StatusFound)
	case "/":
		am.serveUI(w, r, id, inst)
	default:
		http.NotFound(w, r)
	}
}
