package frontend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/strata-metrics/strata/pkg/frontend/queue"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// Handler is the query-frontend's HTTP entry point for the Prometheus read API. It reads the request
// once (bounded), gives it a deadline, sends it down the middleware chain to the queue, and writes the
// answer with the query's statistics in a Server-Timing header.
type Handler struct {
	cfg     Config
	limits  *validation.Overrides
	next    http.RoundTripper
	timeout time.Duration
	logger  *slog.Logger

	slowLogs *rate.Limiter
	duration *prometheus.HistogramVec
	// bodyBytes counts the bytes of the request bodies held, against MaxInflightBodyBytes.
	bodyBytes atomic.Int64
}

// NewHandler returns the handler in front of next (the middlewares, ending in Frontend.RoundTrip).
// timeout bounds each request from its arrival: queueing, splitting and the queriers' work.
func NewHandler(cfg Config, limits *validation.Overrides, next http.RoundTripper, timeout time.Duration, reg prometheus.Registerer, logger *slog.Logger) *Handler {
	return &Handler{
		cfg: cfg, limits: limits, next: next, timeout: timeout, logger: logger,
		slowLogs: rate.NewLimiter(10, 10),
		duration: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "strata_query_frontend_request_duration_seconds",
			Help:                        "Time the query-frontend took to answer requests, by status code.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}, []string{"status_code"}),
	}
}

// ServeHTTP expects the tenant in r's context (the app's tenant middleware puts it there).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "bad_data", "only GET and POST are allowed")
		return
	}
	tenantID, err := tenant.FromContext(r.Context())
	if err != nil {
		writeError(w, http.StatusUnauthorized, "bad_data", err.Error())
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodySize))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "bad_data",
				"the request body is larger than "+strconv.FormatInt(h.cfg.MaxBodySize, 10)+" bytes (-query-frontend.max-body-size)")
			return
		}
		writeError(w, http.StatusBadRequest, "bad_data", "read the request body: "+err.Error())
		return
	}

	// Counted once read, so a client announcing a large body it never sends holds no budget.
	if held := h.bodyBytes.Add(int64(len(body))); held > h.cfg.MaxInflightBodyBytes {
		h.bodyBytes.Add(-int64(len(body)))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the query-frontend holds too many request bytes already (-query-frontend.max-inflight-request-bytes); retry later")
		return
	}
	defer h.bodyBytes.Add(-int64(len(body)))

	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	stats := &Stats{}
	ctx = ContextWithStats(ctx, stats)
	ctx = contextWithParallelism(ctx, h.maxParallelism(tenantID))
	req := r.Clone(ctx)
	// The tenant as the middleware settled it (with multitenancy off there is no header to copy).
	req.Header.Set(tenant.OrgIDHeader, tenantID)
	req.RequestURI = ""
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }

	resp, err := h.next.RoundTrip(req)
	var status int
	if err != nil {
		status = h.writeRoundTripError(w, ctx, err)
	} else {
		status = resp.StatusCode
		h.writeResponse(w, resp, stats, time.Since(start))
	}
	took := time.Since(start)
	h.duration.WithLabelValues(strconv.Itoa(status)).Observe(took.Seconds())
	if h.cfg.LogQueriesLongerThan > 0 && took > h.cfg.LogQueriesLongerThan && h.slowLogs.Allow() {
		h.logSlowQuery(r, body, tenantID, status, took, stats)
	}
}

func (h *Handler) writeResponse(w http.ResponseWriter, resp *http.Response, stats *Stats, took time.Duration) {
	defer resp.Body.Close()
	for name, values := range resp.Header {
		if name == "Content-Length" {
			continue
		}
		w.Header()[name] = values
	}
	timing := stats.serverTiming(took)
	if cache := resp.Header.Get("X-Strata-Cache"); cache != "" {
		// The results cache's verdict on a range query: hit, partial or miss.
		timing += `, cache;desc="` + cache + `"`
	}
	w.Header().Add("Server-Timing", timing)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// writeRoundTripError answers a request that got no querier's answer, and returns the status it wrote.
func (h *Handler) writeRoundTripError(w http.ResponseWriter, ctx context.Context, err error) int {
	var (
		status  int
		errType string
		msg     string
	)
	switch {
	case errors.Is(err, queue.ErrTooManyRequests):
		status, errType = http.StatusTooManyRequests, "unavailable"
		msg = "too many outstanding requests of this tenant in the query-frontend's queue, the limit is " +
			strconv.Itoa(h.cfg.MaxOutstandingPerTenant) + " (err-strata-max-outstanding-requests-per-tenant, -query-frontend.max-outstanding-requests-per-tenant); retry later"
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		status, errType = http.StatusServiceUnavailable, "timeout"
		msg = "query timed out after " + h.timeout.String() + " in the queue and the queriers (-querier.timeout)"
	case errors.Is(ctx.Err(), context.Canceled):
		status, errType, msg = 499, "canceled", "the client canceled the query"
	case errors.Is(err, queue.ErrStopped), errors.Is(err, errQuerierGone):
		status, errType, msg = http.StatusServiceUnavailable, "unavailable", err.Error()+"; retry"
	default:
		status, errType, msg = http.StatusInternalServerError, "internal", err.Error()
	}
	writeError(w, status, errType, msg)
	return status
}

func (h *Handler) logSlowQuery(r *http.Request, body []byte, tenantID string, status int, took time.Duration, stats *Stats) {
	params := r.URL.Query()
	if form, err := url.ParseQuery(string(body)); err == nil && r.Method == http.MethodPost {
		for name, values := range form {
			params[name] = append(params[name], values...)
		}
	}
	stats.mu.Lock()
	defer stats.mu.Unlock()
	h.logger.Info("slow query (at most 10 such lines per second)", "tenant", tenantID, "path", r.URL.Path,
		"params", params, "status", status, "took", took, "queue_time", stats.QueueTime,
		"querier_time", stats.QuerierTime, "querier_requests", stats.Requests,
		"fetched_series", stats.FetchedSeries, "fetched_chunks", stats.FetchedChunks, "fetched_bytes", stats.FetchedBytes)
}

// maxParallelism is the query's max_query_parallelism: the smallest of its tenants' for a federated read.
func (h *Handler) maxParallelism(tenantID string) int {
	n := 0
	for _, id := range tenant.IDs(tenantID) {
		if p := h.limits.For(id).MaxQueryParallelism; n == 0 || p < n {
			n = p
		}
	}
	return max(n, 1)
}

// writeError answers in the Prometheus API's error envelope, which Grafana shows to the user.
func writeError(w http.ResponseWriter, status int, errType, msg string) {
	body, _ := json.Marshal(struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", errType, msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
