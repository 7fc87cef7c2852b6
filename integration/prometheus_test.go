package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// prometheusBinary is Debian's prometheus package (2.42), installed by .ci/run. It cannot send the
// X-Scope-OrgID header, so this test runs Strata with multitenancy off.
const prometheusBinary = "prometheus"

// TestPrometheus_RemoteWriteAnswersMatchPrometheus has an unmodified Prometheus scrape itself every second
// and remote-write to Strata, then asks both the same queries for the same timestamps.
func TestPrometheus_RemoteWriteAnswersMatchPrometheus(t *testing.T) {
	bin, err := exec.LookPath(prometheusBinary)
	require.NoError(t, err, "this test needs Debian's prometheus package: apt-get install prometheus")

	strata := startStrata(t, t.TempDir(), "-auth.multitenancy-enabled=false")
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dir := t.TempDir()
	config := writeFile(t, dir, "prometheus.yml", fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: [%q]
remote_write:
  - url: %q
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 50ms
      max_backoff: 500ms
    metadata_config:
      send_interval: 1s
`, promAddr, strata.url("/api/v1/push")))
	var promLog bytes.Buffer
	prom := exec.Command(bin,
		"--config.file="+config,
		"--storage.tsdb.path="+dir+"/data",
		"--web.listen-address="+promAddr,
	)
	prom.Stdout, prom.Stderr = &promLog, &promLog
	require.NoError(t, prom.Start())
	t.Cleanup(func() {
		_ = prom.Process.Signal(syscall.SIGTERM)
		_ = prom.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", promLog.String())
		}
	})
	promAPI := "http://" + promAddr
	strataAPI := strata.url("/prometheus")

	// Prometheus' remote write starts by replaying its WAL and may skip the very first scrapes, so the
	// compared windows must begin after the first sample Strata received. The longest window below reaches
	// 25 s back from the evaluation time (10 s range, 10 s subquery, 5 s deriv); 20 s of scrapes follow.
	var firstSample time.Time
	require.Eventually(t, func() bool {
		var m []matrixSeries
		code, resp := getAPI(t, strataAPI, "/api/v1/query", "", url.Values{"query": {"up[5m]"}})
		if code != http.StatusOK || json.Unmarshal(resp.Data, &queryResult{Result: &m}) != nil || len(m) != 1 || len(m[0].Values) == 0 {
			return false
		}
		firstSample = time.UnixMilli(m[0].Values[0].millis(t))
		return true
	}, 60*time.Second, 250*time.Millisecond, "Strata never received a sample of up")
	// Half a scrape interval off the samples: Prometheus 2.42 (this client) closes range windows on the
	// left and Prometheus 3, whose engine Strata runs, does not; with no sample on a window's edge both agree.
	evalAt := firstSample.Add(30*time.Second + 500*time.Millisecond)
	require.Eventually(t, func() bool {
		var v []vectorSample
		code, resp := getAPI(t, strataAPI, "/api/v1/query", "", url.Values{"query": {"timestamp(up)"}})
		if code != http.StatusOK || json.Unmarshal(resp.Data, &queryResult{Result: &v}) != nil || len(v) != 1 {
			return false
		}
		return v[0].Value.float(t) > float64(evalAt.Unix()+2)
	}, 90*time.Second, 250*time.Millisecond, "Strata is not keeping up with Prometheus' remote write")

	at := formatTime(evalAt)
	start := formatTime(evalAt.Add(-10 * time.Second))
	queries := []string{
		"up",
		"up[10s]",
		"prometheus_tsdb_head_series",
		"scrape_samples_scraped",
		"rate(prometheus_tsdb_head_samples_appended_total[10s])",
		"sum by (job, instance) (rate(prometheus_tsdb_head_samples_appended_total[10s]))",
		"sum by (quantile) (go_gc_duration_seconds)",
		"max_over_time(deriv(prometheus_tsdb_head_chunks[5s])[10s:2s])",
		"count(prometheus_tsdb_head_chunks_created_total) by (job)",
	}
	for _, q := range queries {
		t.Run("query "+q, func(t *testing.T) {
			params := url.Values{"query": {q}, "time": {at}}
			requireSameAnswer(t, promAPI, strataAPI, "/api/v1/query", params, normaliseVector)
		})
		if strings.HasSuffix(q, "]") {
			continue // a range vector has no range-query form
		}
		t.Run("query_range "+q, func(t *testing.T) {
			params := url.Values{"query": {q}, "start": {start}, "end": {at}, "step": {"1"}}
			requireSameAnswer(t, promAPI, strataAPI, "/api/v1/query_range", params, normaliseMatrix)
		})
	}

	window := url.Values{"start": {start}, "end": {at}}
	withWindow := func(extra url.Values) url.Values {
		out := url.Values{}
		for k, v := range window {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	// Series that exist from the first scrape on, so both sides hold the same set at evalAt.
	stable := []string{"up", `{__name__=~"prometheus_tsdb_head_.*"}`, `{__name__=~"go_gc_duration_seconds.*"}`}
	t.Run("series", func(t *testing.T) {
		requireSameAnswer(t, promAPI, strataAPI, "/api/v1/series", withWindow(url.Values{"match[]": stable}), normaliseSeries)
	})
	t.Run("labels", func(t *testing.T) {
		requireSameAnswer(t, promAPI, strataAPI, "/api/v1/labels", withWindow(url.Values{"match[]": stable}), normaliseStrings)
	})
	t.Run("label values", func(t *testing.T) {
		requireSameAnswer(t, promAPI, strataAPI, "/api/v1/label/__name__/values", withWindow(url.Values{"match[]": stable}), normaliseStrings)
	})
	for _, metric := range []string{"prometheus_tsdb_head_series", "prometheus_http_requests_total", "prometheus_http_request_duration_seconds", "go_gc_duration_seconds"} {
		t.Run("metadata "+metric, func(t *testing.T) {
			require.Eventually(t, func() bool {
				_, resp := getAPI(t, strataAPI, "/api/v1/metadata", "", url.Values{"metric": {metric}})
				return resp.Status == "success" && string(resp.Data) != "{}"
			}, 30*time.Second, 100*time.Millisecond, "metadata never arrived")
			requireSameAnswer(t, promAPI, strataAPI, "/api/v1/metadata", url.Values{"metric": {metric}}, normaliseJSON)
		})
	}
}

// requireSameAnswer asks both servers and compares the normalised data.
func requireSameAnswer(t *testing.T, promAPI, strataAPI, path string, params url.Values, normalise func(*testing.T, json.RawMessage) string) {
	t.Helper()
	promCode, promResp := getAPI(t, promAPI, path, "", params)
	require.Equal(t, http.StatusOK, promCode, "prometheus: %s", promResp.Error)
	strataCode, strataResp := getAPI(t, strataAPI, path, "", params)
	require.Equal(t, http.StatusOK, strataCode, "strata: %s", strataResp.Error)
	want := normalise(t, promResp.Data)
	require.NotEqual(t, "", want, "Prometheus returned nothing for %s %v; the comparison would prove nothing", path, params)
	require.Equal(t, want, normalise(t, strataResp.Data), "%s %v", path, params)
}

func labelsKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, m[k])
	}
	return b.String()
}

func normaliseVector(t *testing.T, data json.RawMessage) string {
	var r queryResult
	require.NoError(t, json.Unmarshal(data, &r))
	if r.ResultType == "matrix" {
		return normaliseMatrix(t, data)
	}
	var v []vectorSample
	require.NoError(t, json.Unmarshal(data, &queryResult{Result: &v}))
	lines := make([]string, 0, len(v))
	for _, s := range v {
		lines = append(lines, fmt.Sprintf("%s %d %s", labelsKey(s.Metric), s.Value.millis(t), s.Value[1]))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func normaliseMatrix(t *testing.T, data json.RawMessage) string {
	var m []matrixSeries
	require.NoError(t, json.Unmarshal(data, &queryResult{Result: &m}))
	lines := make([]string, 0, len(m))
	for _, s := range m {
		var b strings.Builder
		b.WriteString(labelsKey(s.Metric))
		for _, p := range s.Values {
			b.WriteString(" " + strconv.FormatInt(p.millis(t), 10) + ":" + p[1].(string))
		}
		lines = append(lines, b.String())
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func normaliseSeries(t *testing.T, data json.RawMessage) string {
	var series []map[string]string
	require.NoError(t, json.Unmarshal(data, &series))
	lines := make([]string, 0, len(series))
	for _, s := range series {
		lines = append(lines, labelsKey(s))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func normaliseStrings(t *testing.T, data json.RawMessage) string {
	var s []string
	require.NoError(t, json.Unmarshal(data, &s))
	return strings.Join(s, "\n")
}

func normaliseJSON(t *testing.T, data json.RawMessage) string {
	var v any
	require.NoError(t, json.Unmarshal(data, &v))
	out, err := json.Marshal(v)
	require.NoError(t, err)
	if string(out) == "{}" || string(out) == "[]" {
		return ""
	}
	return string(out)
}
