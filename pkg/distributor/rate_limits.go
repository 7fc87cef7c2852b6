package distributor

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/validation"
)

// rateLimiters holds each tenant's token buckets in this distributor. Their rates are the tenant's
// global limits divided by the healthy distributors, re-read on every request so that a runtime
// override or a distributor joining or leaving takes effect at once.
type rateLimiters struct {
	distributors *ring.HealthyCount // counts 0 when this distributor is alone

	mtx       sync.Mutex
	byTenant  map[string]*tenantLimiters
	lastPurge time.Time
}

type tenantLimiters struct {
	samples, requests *rate.Limiter
	lastUsed          time.Time
}

// idleLimiters are dropped after this long unused, so a flood of tenants cannot grow the map forever; a
// returning tenant starts with a full burst, as a new one does.
const idleLimiters = 10 * time.Minute

func newRateLimiters(distributors ring.HealthyCounter) *rateLimiters {
	return &rateLimiters{distributors: ring.NewHealthyCount(distributors, ring.Write), byTenant: map[string]*tenantLimiters{}}
}

// share divides a global rate among the healthy distributors.
func (r *rateLimiters) share(global float64, now time.Time) rate.Limit {
	return rate.Limit(global / float64(max(r.distributors.Get(now), 1)))
}

// limiter returns the tenant's bucket that pick selects, created full with limit and burst if new.
func (r *rateLimiters) limiter(tenantID string, now time.Time, pick func(*tenantLimiters) **rate.Limiter, limit rate.Limit, burst int) *rate.Limiter {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	if now.Sub(r.lastPurge) > time.Minute {
		for id, l := range r.byTenant {
			if now.Sub(l.lastUsed) > idleLimiters {
				delete(r.byTenant, id)
			}
		}
		r.lastPurge = now
	}
	l := r.byTenant[tenantID]
	if l == nil {
		l = &tenantLimiters{}
		r.byTenant[tenantID] = l
	}
	l.lastUsed = now
	lim := pick(l)
	if *lim == nil {
		*lim = rate.NewLimiter(limit, burst)
	}
	return *lim
}

// take takes n tokens from lim, set to limit and burst first: a runtime override or a distributor
// joining or leaving changes them.
func take(lim *rate.Limiter, now time.Time, limit rate.Limit, burst, n int) bool {
	if lim.Limit() != limit {
		lim.SetLimitAt(now, limit)
	}
	if lim.Burst() != burst {
		lim.SetBurstAt(now, burst)
	}
	return lim.AllowN(now, n)
}

func requestsOf(l *tenantLimiters) **rate.Limiter { return &l.requests }
func samplesOf(l *tenantLimiters) **rate.Limiter  { return &l.samples }

// allowRequest reports whether the tenant may send one more request.
func (r *rateLimiters) allowRequest(tenantID string, l *validation.Limits, now time.Time) bool {
	if l.RequestRate <= 0 {
		return true
	}
	limit, burst := r.share(l.RequestRate, now), max(l.RequestBurstSize, 1)
	return take(r.limiter(tenantID, now, requestsOf, limit, burst), now, limit, burst, 1)
}

// allowSamples reports whether the tenant may push n more samples.
func (r *rateLimiters) allowSamples(tenantID string, l *validation.Limits, now time.Time, n int) bool {
	if l.IngestionRate <= 0 {
		return true
	}
	limit, burst := r.share(l.IngestionRate, now), l.IngestionBurstSize
	return take(r.limiter(tenantID, now, samplesOf, limit, burst), now, limit, burst, n)
}
