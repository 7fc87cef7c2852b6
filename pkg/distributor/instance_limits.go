package distributor

import (
	"errors"
	"flag"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// InstanceLimits protect one distributor whatever its tenants send. Crossing one answers 503: the
// client retries later, when this distributor has room or on another one.
type InstanceLimits struct {
	MaxInflightPushRequests      int
	MaxInflightPushRequestsBytes int
	MaxIngestionRate             float64
}

// RegisterFlags registers the flags with Mimir's names.
func (l *InstanceLimits) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&l.MaxInflightPushRequests, "distributor.instance-limits.max-inflight-push-requests", 2000,
		"Most push requests this distributor handles at once; more get 503. 0 is no limit.")
	f.IntVar(&l.MaxInflightPushRequestsBytes, "distributor.instance-limits.max-inflight-push-requests-bytes", 1<<30,
		"Most bytes of push requests, compressed and decompressed bodies together, this distributor holds at once once read; more get 503. 0 is no limit.")
	f.Float64Var(&l.MaxIngestionRate, "distributor.instance-limits.max-ingestion-rate", 0,
		"Most samples per second this distributor accepts, all tenants together; more get 503. 0 is no limit.")
}

// Validate checks the limits.
func (l *InstanceLimits) Validate() error {
	if l.MaxInflightPushRequests < 0 || l.MaxInflightPushRequestsBytes < 0 || l.MaxIngestionRate < 0 {
		return errors.New("-distributor.instance-limits.* must not be negative")
	}
	return nil
}

type instanceLimiter struct {
	limits        InstanceLimits
	inflight      atomic.Int64
	inflightBytes atomic.Int64
	rate          *rate.Limiter
}

func newInstanceLimiter(l InstanceLimits) *instanceLimiter {
	il := &instanceLimiter{limits: l}
	if l.MaxIngestionRate > 0 {
		// A second's worth of burst: short spikes pass, a sustained excess does not.
		il.rate = rate.NewLimiter(rate.Limit(l.MaxIngestionRate), int(max(l.MaxIngestionRate, 1)))
	}
	return il
}

// admit counts a request in flight; release must be called when it ends unless an error is returned.
func (il *instanceLimiter) admit() error {
	n := il.inflight.Add(1)
	if max := il.limits.MaxInflightPushRequests; max > 0 && n > int64(max) {
		il.inflight.Add(-1)
		return httpError(http.StatusServiceUnavailable, "this distributor already handles %d push requests, its limit (err-strata-distributor-max-inflight-push-requests, -distributor.instance-limits.max-inflight-push-requests); retry later", max)
	}
	return nil
}

func (il *instanceLimiter) release() { il.inflight.Add(-1) }

// holdBytes counts size bytes of a read request in flight; releaseBytes(size) must be called when the
// request ends unless an error is returned.
func (il *instanceLimiter) holdBytes(size int64) error {
	b := il.inflightBytes.Add(size)
	// A single request larger than the limit still passes alone, or it could never be served.
	if max := il.limits.MaxInflightPushRequestsBytes; max > 0 && b > int64(max) && b > size {
		il.releaseBytes(size)
		return httpError(http.StatusServiceUnavailable, "this distributor already holds %d bytes of push requests, its limit (err-strata-distributor-max-inflight-push-requests-bytes, -distributor.instance-limits.max-inflight-push-requests-bytes); retry later", max)
	}
	return nil
}

func (il *instanceLimiter) releaseBytes(size int64) { il.inflightBytes.Add(-size) }

// allowSamples takes n samples from the distributor's ingestion rate.
func (il *instanceLimiter) allowSamples(now time.Time, n int) error {
	if il.rate == nil || il.rate.AllowN(now, n) {
		return nil
	}
	return httpError(http.StatusServiceUnavailable, "this distributor accepts at most %g samples/s (err-strata-distributor-max-ingestion-rate, -distributor.instance-limits.max-ingestion-rate); retry later", il.limits.MaxIngestionRate)
}
