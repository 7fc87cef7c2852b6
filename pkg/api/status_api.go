package api

import (
	"net/http"

	"github.com/prometheus/prometheus/util/annotations"
)

// The status endpoints of Prometheus' API that describe a Prometheus server. Strata has no Prometheus
// configuration or command line to show, and its own hold object storage credentials, which a tenant
// must not read: the answers are empty, in the shapes Prometheus gives them, so that clients calling them
// (Prometheus' UI, client_golang's API client) decode them.

// statusConfig answers /api/v1/status/config: Prometheus returns its configuration file as {"yaml": …}.
func (a *PrometheusAPI) statusConfig(*http.Request) (any, annotations.Annotations, *apiError) {
	return map[string]string{"yaml": ""}, nil, nil
}

// statusFlags answers /api/v1/status/flags: Prometheus returns its flags by name.
func (a *PrometheusAPI) statusFlags(*http.Request) (any, annotations.Annotations, *apiError) {
	return map[string]string{}, nil, nil
}
