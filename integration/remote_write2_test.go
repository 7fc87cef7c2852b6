package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// appTarget is a scrape target exposing what remote write 2.0 carries beyond 1.0: a counter with
// exemplars and created timestamps, a native histogram (with classic buckets too), and a gauge with help
// and unit. Its values change on every scrape.
type appTarget struct {
	*httptest.Server
	mu       sync.Mutex
	requests *prometheus.CounterVec
	latency  prometheus.Histogram
	temp     prometheus.Gauge
	n        int
}

func startAppTarget(t *testing.T) *appTarget {
	reg := prometheus.NewRegistry()
	a := &appTarget{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rw2_requests_total", Help: "Requests served."}, []string{"code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rw2_latency_seconds", Help: "Request latency.",
			Buckets:                     []float64{0.01, 0.1, 1},
			NativeHistogramBucketFactor: 1.1,
		}),
		temp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rw2_temperature_celsius", Help: "Temperature of the room."}),
	}
	reg.MustRegister(a.requests, a.latency, a.temp)
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.n++
		n := a.n
		a.requests.WithLabelValues("200").(prometheus.ExemplarAdder).AddWithExemplar(float64(1+n%3), prometheus.Labels{"trace_id": fmt.Sprintf("t%d", n)})
		a.requests.WithLabelValues("500").Add(float64(n % 2))
		for i := range 5 {
			a.latency.(prometheus.ExemplarObserver).ObserveWithExemplar(float64((n*7+i)%40)/37, prometheus.Labels{"trace_id": fmt.Sprintf("h%d-%d", n, i)})
		}
		a.temp.Set(20 + float64(n%10)/4)
		a.mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

// A current Prometheus scrapes a target that exposes native histograms, exemplars and metadata, keeps it
// in its own TSDB and sends it to Strata with remote write 2.0: Strata answers what Prometheus answers.
func TestRemoteWrite2_StrataAnswersWhatTheSendingPrometheusAnswers(t *testing.T) {
	const tenantID = "team-rw2"
	strata := startStrata(t, t.TempDir(), "-ingester.max-global-exemplars-per-user=100000")
	target := startAppTarget(t)
	promURL := startPrometheus3WithFlags(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: app
    scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]
    scrape_native_histograms: true
    always_scrape_classic_histograms: true
    static_configs:
      - targets: [%q]
remote_write:
  - url: %q
    protobuf_message: io.prometheus.write.v2.Request
    send_exemplars: true
    send_native_histograms: true
    headers:
      X-Scope-OrgID: %s
    queue_config:
      batch_send_deadline: 100ms
      min_backoff: 50ms
      max_backoff: 200ms
`, strings.TrimPrefix(target.URL, "http://"), strata.url("/api/v1/push"), tenantID),
		"--enable-feature=exemplar-storage,metadata-wal-records,created-timestamp-zero-ingestion")

	// Both hold the same data once Prometheus has sent what it scraped up to a point in the past.
	var start time.Time
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "Prometheus did not scrape the target")
		var v []json.RawMessage
		if code, resp := getAPI(t, promURL, "/api/v1/query", "", url.Values{"query": {"rw2_requests_total"}}); code == http.StatusOK {
			_ = json.Unmarshal(mustResult(t, resp.Data), &v)
			if len(v) == 2 {
				start = time.Now()
				break
			}
		}
	}
	time.Sleep(8 * time.Second)
	end := time.Now().Add(-2 * time.Second)
	rangeParams := func(q string) url.Values {
		return url.Values{"query": {q}, "start": {unixSeconds(start)}, "end": {unixSeconds(end)}, "step": {"1"}}
	}

	queries := []string{
		`rw2_requests_total`,
		`rate(rw2_requests_total[3s])`,
		`rw2_latency_seconds`,
		`histogram_quantile(0.9, rate(rw2_latency_seconds[3s]))`,
		`histogram_count(rw2_latency_seconds)`,
		`histogram_sum(rw2_latency_seconds)`,
		`histogram_quantile(0.9, sum by (le) (rate(rw2_latency_seconds_bucket[3s])))`,
		`rw2_latency_seconds_count`,
		`rw2_temperature_celsius`,
		`count by (__name__) ({job="app", __name__=~"rw2_.*"})`,
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		diffs := []string{}
		for _, q := range queries {
			want := apiData(t, promURL, "/api/v1/query_range", "", rangeParams(q))
			got := apiData(t, strata.url(""), "/prometheus/api/v1/query_range", tenantID, rangeParams(q))
			require.NotEqual(t, `{"resultType":"matrix","result":[]}`, compactJSON(t, want), "Prometheus has no data for %s", q)
			if compactJSON(t, want) != compactJSON(t, got) {
				diffs = append(diffs, fmt.Sprintf("%s:\nprometheus %s\nstrata     %s", q, compactJSON(t, want), compactJSON(t, got)))
			}
		}
		exParams := url.Values{"query": {`rw2_requests_total`}, "start": {unixSeconds(start)}, "end": {unixSeconds(end)}}
		wantEx := apiData(t, promURL, "/api/v1/query_exemplars", "", exParams)
		gotEx := apiData(t, strata.url(""), "/prometheus/api/v1/query_exemplars", tenantID, exParams)
		if compactJSON(t, wantEx) != compactJSON(t, gotEx) {
			diffs = append(diffs, fmt.Sprintf("exemplars:\nprometheus %s\nstrata     %s", compactJSON(t, wantEx), compactJSON(t, gotEx)))
		}
		if len(diffs) == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "answers differ:\n%s", strings.Join(diffs, "\n\n"))
	}
}

// startPrometheus3WithFlags is startPrometheus3 with extra command-line flags.
func startPrometheus3WithFlags(t *testing.T, config string, flags ...string) string {
	t.Helper()
	dir := t.TempDir()
	return runPrometheus(t, prometheus3Binary(t), append([]string{
		"--config.file=" + writeFile(t, dir, "prometheus.yml", config),
		"--storage.tsdb.path=" + dir + "/data",
	}, flags...)...)
}

func unixSeconds(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000) }

// apiData returns the data of a successful API answer.
func apiData(t *testing.T, base, path, tenantID string, params url.Values) json.RawMessage {
	t.Helper()
	code, resp := getAPI(t, base, path, tenantID, params)
	require.Equal(t, http.StatusOK, code, "%s%s?%s: %s", base, path, params.Encode(), resp.Error)
	return resp.Data
}

func mustResult(t *testing.T, data json.RawMessage) json.RawMessage {
	var v struct {
		Result json.RawMessage `json:"result"`
	}
	require.NoError(t, json.Unmarshal(data, &v))
	return v.Result
}

func compactJSON(t *testing.T, raw json.RawMessage) string {
	var v any
	require.NoError(t, json.Unmarshal(raw, &v))
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return string(out)
}

// Metadata arrives with every 2.0 series; Strata answers it per metric family, as Prometheus' metadata
// API does for what it scraped. (Prometheus 3.13 itself sent no metadata over 2.0 in these tests, even
// with metadata-wal-records, so the request is built here.)
func TestRemoteWrite2_MetadataIsAnsweredPerMetricFamily(t *testing.T) {
	strata := startStrata(t, t.TempDir())
	now := time.Now().UnixMilli()
	st := writev2.NewSymbolTable()
	seriesOf := func(meta writev2.Metadata, nameValues ...string) writev2.TimeSeries {
		return writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings(nameValues...), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: now}},
			Metadata:   meta,
		}
	}
	counter := writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Jobs run.")}
	histogram := writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM, HelpRef: st.Symbolize("Sizes seen."), UnitRef: st.Symbolize("bytes")}
	gauge := writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: st.Symbolize("Heat."), UnitRef: st.Symbolize("celsius")}
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		seriesOf(counter, "__name__", "rw2_jobs_total", "job", "a"),
		seriesOf(counter, "__name__", "rw2_jobs_total", "job", "b"),
		seriesOf(histogram, "__name__", "rw2_size_bytes_bucket", "le", "+Inf"),
		seriesOf(histogram, "__name__", "rw2_size_bytes_sum"),
		seriesOf(histogram, "__name__", "rw2_size_bytes_count"),
		seriesOf(gauge, "__name__", "rw2_heat_celsius"),
	}}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)
	httpReq, err := newPushRequest(strata.url("/api/v1/push"), "team-meta", raw)
	require.NoError(t, err)
	httpReq.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
	resp, err := http.DefaultClient.Do(httpReq)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "6", resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"))

	var got map[string][]map[string]string
	mustGetAPI(t, strata.url(""), "/prometheus/api/v1/metadata", "team-meta", url.Values{}, &got)
	require.Equal(t, map[string][]map[string]string{
		"rw2_jobs_total":   {{"type": "counter", "help": "Jobs run.", "unit": ""}},
		"rw2_size_bytes":   {{"type": "histogram", "help": "Sizes seen.", "unit": "bytes"}},
		"rw2_heat_celsius": {{"type": "gauge", "help": "Heat.", "unit": "celsius"}},
	}, got)
	got = nil
	mustGetAPI(t, strata.url(""), "/prometheus/api/v1/metadata", "team-other", url.Values{}, &got)
	require.Empty(t, got, "another tenant sees none of it")

	// The same request again, with one new sample: the ingester refuses the six it already holds at that
	// timestamp with other values, and the headers count only what was written.
	for i := range req.Timeseries {
		req.Timeseries[i].Samples = []writev2.Sample{{Value: 2, Timestamp: now}}
	}
	req.Timeseries[0].Samples = append(req.Timeseries[0].Samples, writev2.Sample{Value: 3, Timestamp: now + 1})
	raw, err = req.Marshal()
	require.NoError(t, err)
	httpReq, err = newPushRequest(strata.url("/api/v1/push"), "team-meta", raw)
	require.NoError(t, err)
	httpReq.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
	resp, err = http.DefaultClient.Do(httpReq)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"))
}
