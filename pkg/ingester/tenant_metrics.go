package ingester

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// tenantRegisterer registers one tenant's TSDB metrics and remembers them, so that closing an idle tenant
// can unregister them and a later reopening can register them again.
type tenantRegisterer struct {
	prometheus.Registerer

	mtx        sync.Mutex
	collectors []prometheus.Collector
}

func newTenantRegisterer(reg prometheus.Registerer, tenantID string) *tenantRegisterer {
	// Every tenant's TSDB registers the same metric names; tenants are told apart by a label.
	return &tenantRegisterer{Registerer: prometheus.WrapRegistererWithPrefix("strata_ingester_",
		prometheus.WrapRegistererWith(prometheus.Labels{"user": tenantID}, reg))}
}

func (r *tenantRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.mtx.Lock()
	r.collectors = append(r.collectors, c)
	r.mtx.Unlock()
	return nil
}

func (r *tenantRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// unregisterAll removes every metric the tenant's TSDB registered.
func (r *tenantRegisterer) unregisterAll() {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	for _, c := range r.collectors {
		r.Unregister(c)
	}
	r.collectors = nil
}
