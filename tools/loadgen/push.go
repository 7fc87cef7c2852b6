package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// pusher sends remote-write requests, retrying like Prometheus' queue manager: 5xx, 429 and network
// errors are retried with the same body and a doubling backoff (at least Retry-After when given);
// any other non-2xx answer fails the request at once.
type pusher struct {
	cfg          pushConfig
	client       *http.Client
	urls         []string
	next         atomic.Uint64 // spreads requests over urls
	tenantHeader string
	contentType  string
}

func newPusher(cfg pushConfig, urls []string, tenantHeader string, concurrency int) *pusher {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * concurrency
	if cfg.TLSCAPath != "" {
		pem, err := os.ReadFile(cfg.TLSCAPath)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			panic(fmt.Sprintf("-tls-ca-path %s: no PEM certificate could be read (%v)", cfg.TLSCAPath, err))
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &pusher{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}, urls: urls, tenantHeader: tenantHeader,
		contentType: "application/x-protobuf"}
}

// contentTypeV2 is the Content-Type of a remote write 2.0 request.
const contentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

// push sends body for tenant until it is accepted, refused or out of retries. counted is false
// when ctx ended first: the request was abandoned, not answered.
func (p *pusher) push(ctx context.Context, tenant string, body []byte, st *pushStats) (ok, counted bool) {
	backoff := p.cfg.MinBackoff
	for attempt := 0; ; attempt++ {
		url := p.urls[p.next.Add(1)%uint64(len(p.urls))]
		start := time.Now()
		status, retryAfter, err := p.attempt(ctx, url, tenant, body)
		if ctx.Err() != nil {
			return false, false
		}
		st.latencies = append(st.latencies, time.Since(start))
		key := "network"
		if err == nil {
			key = strconv.Itoa(status)
		}
		switch {
		case err == nil && status/100 == 2:
			return true, true
		case err == nil && status != http.StatusTooManyRequests && status/100 != 5:
			st.count(&st.failed, key)
			return false, true
		case attempt >= p.cfg.MaxRetries:
			st.count(&st.failed, key)
			return false, true
		}
		st.count(&st.retries, key)
		wait := min(max(backoff, retryAfter), p.cfg.MaxBackoff)
		backoff = min(2*backoff, p.cfg.MaxBackoff)
		if !sleepCtx(ctx, wait) {
			return false, false
		}
	}
}

// attempt makes one HTTP request and returns its status and Retry-After (in seconds form only).
func (p *pusher) attempt(ctx context.Context, url, tenant string, body []byte) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", p.contentType)
	if p.contentType == contentTypeV2 {
		req.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	} else {
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	}
	req.Header.Set("User-Agent", "strata-loadgen")
	if p.tenantHeader != "" {
		req.Header.Set(p.tenantHeader, tenant)
	}
	if user, password, ok := strings.Cut(p.cfg.BasicAuth, ":"); ok {
		req.SetBasicAuth(user, password)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	// Drain so the connection is reused; error bodies are short.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	var retryAfter time.Duration
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		retryAfter = time.Duration(secs) * time.Second
	}
	return resp.StatusCode, retryAfter, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
