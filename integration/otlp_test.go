package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// TestOTLP_SDKExportIsStoredAsPrometheusStoresIt exports the same collections of an OpenTelemetry Go
// SDK (a counter, a gauge, an explicit-bucket histogram and an exponential histogram, with resource
// attributes) with the SDK's OTLP/HTTP exporter to Strata and to a current Prometheus' OTLP receiver,
// both set to add suffixes, promote cloud.region and keep the identifying attributes: every series
// (names, labels) and value Strata answers must be what Prometheus answers.
func TestOTLP_SDKExportIsStoredAsPrometheusStoresIt(t *testing.T) {
	const tenantID = "otel-team"
	strata := startStrata(t, t.TempDir(),
		"-distributor.otel-metric-suffixes-enabled=true",
		"-distributor.otel-promote-resource-attributes=cloud.region",
		"-distributor.otel-keep-identifying-resource-attributes=true",
	)
	promDir := t.TempDir()
	prom := runPrometheus(t, prometheus3Binary(t),
		"--config.file="+writeFile(t, promDir, "prometheus.yml", `
otlp:
  translation_strategy: UnderscoreEscapingWithSuffixes
  promote_resource_attributes: [cloud.region]
  keep_identifying_resource_attributes: true
`),
		"--storage.tsdb.path="+promDir+"/data",
		"--web.enable-otlp-receiver",
	)

	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(reader),
		sdkmetric.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "checkout"),
			attribute.String("service.namespace", "shop"),
			attribute.String("service.instance.id", "pod-7"),
			attribute.String("cloud.region", "eu-west-1"),
			attribute.String("host.name", "node-3"),
		)),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "payload.size"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})),
	)
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	meter := provider.Meter("checkout-service", metric.WithInstrumentationVersion("1.2.3"))
	requests, err := meter.Int64Counter("http.server.requests", metric.WithUnit("{request}"), metric.WithDescription("Requests served."))
	require.NoError(t, err)
	queue, err := meter.Float64Gauge("queue.depth", metric.WithUnit("By"))
	require.NoError(t, err)
	duration, err := meter.Float64Histogram("http.server.duration", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.1, 0.5, 1))
	require.NoError(t, err)
	size, err := meter.Float64Histogram("payload.size", metric.WithUnit("By"))
	require.NoError(t, err)

	ctx := context.Background()
	get := metric.WithAttributes(attribute.String("http.method", "GET"), attribute.Int("http.status_code", 200))
	post := metric.WithAttributes(attribute.String("http.method", "POST"), attribute.Int("http.status_code", 500))
	record := func(round int) {
		requests.Add(ctx, int64(10*round), get)
		requests.Add(ctx, int64(round), post)
		queue.Record(ctx, 1.5*float64(round), metric.WithAttributes(attribute.String("queue", "orders")))
		for i := range 20 * round {
			duration.Record(ctx, float64(i)*0.07, get)
			size.Record(ctx, float64(100+i*37))
		}
	}

	// Each collection goes to both receivers; Strata gets the first on its OTLP path, gzip-compressed,
	// and the second on Cortex's path, uncompressed.
	exportTo := func(endpoint string, gzip bool, headers map[string]string, rm *metricdata.ResourceMetrics) {
		t.Helper()
		compression := otlpmetrichttp.NoCompression
		if gzip {
			compression = otlpmetrichttp.GzipCompression
		}
		exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(endpoint), otlpmetrichttp.WithHeaders(headers),
			otlpmetrichttp.WithCompression(compression), otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
		require.NoError(t, err)
		require.NoError(t, exp.Export(ctx, rm), "export to %s", endpoint)
		require.NoError(t, exp.Shutdown(ctx))
	}
	// Without a tenant, the exporter gets Strata's 401 as an error.
	var first metricdata.ResourceMetrics
	record(0)
	require.NoError(t, reader.Collect(ctx, &first))
	noTenant, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(strata.url("/otlp/v1/metrics")),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	require.NoError(t, err)
	require.ErrorContains(t, noTenant.Export(ctx, &first), "401")

	tenantHeader := map[string]string{"X-Scope-OrgID": tenantID}
	for round, strataPath := range []string{"/otlp/v1/metrics", "/api/v1/otlp/v1/metrics"} {
		record(round + 1)
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(ctx, &rm))
		exportTo(strata.url(strataPath), round == 0, tenantHeader, &rm)
		exportTo(prom+"/api/v1/otlp/v1/metrics", false, nil, &rm)
	}

	evalTime := strconv.FormatFloat(float64(time.Now().Add(time.Second).UnixMilli())/1000, 'f', 3, 64)
	latest := url.Values{"query": {`{__name__=~".+"}`}, "time": {evalTime}}
	want := otlpQueryResult(t, prom, "/api/v1/query", "", latest, "vector")
	// 2 counter series, the gauge, the histogram's 4 buckets, sum and count, the exponential histogram
	// and target_info.
	require.Len(t, want, 11, "Prometheus' answer: %s", canonical(t, want))
	for _, name := range []string{"http_server_requests_total", "queue_depth_bytes", "http_server_duration_seconds_bucket", "payload_size_bytes", "target_info"} {
		require.Contains(t, string(mustJSON(t, want)), `"__name__":"`+name+`"`)
	}
	// Every sample of both exports, with its timestamp, as a range selector returns them.
	raw := url.Values{"query": {`{__name__=~".+"}[10m]`}, "time": {evalTime}}
	wantRaw := otlpQueryResult(t, prom, "/api/v1/query", "", raw, "matrix")
	for _, r := range wantRaw {
		var series matrixSeries
		require.NoError(t, json.Unmarshal(r, &series))
		if series.Metric["__name__"] == "http_server_requests_total" && series.Metric["http_method"] == "GET" {
			require.Len(t, series.Values, 2, "a sample per export")
			require.Equal(t, []float64{10, 30}, []float64{series.Values[0].float(t), series.Values[1].float(t)})
		}
	}

	var got, gotRaw []json.RawMessage
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got = otlpQueryResult(t, strata.url(""), "/prometheus/api/v1/query", tenantID, latest, "vector")
		gotRaw = otlpQueryResult(t, strata.url(""), "/prometheus/api/v1/query", tenantID, raw, "matrix")
		if canonical(t, gotRaw) == canonical(t, wantRaw) || time.Now().After(deadline) {
			break
		}
	}
	require.Equal(t, canonical(t, want), canonical(t, got))
	require.Equal(t, canonical(t, wantRaw), canonical(t, gotRaw))
}

// otlpQueryResult runs an instant query and returns its result's elements, of resultType.
func otlpQueryResult(t *testing.T, base, path, tenantID string, params url.Values, resultType string) []json.RawMessage {
	t.Helper()
	var data struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	mustGetAPI(t, base, path, tenantID, params, &data)
	require.Equal(t, resultType, data.ResultType)
	return data.Result
}

// canonical renders result elements sorted, one per line, with their keys in a fixed order, so that two
// answers compare equal when they hold the same series and values.
func canonical(t *testing.T, result []json.RawMessage) string {
	t.Helper()
	lines := make([]string, 0, len(result))
	for _, r := range result {
		var v any
		require.NoError(t, json.Unmarshal(r, &v))
		lines = append(lines, string(mustJSON(t, v))) // encoding/json sorts map keys
	}
	sort.Strings(lines)
	var b bytes.Buffer
	for _, l := range lines {
		fmt.Fprintln(&b, l)
	}
	return b.String()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// With otel_created_timestamp_zero_ingestion_enabled, the start time of OTLP counters and histograms is
// stored as a zero sample, as Prometheus 3 with created-timestamp-zero-ingestion stores it: the raw
// samples are the same.
func TestOTLP_StartTimesAreZeroSamples(t *testing.T) {
	const tenantID = "otel-starts"
	strata := startStrata(t, t.TempDir(), "-distributor.otel-created-timestamp-zero-ingestion-enabled=true")
	promDir := t.TempDir()
	prom := runPrometheus(t, prometheus3Binary(t),
		"--config.file="+writeFile(t, promDir, "prometheus.yml", "otlp:\n  translation_strategy: UnderscoreEscapingWithoutSuffixes\n"),
		"--storage.tsdb.path="+promDir+"/data",
		"--web.enable-otlp-receiver",
		"--enable-feature=created-timestamp-zero-ingestion",
	)

	now := time.Now().Truncate(time.Second)
	start := pcommon.NewTimestampFromTime(now.Add(-90 * time.Second))
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	sum := ms.AppendEmpty()
	sum.SetName("orders")
	s := sum.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hist := ms.AppendEmpty()
	hist.SetName("latency")
	h := hist.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, at := range []time.Time{now.Add(-60 * time.Second), now.Add(-30 * time.Second)} {
		p := s.DataPoints().AppendEmpty()
		p.SetStartTimestamp(start)
		p.SetTimestamp(pcommon.NewTimestampFromTime(at))
		p.SetIntValue(int64(5 + 4*i))
		hp := h.DataPoints().AppendEmpty()
		hp.SetStartTimestamp(start)
		hp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		hp.ExplicitBounds().FromRaw([]float64{1})
		hp.BucketCounts().FromRaw([]uint64{uint64(1 + i), 2})
		hp.SetCount(uint64(3 + i))
		hp.SetSum(4.5 + float64(i))
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	for _, target := range []struct{ url, tenant string }{{strata.url("/otlp/v1/metrics"), tenantID}, {prom + "/api/v1/otlp/v1/metrics", ""}} {
		req, err := http.NewRequest(http.MethodPost, target.url, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-protobuf")
		if target.tenant != "" {
			req.Header.Set("X-Scope-OrgID", target.tenant)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		respBody, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", target.url, respBody)
	}

	evalTime := strconv.FormatFloat(float64(now.Add(time.Second).UnixMilli())/1000, 'f', 3, 64)
	raw := url.Values{"query": {`{__name__=~"orders|latency_.+"}[10m]`}, "time": {evalTime}}
	want := otlpQueryResult(t, prom, "/api/v1/query", "", raw, "matrix")
	require.Len(t, want, 5, "orders, 2 buckets, sum and count: %s", canonical(t, want))
	for _, r := range want {
		var series matrixSeries
		require.NoError(t, json.Unmarshal(r, &series))
		if series.Metric["__name__"] == "orders" {
			require.Len(t, series.Values, 3, "the zero at the start time, then a sample per point")
			require.Equal(t, 0.0, series.Values[0].float(t))
		}
	}
	var got []json.RawMessage
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got = otlpQueryResult(t, strata.url(""), "/prometheus/api/v1/query", tenantID, raw, "matrix")
		if canonical(t, got) == canonical(t, want) || time.Now().After(deadline) {
			break
		}
	}
	require.Equal(t, canonical(t, want), canonical(t, got))
}
