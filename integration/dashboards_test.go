package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// monitoringTenant is the tenant a Prometheus writes Strata's own metrics to in this test, as an operator
// would keep them apart from the tenants' data.
const monitoringTenant = "strata-monitoring"

// TestDashboardsAndAlerts_EveryExpressionReturnsData runs one Strata (-target=all) scraped by a current
// Prometheus that remote-writes Strata's own metrics back into it, drives every component (pushes,
// rejected samples, queries, a rule group whose alert reaches a tenant's Alertmanager, a flushed block that
// the store-gateway loads and the compactor reads), then asks Strata every panel expression of
// production/dashboards/*.json and every alert expression of production/alerts/strata-alerts.yaml:
// each must parse; each panel and each metric selector of each alert must return data; no alert fires,
// neither asked through the query API nor evaluated by Strata's own ruler.
// STRATA_DUMP_METRICS=1 logs the metrics and labels the busy Strata exports: what a new panel may use.
func TestDashboardsAndAlerts_EveryExpressionReturnsData(t *testing.T) {
	dir := t.TempDir()
	bucketDir := filepath.Join(dir, "bucket")
	runtimeFile := writeFile(t, dir, "runtime.yaml", "overrides:\n  team-a:\n    ingestion_rate: 50000\n    max_global_series_per_user: 100000\n")
	s := startStrata(t, filepath.Join(dir, "data"),
		"-runtime-config.file="+runtimeFile,
		"-blocks-storage.filesystem.dir="+bucketDir,
		"-blocks-storage.tsdb.ship-interval=1s",
		"-blocks-storage.bucket-store.sync-interval=1s",
		"-querier.query-store-after=0s",
		"-querier.bucket-index-ttl=1s",
		"-compactor.compaction-interval=1s",
		"-compactor.cleanup-interval=1s",
		"-ruler.poll-interval=1s",
		"-ruler.evaluation-interval=1s",
		"-ruler.resend-delay=1s",
		"-alertmanager.configs.poll-interval=1s",
		// The webhook below listens on loopback, which the receivers firewall blocks by default.
		"-alertmanager.receivers-firewall-block-cidr-networks=",
	)
	startPrometheus3(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: strata
    static_configs:
      - targets: [%q]
remote_write:
  - url: %q
    headers:
      X-Scope-OrgID: %s
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 50ms
      max_backoff: 500ms
`, s.httpAddr, s.url("/api/v1/push"), monitoringTenant))

	driveEveryComponent(t, s)
	if os.Getenv("STRATA_DUMP_METRICS") != "" {
		dumpMetricNames(t, s)
	}
	// The alerting rules also run where an operator may put them: in Strata's own ruler, for the tenant
	// that holds Strata's metrics.
	loadAlertGroups(t, s)
	waitForSelfScrapes(t, s, time.Now())

	t.Run("dashboards", func(t *testing.T) { checkDashboards(t, s) })
	t.Run("alerts", func(t *testing.T) { checkAlerts(t, s) })
	t.Run("alerts in the ruler", func(t *testing.T) { checkAlertsInRuler(t, s) })
}

// driveEveryComponent makes each component do its work once, so that its metrics exist with the labels a
// busy cluster gives them.
func driveEveryComponent(t *testing.T, s *strataProcess) {
	t.Helper()
	now := time.Now()
	// Two tenants write an hour of history (it fills a block) and a fresh sample.
	for _, tenantID := range []string{"team-a", "team-b"} {
		req := &prompb.WriteRequest{}
		for i := range 4 {
			ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "app_requests_total"}, {Name: "instance", Value: fmt.Sprintf("i%d", i)}}}
			for m := 60; m >= 0; m-- {
				ts.Samples = append(ts.Samples, prompb.Sample{Value: float64(60 - m), Timestamp: now.Add(-time.Duration(m) * time.Minute).UnixMilli()})
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
		code, body := push(t, s.url("/api/v1/push"), tenantID, req)
		require.Equal(t, http.StatusNoContent, code, body)
	}
	// An OTLP export of a counter, as an OpenTelemetry SDK sends it.
	ctx := context.Background()
	exporter, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(s.url("/otlp/v1/metrics")),
		otlpmetrichttp.WithHeaders(map[string]string{"X-Scope-OrgID": "team-a"}))
	require.NoError(t, err)
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	jobs, err := provider.Meter("dashboards-test").Int64Counter("jobs.done")
	require.NoError(t, err)
	jobs.Add(ctx, 3)
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	require.NoError(t, exporter.Export(ctx, &rm))
	require.NoError(t, provider.Shutdown(ctx))

	// A rejected series: the discarded-samples panels and alert have a reason to show.
	bad := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "app_requests_total"}, {Name: "bad-label", Value: "x"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: now.UnixMilli()}},
	}}}
	code, body := push(t, s.url("/api/v1/push"), "team-b", bad)
	require.Equal(t, http.StatusBadRequest, code, body)

	// A rule group for team-a whose alert fires at once and reaches team-a's Alertmanager.
	hook := newWebhookReceiver(t)
	amConfig := "alertmanager_config: |\n  route:\n    receiver: hook\n    group_wait: 1s\n    group_interval: 1s\n  receivers:\n  - name: hook\n    webhook_configs:\n    - url: " + hook.URL + "\n"
	code, amBody, err := amRequest(s, http.MethodPost, "/api/v1/alerts", "team-a", []byte(amConfig))
	require.NoError(t, err)
	require.Less(t, code, 300, string(amBody))
	loadRuleGroup(t, s, "team-a", "app", `name: app
interval: 1s
rules:
- record: instance:app_requests:rate1m
  expr: rate(app_requests_total[1m])
- alert: AppAlwaysFiring
  expr: vector(1)
`)
	require.Eventually(t, func() bool { return len(hook.messages()) > 0 }, 30*time.Second, 100*time.Millisecond,
		"team-a's alert never reached its webhook")

	// The head is flushed to blocks that the shipper uploads, the store-gateway loads and queries read. A
	// query fails (500) while the bucket index lists a block that the store-gateway has not loaded yet:
	// each query is asked again until the store-gateway has caught up.
	flush(t, s)
	for _, q := range []string{"sum(rate(app_requests_total[5m]))", "app_requests_total"} {
		for _, tenantID := range []string{"team-a", "team-b"} {
			for _, path := range []string{"/api/v1/query_range", "/api/v1/query"} {
				params := url.Values{"query": {q}}
				if path == "/api/v1/query_range" {
					params = url.Values{"query": {q}, "start": {formatTime(now.Add(-time.Hour))}, "end": {formatTime(now)}, "step": {"60"}}
				}
				pollUntil(t, 30*time.Second, path+" "+q+" of "+tenantID, func() (bool, string) {
					code, resp := getAPI(t, s.url("/prometheus"), path, tenantID, params)
					return code == http.StatusOK, fmt.Sprintf("%d %s", code, resp.Error)
				})
			}
		}
	}
	pollUntil(t, 30*time.Second, "blocks in the store-gateway", func() (bool, string) {
		text := metricsText(t, s)
		return strings.Contains(text, "strata_storegateway_blocks_loaded ") && !strings.Contains(text, "strata_storegateway_blocks_loaded 0\n"), ""
	})
}

// metricsText returns the process' /metrics page.
func metricsText(t *testing.T, s *strataProcess) string {
	t.Helper()
	code, body := getRaw(t, s.url("/metrics"), "")
	require.Equal(t, http.StatusOK, code)
	return body
}

// dumpMetricNames logs the metric names and label names the process exports (STRATA_DUMP_METRICS=1): what
// the dashboards may use.
func dumpMetricNames(t *testing.T, s *strataProcess) {
	labelsOf := map[string]map[string]bool{}
	re := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	for _, line := range strings.Split(metricsText(t, s), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		name = strings.Fields(name)[0]
		if labelsOf[name] == nil {
			labelsOf[name] = map[string]bool{}
		}
		for _, m := range re.FindAllStringSubmatch(rest, -1) {
			labelsOf[name][m[1]] = true
		}
	}
	var out []string
	for name, ls := range labelsOf {
		var names []string
		for l := range ls {
			names = append(names, l)
		}
		sort.Strings(names)
		out = append(out, name+" "+strings.Join(names, ","))
	}
	sort.Strings(out)
	t.Logf("metrics:\n%s", strings.Join(out, "\n"))
}
