package refusals

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// answerWith answers each request with the status in its ?status= parameter.
func answerWith() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("status"))
		http.Error(w, "refused: err-strata-request-rate", code)
	})
}

func get(t *testing.T, h http.Handler, tenantID string, status int) (int, time.Duration) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/x?status="+strconv.Itoa(status), nil)
	if tenantID != "" {
		req.Header.Set(tenant.OrgIDHeader, tenantID)
	}
	w := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(w, req)
	return w.Code, time.Since(start)
}

func TestThrottle_DelaysATenantThatKeepsGettingRefused(t *testing.T) {
	th := New(Config{Delay: 200 * time.Millisecond, FreePerSecond: 2}, prometheus.NewRegistry())
	now := time.Unix(1000, 0)
	th.now = func() time.Time { return now }
	h := th.Middleware(answerWith())

	// The allowance (twice the rate at once) is answered at once, then refusals wait.
	for range 4 {
		code, took := get(t, h, "noisy", http.StatusTooManyRequests)
		require.Equal(t, http.StatusTooManyRequests, code)
		require.Less(t, took, 100*time.Millisecond)
	}
	code, took := get(t, h, "noisy", http.StatusUnprocessableEntity)
	require.Equal(t, http.StatusUnprocessableEntity, code, "the answer is the handler's")
	require.GreaterOrEqual(t, took, 100*time.Millisecond, "half the delay at least")
	require.Equal(t, 1.0, testutil.ToFloat64(th.delayedTotal.WithLabelValues("noisy")))

	// Other tenants, other statuses and requests without a tenant are never held back.
	for _, tc := range []struct {
		tenant string
		status int
	}{{"steady", http.StatusTooManyRequests}, {"noisy", http.StatusOK}, {"noisy", http.StatusBadRequest}, {"noisy", http.StatusServiceUnavailable}, {"", http.StatusTooManyRequests}} {
		_, took := get(t, h, tc.tenant, tc.status)
		require.Less(t, took, 100*time.Millisecond, "%+v", tc)
	}

	// The allowance comes back with time.
	now = now.Add(time.Second)
	_, took = get(t, h, "noisy", http.StatusTooManyRequests)
	require.Less(t, took, 100*time.Millisecond)
}

func TestThrottle_HoldsBackABoundedNumberAtOnce(t *testing.T) {
	th := New(Config{Delay: time.Second, FreePerSecond: 1}, prometheus.NewRegistry())
	h := th.Middleware(answerWith())
	get(t, h, "noisy", http.StatusTooManyRequests)
	get(t, h, "noisy", http.StatusTooManyRequests)

	// More concurrent refusals than may be held: the ones beyond are answered at once.
	var wg sync.WaitGroup
	fast := make(chan struct{}, 2*maxDelayedPerTenant)
	for range 2 * maxDelayedPerTenant {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, took := get(t, h, "noisy", http.StatusTooManyRequests); took < 500*time.Millisecond {
				fast <- struct{}{}
			}
		}()
	}
	wg.Wait()
	require.GreaterOrEqual(t, len(fast), maxDelayedPerTenant-4, "beyond %d held back, refusals are answered at once", maxDelayedPerTenant)
	th.mu.Lock()
	defer th.mu.Unlock()
	require.Zero(t, th.delayed)
	require.Zero(t, th.tenants["noisy"].delayed)
}

func TestThrottle_ClientGoneEndsTheDelay(t *testing.T) {
	th := New(Config{Delay: time.Minute, FreePerSecond: 1}, prometheus.NewRegistry())
	srv := httptest.NewServer(th.Middleware(answerWith()))
	defer srv.Close()
	client := &http.Client{Timeout: 200 * time.Millisecond}
	for range 3 {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/x?status=429", nil)
		require.NoError(t, err)
		req.Header.Set(tenant.OrgIDHeader, "noisy")
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}
	require.Eventually(t, func() bool {
		th.mu.Lock()
		defer th.mu.Unlock()
		return th.delayed == 0
	}, 5*time.Second, 10*time.Millisecond, "a held-back answer whose client left is released")
}

func TestValidate(t *testing.T) {
	require.Error(t, (&Config{Delay: -1, FreePerSecond: 1}).Validate())
	require.Error(t, (&Config{Delay: time.Second}).Validate())
	require.NoError(t, (&Config{FreePerSecond: 1}).Validate())
}

// BenchmarkMiddleware is what every request pays for the throttle when it is not refused.
func BenchmarkMiddleware(b *testing.B) {
	h := New(Config{Delay: time.Second, FreePerSecond: 10}, prometheus.NewRegistry()).Middleware(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	req := httptest.NewRequest(http.MethodPost, "/api/v1/push", nil)
	req.Header.Set(tenant.OrgIDHeader, "team-a")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for range b.N {
		h.ServeHTTP(w, req)
	}
}
