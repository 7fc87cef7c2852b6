package ingester

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-metrics/strata/pkg/util/promutil"
)

// newTenantRegisterer registers one tenant's TSDB metrics and remembers them, so that closing an idle
// tenant can unregister them and a later reopening can register them again.
func newTenantRegisterer(reg prometheus.Registerer, tenantID string) *promutil.TrackingRegisterer {
	// Every tenant's TSDB registers the same metric names; tenants are told apart by a label.
	return promutil.NewTrackingRegisterer(prometheus.WrapRegistererWithPrefix("strata_ingester_",
		prometheus.WrapRegistererWith(prometheus.Labels{"user": tenantID}, reg)))
}
