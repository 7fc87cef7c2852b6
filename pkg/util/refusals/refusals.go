// Package refusals slows down the answers to a tenant that keeps sending requests its limits refuse. A
// client that loops on 429 and 422 answers (a script without backoff, a hostile tenant) otherwise makes
// the process spend its cores refusing it, and every other tenant's latency pays. Past a small allowance,
// each refusal is answered after a delay during which the request holds no CPU, so such a loop slows to
// a few requests a second.
package refusals

import (
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// Config configures the throttle.
type Config struct {
	Delay         time.Duration
	FreePerSecond float64
}

// RegisterFlags registers the flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.Delay, "server.limit-refusal-delay", 500*time.Millisecond, "How long the answer to a request refused by the tenant's limits (429 or 422) is held back once the tenant has used its allowance of immediate refusals, so a client that retries without backoff costs little. 0 disables.")
	f.Float64Var(&c.FreePerSecond, "server.limit-refusals-without-delay", 10, "Refusals per second (twice as many at once) a tenant gets answered without -server.limit-refusal-delay.")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Delay < 0 || c.Delay > time.Minute {
		return errors.New("-server.limit-refusal-delay must be between 0 and 1m")
	}
	if c.FreePerSecond <= 0 {
		return errors.New("-server.limit-refusals-without-delay must be positive")
	}
	return nil
}

const (
	// maxDelayedPerTenant and maxDelayed bound the answers held back at once, for one tenant and in all:
	// beyond them refusals are answered at once, so the delay can never pile up goroutines and memory.
	maxDelayedPerTenant = 64
	maxDelayed          = 4096
	// idleAfter forgets a tenant not refused for this long.
	idleAfter = 5 * time.Minute
)

// Throttle delays refusals per tenant.
type Throttle struct {
	cfg Config
	now func() time.Time

	mu        sync.Mutex
	tenants   map[string]*tenantState
	delayed   int
	lastSweep time.Time

	delayedTotal *prometheus.CounterVec
}

type tenantState struct {
	free     *rate.Limiter
	delayed  int
	lastSeen time.Time
}

// New returns a throttle; its metric is strata_server_delayed_refusals_total{user}.
func New(cfg Config, reg prometheus.Registerer) *Throttle {
	return &Throttle{
		cfg:     cfg,
		now:     time.Now,
		tenants: map[string]*tenantState{},
		delayedTotal: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_server_delayed_refusals_total",
			Help: "Answers to requests refused by the tenant's limits (429, 422) held back by -server.limit-refusal-delay because the tenant kept sending them.",
		}, []string{"user"}),
	}
}

// Middleware answers as next does, holding back the answers that refuse a tenant past its allowance.
func (t *Throttle) Middleware(next http.Handler) http.Handler {
	if t.cfg.Delay == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status != http.StatusTooManyRequests && sw.status != http.StatusUnprocessableEntity {
			return
		}
		// Authentication, in front, has set the header to the tenant the request acted as.
		tenantID := r.Header.Get(tenant.OrgIDHeader)
		if tenantID == "" || !t.acquire(tenantID) {
			return
		}
		defer t.release(tenantID)
		t.delayedTotal.WithLabelValues(tenantID).Inc()
		// The answer is in the response's buffer (refusals are short); it leaves when this returns. The
		// delay varies by ±50% so that a client's parallel retries do not come back all at once.
		sleep(r.Context(), t.cfg.Delay/2+rand.N(t.cfg.Delay))
	})
}

// acquire reports whether a refusal of tenantID is to be delayed, and if so counts it as held back.
func (t *Throttle) acquire(tenantID string) bool {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.lastSweep) > idleAfter {
		t.lastSweep = now
		for id, s := range t.tenants {
			if s.delayed == 0 && now.Sub(s.lastSeen) > idleAfter {
				delete(t.tenants, id)
			}
		}
	}
	s, ok := t.tenants[tenantID]
	if !ok {
		if len(t.tenants) >= maxDelayed {
			return false // a flood of tenants: no state kept for more
		}
		s = &tenantState{free: rate.NewLimiter(rate.Limit(t.cfg.FreePerSecond), max(1, int(2*t.cfg.FreePerSecond)))}
		t.tenants[tenantID] = s
	}
	s.lastSeen = now
	if s.free.AllowN(now, 1) || s.delayed >= maxDelayedPerTenant || t.delayed >= maxDelayed {
		return false
	}
	s.delayed++
	t.delayed++
	return true
}

func (t *Throttle) release(tenantID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.delayed--
	if s, ok := t.tenants[tenantID]; ok {
		s.delayed--
	}
}

func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}

// statusWriter records the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming answers (remote read) flush through the wrapper.
func (w *statusWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
