package promutil

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// TrackingRegisterer registers with its Registerer and remembers what it registered, so that something
// that comes and goes (a tenant's TSDB, a tenant's alert notifier) can take its metrics along when it
// goes, and register them again when it comes back.
type TrackingRegisterer struct {
	prometheus.Registerer

	mtx        sync.Mutex
	collectors []prometheus.Collector
}

// NewTrackingRegisterer returns a TrackingRegisterer over reg.
func NewTrackingRegisterer(reg prometheus.Registerer) *TrackingRegisterer {
	return &TrackingRegisterer{Registerer: reg}
}

func (r *TrackingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.mtx.Lock()
	r.collectors = append(r.collectors, c)
	r.mtx.Unlock()
	return nil
}

func (r *TrackingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Collectors returns what is registered through r.
func (r *TrackingRegisterer) Collectors() []prometheus.Collector {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	return slices.Clone(r.collectors)
}

// UnregisterAll removes everything registered through r.
func (r *TrackingRegisterer) UnregisterAll() {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	for _, c := range r.collectors {
		r.Unregister(c)
	}
	r.collectors = nil
}
