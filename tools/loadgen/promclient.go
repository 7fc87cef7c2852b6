package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// promClient calls a Prometheus HTTP API (base is the prefix before /api/v1).
type promClient struct {
	base         string
	tenantHeader string
	tenant       string
	client       *http.Client
}

func newPromClient(base, tenantHeader, tenant string, timeout time.Duration, concurrency int) *promClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * concurrency
	return &promClient{base: strings.TrimRight(base, "/"), tenantHeader: tenantHeader, tenant: tenant,
		client: &http.Client{Transport: tr, Timeout: timeout}}
}

// post sends params as a form to base+path, as Grafana does, and returns the status, body and headers.
func (c *promClient) post(ctx context.Context, path string, params url.Values) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(params.Encode()))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "strata-loadgen")
	if c.tenantHeader != "" {
		req.Header.Set(c.tenantHeader, c.tenant)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, resp.Header, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, body, resp.Header, nil
}

// statusKey names an outcome for the failure tallies.
func statusKey(status int, err error) string {
	if err != nil {
		return "network"
	}
	return strconv.Itoa(status)
}

// formatAPITime formats milliseconds as the API's seconds with millisecond precision.
func formatAPITime(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64) }
