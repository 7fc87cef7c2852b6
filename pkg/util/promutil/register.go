// Package promutil holds what Strata's packages share about Prometheus client metrics.
package promutil

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterOrReuse registers c with reg (if any) and returns it, or the equal collector registered before:
// several instances of one component in a process (rings over the same key, one KV client per ring) then
// share their metrics instead of failing to start.
func RegisterOrReuse[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	var zero T
	return zero, err
}
