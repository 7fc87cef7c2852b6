package ring

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-metrics/strata/pkg/util/promutil"
)

// register registers c with reg, or returns the equal collector registered before: several components of
// one process may each keep a Ring over the same ring, and they then share its metrics.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	c, err := promutil.RegisterOrReuse(reg, c)
	if err != nil {
		return c, fmt.Errorf("ring: register metrics: %w", err)
	}
	return c, nil
}
