package validation

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// NewDiscardedSamples creates and registers with reg (when not nil) strata_discarded_samples_total, the
// count of samples rejected per reason (a Reason constant) and tenant.
func NewDiscardedSamples(reg prometheus.Registerer) *prometheus.CounterVec {
	return promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "strata_discarded_samples_total",
		Help: "Samples discarded instead of stored, by the reason they were rejected (the limit or rule, as in its error ID err-strata-<reason>) and by tenant (user, as in Mimir).",
	}, []string{"reason", "user"})
}

// NewDiscardedMetadata creates and registers with reg (when not nil) strata_discarded_metadata_total, the
// count of metric metadata entries rejected per reason and tenant.
func NewDiscardedMetadata(reg prometheus.Registerer) *prometheus.CounterVec {
	return promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "strata_discarded_metadata_total",
		Help: "Metric metadata entries discarded instead of stored, by the reason they were rejected and by tenant.",
	}, []string{"reason", "user"})
}
