package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/require"
)

// readProxy stands between Prometheus and Strata's remote read endpoint. It passes requests on as they
// come, or, with forceSamples set, rewrites their accepted response types to SAMPLES only (Prometheus
// asks for streamed chunks first and has no setting for it); it records what went through.
type readProxy struct {
	target       string
	forceSamples atomic.Bool

	mu           sync.Mutex
	tenants      []string
	contentTypes []string
	statuses     []int
}

func (p *readProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if p.forceSamples.Load() {
		if body, err = withAcceptedTypes(body, prompb.ReadRequest_SAMPLES); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, p.target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	p.mu.Lock()
	p.tenants = append(p.tenants, r.Header.Get("X-Scope-OrgID"))
	p.contentTypes = append(p.contentTypes, resp.Header.Get("Content-Type"))
	p.statuses = append(p.statuses, resp.StatusCode)
	p.mu.Unlock()
	for name, values := range resp.Header {
		w.Header()[name] = values
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// seen returns what went through since the last call, and forgets it.
func (p *readProxy) seen() (tenants, contentTypes []string, statuses []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tenants, contentTypes, statuses = p.tenants, p.contentTypes, p.statuses
	p.tenants, p.contentTypes, p.statuses = nil, nil, nil
	return tenants, contentTypes, statuses
}

func withAcceptedTypes(compressed []byte, types ...prompb.ReadRequest_ResponseType) ([]byte, error) {
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		return nil, err
	}
	var req prompb.ReadRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, err
	}
	req.AcceptedResponseTypes = types
	if raw, err = req.Marshal(); err != nil {
		return nil, err
	}
	return snappy.Encode(nil, raw), nil
}

// tenantWrite is a tenant's half hour of samples, every 15 s up to now: gauges, a counter per job, a
// native histogram, a metric both tenants have and one only this tenant has.
func tenantWrite(tenantID string, start, end time.Time, seed float64) *prompb.WriteRequest {
	series := map[string][]prompb.Label{
		"gauge-a":  {{Name: "__name__", Value: "test_gauge"}, {Name: "instance", Value: "a"}},
		"gauge-b":  {{Name: "__name__", Value: "test_gauge"}, {Name: "instance", Value: "b"}},
		"api":      {{Name: "__name__", Value: "test_requests_total"}, {Name: "job", Value: "api"}},
		"db":       {{Name: "__name__", Value: "test_requests_total"}, {Name: "job", Value: "db"}},
		"shared":   {{Name: "__name__", Value: "shared_metric"}, {Name: "owner", Value: tenantID}},
		"own":      {{Name: "__name__", Value: "only_" + strings.TrimPrefix(tenantID, "team-") + "_metric"}},
		"latency":  {{Name: "__name__", Value: "test_latency_seconds"}},
		"sawtooth": {{Name: "__name__", Value: "test_sawtooth"}},
	}
	req := &prompb.WriteRequest{}
	for _, name := range slices.Sorted(maps.Keys(series)) {
		ts := prompb.TimeSeries{Labels: series[name]}
		i := 0
		for at := start; !at.After(end); at = at.Add(15 * time.Second) {
			ms := at.UnixMilli()
			switch name {
			case "latency":
				ts.Histograms = append(ts.Histograms, prompb.FromIntHistogram(ms, tsdbutil.GenerateTestHistogram(int64(i))))
			case "api", "db":
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: ms, Value: seed * float64(i*(len(name)+1))})
			case "sawtooth":
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: ms, Value: float64(i%7) + seed})
			default:
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: ms, Value: seed + float64(len(name))})
			}
			i++
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	return req
}

// TestRemoteRead_Prometheus3ReadsATenantsData runs a current Prometheus with an empty TSDB whose only data
// is Strata's, read as tenant team-a, and asks both the same range queries: the answers must be equal,
// whether Strata answers with streamed chunks (what Prometheus asks for) or with samples, and team-b's
// data must not show.
func TestRemoteRead_Prometheus3ReadsATenantsData(t *testing.T) {
	strata := startStrata(t, t.TempDir())
	end := time.Now().Truncate(time.Second)
	start := end.Add(-30 * time.Minute)
	for tenantID, seed := range map[string]float64{"team-a": 1, "team-b": 1000} {
		code, body := push(t, strata.url("/api/v1/push"), tenantID, tenantWrite(tenantID, start, end, seed))
		require.Equal(t, http.StatusNoContent, code, body)
	}

	proxy := &readProxy{target: strata.url("/prometheus/api/v1/read")}
	proxyServer := httptest.NewServer(proxy)
	t.Cleanup(proxyServer.Close)
	prom := startPrometheus3(t, fmt.Sprintf(`
global:
  scrape_interval: 1h
remote_read:
  - url: %q
    name: strata
    read_recent: true
    remote_timeout: 30s
    headers:
      X-Scope-OrgID: team-a
`, proxyServer.URL))
	strataAPI := strata.url("/prometheus")

	rangeParams := func(query string) url.Values {
		return url.Values{"query": {query}, "start": {formatTime(start.Add(5 * time.Minute))}, "end": {formatTime(end)}, "step": {"30"}}
	}
	window := url.Values{"match[]": {`{__name__=~".+"}`}, "start": {formatTime(start)}, "end": {formatTime(end)}}
	queries := []string{
		"test_gauge",
		"shared_metric",
		`{__name__=~"only_.+"}`,
		"rate(test_requests_total[5m])",
		"sum by (job) (increase(test_requests_total[2m]))",
		"max_over_time(test_sawtooth[1m]) - min_over_time(test_sawtooth[1m])",
		"histogram_quantile(0.9, rate(test_latency_seconds[5m]))",
		"histogram_count(test_latency_seconds)",
		`count({__name__=~".+"})`,
		"test_gauge offset 10m",
	}
	for _, mode := range []struct {
		name        string
		samples     bool
		contentType string
	}{
		{name: "streamed chunks", contentType: "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"},
		{name: "samples", samples: true, contentType: "application/x-protobuf"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			proxy.forceSamples.Store(mode.samples)
			for _, q := range queries {
				requireSameAsPrometheus(t, prom, strataAPI, "team-a", "/api/v1/query_range", rangeParams(q), normaliseMatrix, 0)
			}
			// Prometheus' series API reads with the "series" hint.
			requireSameAsPrometheus(t, prom, strataAPI, "team-a", "/api/v1/series", window, normaliseSeries, 0)
			tenants, contentTypes, statuses := proxy.seen()
			require.NotEmpty(t, tenants, "Prometheus read nothing through Strata")
			for i := range tenants {
				require.Equal(t, "team-a", tenants[i], "the tenant header of Prometheus' remote_read config arrives")
				require.Equal(t, mode.contentType, contentTypes[i])
				require.Equal(t, http.StatusOK, statuses[i])
			}
		})
	}

	t.Run("another tenant's data does not show", func(t *testing.T) {
		var series []map[string]string
		mustGetAPI(t, prom, "/api/v1/series", "", window, &series)
		require.Len(t, series, 8)
		for _, s := range series {
			require.NotEqual(t, "team-b", s["owner"])
			require.NotEqual(t, "only_b_metric", s["__name__"])
		}

		var vector []vectorSample
		mustGetAPI(t, prom, "/api/v1/query", "", url.Values{"query": {"sum(test_gauge)"}, "time": {formatTime(end)}}, &queryResult{Result: &vector})
		require.Len(t, vector, 1)
		require.Equal(t, float64(2+len("gauge-a")+len("gauge-b")), vector[0].Value.float(t), "team-a's gauges, not team-b's")
	})

	t.Run("a direct read as team-b gets team-b's samples", func(t *testing.T) {
		req := &prompb.ReadRequest{
			Queries: []*prompb.Query{{
				StartTimestampMs: start.UnixMilli(), EndTimestampMs: end.UnixMilli(),
				Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_EQ, Name: "__name__", Value: "shared_metric"}},
			}, {
				StartTimestampMs: start.UnixMilli(), EndTimestampMs: end.UnixMilli(),
				Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_RE, Name: "__name__", Value: "only_.+"}},
			}},
			AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES},
		}
		resp, body := remoteRead(t, strata.url("/prometheus/api/v1/read"), "team-b", req)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.Equal(t, "application/x-protobuf", resp.Header.Get("Content-Type"))
		require.Equal(t, "snappy", resp.Header.Get("Content-Encoding"))
		raw, err := snappy.Decode(nil, body)
		require.NoError(t, err)
		var answer prompb.ReadResponse
		require.NoError(t, answer.Unmarshal(raw))
		require.Len(t, answer.Results, 2)

		points := int(end.Sub(start)/(15*time.Second)) + 1
		b := labels.NewScratchBuilder(0)
		for i, want := range []string{`{__name__="shared_metric", owner="team-b"}`, `{__name__="only_b_metric"}`} {
			require.Len(t, answer.Results[i].Timeseries, 1, "query %d", i)
			ts := answer.Results[i].Timeseries[0]
			require.Equal(t, want, ts.ToLabels(&b, nil).String())
			require.Len(t, ts.Samples, points)
			require.Equal(t, start.UnixMilli(), ts.Samples[0].Timestamp)
			require.Greater(t, ts.Samples[0].Value, 1000.0, "team-b's values")
		}
	})
}

// remoteRead sends req as Prometheus' remote read client does and returns the answer.
func remoteRead(t *testing.T, target, tenantID string, req *prompb.ReadRequest) (*http.Response, []byte) {
	t.Helper()
	raw, err := req.Marshal()
	require.NoError(t, err)
	httpReq, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	httpReq.Header.Set("Content-Encoding", "snappy")
	httpReq.Header.Set("Content-Type", "application/x-protobuf")
	httpReq.Header.Set("X-Prometheus-Remote-Read-Version", "0.1.0")
	httpReq.Header.Set("X-Scope-OrgID", tenantID)
	resp, err := http.DefaultClient.Do(httpReq)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// TestRemoteRead_FetchLimitsThroughTheFrontend reads more than the tenant's fetch limits allow, through
// the query-frontend to real ingesters: the read is refused with 400 and the limit's message, over both
// response types, and Prometheus passes that message on to whoever queries it.
func TestRemoteRead_FetchLimitsThroughTheFrontend(t *testing.T) {
	end := time.Now().Truncate(time.Second)
	start := end.Add(-30 * time.Minute)
	everything := &prompb.Query{
		StartTimestampMs: start.UnixMilli(), EndTimestampMs: end.UnixMilli(),
		Matchers: []*prompb.LabelMatcher{{Type: prompb.LabelMatcher_RE, Name: "__name__", Value: ".+"}},
	}
	for _, tc := range []struct {
		name, flag, limitID string
	}{
		{name: "series", flag: "-querier.max-fetched-series-per-query=3", limitID: "err-strata-max-fetched-series-per-query"},
		{name: "chunk bytes", flag: "-querier.max-fetched-chunk-bytes-per-query=300", limitID: "err-strata-max-fetched-chunk-bytes-per-query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			strata := startStrata(t, t.TempDir(), tc.flag)
			code, body := push(t, strata.url("/api/v1/push"), "team-a", tenantWrite("team-a", start, end, 1))
			require.Equal(t, http.StatusNoContent, code, body)
			for _, accepted := range [][]prompb.ReadRequest_ResponseType{
				{prompb.ReadRequest_SAMPLES},
				{prompb.ReadRequest_STREAMED_XOR_CHUNKS, prompb.ReadRequest_SAMPLES},
			} {
				resp, body := remoteRead(t, strata.url("/prometheus/api/v1/read"), "team-a", &prompb.ReadRequest{Queries: []*prompb.Query{everything}, AcceptedResponseTypes: accepted})
				require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%v: %s", accepted, body)
				require.Contains(t, string(body), tc.limitID, "%v", accepted)
			}

			prom := startPrometheus3(t, fmt.Sprintf(`
global:
  scrape_interval: 1h
remote_read:
  - url: %q
    read_recent: true
    headers:
      X-Scope-OrgID: team-a
`, strata.url("/prometheus/api/v1/read")))
			// Remote storage is secondary to Prometheus: its failure is a warning beside an empty result.
			var answer struct {
				Status   string   `json:"status"`
				Warnings []string `json:"warnings"`
			}
			getJSON(t, prom+"/api/v1/query?"+url.Values{"query": {`count({__name__=~".+"})`}, "time": {formatTime(end)}}.Encode(), &answer)
			require.Equal(t, "success", answer.Status)
			require.Len(t, answer.Warnings, 1)
			require.Contains(t, answer.Warnings[0], "400 Bad Request")
			require.Contains(t, answer.Warnings[0], tc.limitID, "Prometheus passes the limit's message on")
		})
	}
}

func getJSON(t *testing.T, target string, v any) {
	t.Helper()
	resp, err := http.Get(target)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(body, v), "%s", body)
}
