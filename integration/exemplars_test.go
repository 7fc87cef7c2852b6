package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// exemplarSeries is one series of /api/v1/query_exemplars' answer.
type exemplarSeries struct {
	SeriesLabels map[string]string `json:"seriesLabels"`
	Exemplars    []struct {
		Labels    map[string]string `json:"labels"`
		Value     string            `json:"value"`
		Timestamp float64           `json:"timestamp"`
	} `json:"exemplars"`
}

// Exemplars pushed with remote write 1.0 to a single-process Strata come back from query_exemplars,
// through the query-frontend, in Prometheus' shape; another tenant sees none of them.
func TestExemplars_PushedExemplarsAreQueryable(t *testing.T) {
	p := startStrata(t, t.TempDir(), "-ingester.max-global-exemplars-per-user=100000")
	now := time.Now().Truncate(time.Second)
	req := &prompb.WriteRequest{}
	for _, job := range []string{"api", "db"} {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "job", Value: job}}}
		for i := range 10 {
			at := now.Add(time.Duration(i-10) * time.Second).UnixMilli()
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at, Value: float64(i)})
			ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{
				Labels: []prompb.Label{{Name: "trace_id", Value: fmt.Sprintf("%s-%d", job, i)}}, Value: float64(i) + 0.5, Timestamp: at,
			})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	// A series without exemplars is no part of the answer.
	req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "job", Value: "plain"}},
		Samples: []prompb.Sample{{Timestamp: now.UnixMilli(), Value: 1}},
	})
	code, body := push(t, p.url("/api/v1/push"), "exemplars-a", req)
	require.Equal(t, http.StatusNoContent, code, body)

	params := url.Values{
		"query": {`sum(rate(http_requests_total{job=~"api|plain"}[5m])) + sum(http_requests_total{job="db"})`},
		"start": {formatTime(now.Add(-time.Minute))}, "end": {formatTime(now)},
	}
	var got []exemplarSeries
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/query_exemplars", "exemplars-a", params, &got)
	require.Len(t, got, 2)
	for k, job := range []string{"api", "db"} {
		require.Equal(t, map[string]string{"__name__": "http_requests_total", "job": job}, got[k].SeriesLabels)
		require.Len(t, got[k].Exemplars, 10)
		for i, e := range got[k].Exemplars {
			require.Equal(t, map[string]string{"trace_id": fmt.Sprintf("%s-%d", job, i)}, e.Labels)
			require.Equal(t, fmt.Sprintf("%g", float64(i)+0.5), e.Value)
			require.Equal(t, float64(now.Add(time.Duration(i-10)*time.Second).UnixMilli())/1000, e.Timestamp)
		}
	}
	// The range cuts exemplars: the last three seconds hold the newest three of each series.
	params.Set("start", formatTime(now.Add(-3*time.Second)))
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/query_exemplars", "exemplars-a", params, &got)
	require.Len(t, got, 2)
	require.Len(t, got[0].Exemplars, 3)

	// POST answers as GET; without a tenant (multitenancy is on) there is no answer.
	for _, tenantID := range []string{"exemplars-a", ""} {
		httpReq, err := http.NewRequest(http.MethodPost, p.url("/prometheus/api/v1/query_exemplars"), strings.NewReader(params.Encode()))
		require.NoError(t, err)
		httpReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tenantID != "" {
			httpReq.Header.Set("X-Scope-OrgID", tenantID)
		}
		resp, err := http.DefaultClient.Do(httpReq)
		require.NoError(t, err)
		var envelope struct {
			Data []exemplarSeries `json:"data"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&envelope))
		require.NoError(t, resp.Body.Close())
		if tenantID == "" {
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			continue
		}
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, got, envelope.Data)
	}
	// Another tenant, and a selector of no series, answer an empty list.
	for _, tc := range []struct{ tenant, query string }{
		{"exemplars-b", "http_requests_total"},
		{"exemplars-a", `http_requests_total{job="none"}`},
		{"exemplars-a", "1 + 1"},
	} {
		var raw json.RawMessage
		mustGetAPI(t, p.url("/prometheus"), "/api/v1/query_exemplars", tc.tenant, url.Values{"query": {tc.query}}, &raw)
		require.JSONEq(t, `[]`, string(raw), "%+v", tc)
	}

	// Wrong method and a query that does not parse are refused with reasons.
	httpReq, err := http.NewRequest(http.MethodDelete, p.url("/prometheus/api/v1/query_exemplars?query=up"), nil)
	require.NoError(t, err)
	httpReq.Header.Set("X-Scope-OrgID", "exemplars-a")
	resp, err := http.DefaultClient.Do(httpReq)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	code, apiResp := getAPI(t, p.url("/prometheus"), "/api/v1/query_exemplars", "exemplars-a", url.Values{"query": {"up{"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "bad_data", apiResp.ErrorType)

	// Exemplars are in the WAL: a restarted (killed) process answers them again.
	p.kill()
	p.restart()
	var again []exemplarSeries
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/query_exemplars", "exemplars-a", params, &again)
	require.Equal(t, got, again)
}

// Exemplars outlive the ingester that received them: a flushed block carries them, and with the
// ingester's disk gone a restarted Strata answers them from the store-gateway, the same as before. A
// tenant's max_fetched_exemplars_per_query refuses a request over it with 422.
func TestExemplars_KeptInBlocks(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	runtimeFile := writeFile(t, dir, "runtime.yaml", "overrides:\n  ex-small:\n    max_fetched_exemplars_per_query: 50\n")
	args := []string{
		"-ingester.max-global-exemplars-per-user=100000",
		"-runtime-config.file=" + runtimeFile,
		"-blocks-storage.filesystem.dir=" + filepath.Join(dir, "bucket"),
		"-querier.query-store-after=0s",
		"-querier.bucket-index-ttl=1s",
		"-blocks-storage.bucket-store.sync-interval=1s",
		"-compactor.compaction-interval=2s",
	}
	p := startStrata(t, dataDir, args...)
	base := time.Now().Add(-100 * time.Minute).Truncate(time.Minute)
	req := &prompb.WriteRequest{}
	for _, job := range []string{"api", "db"} {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "job", Value: job}}}
		for m := range 60 {
			at := base.Add(time.Duration(m) * time.Minute).UnixMilli()
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at, Value: float64(m)})
			ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: fmt.Sprintf("%s-%d", job, m)}}, Value: float64(m), Timestamp: at})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	for _, tenantID := range []string{"ex-blocks", "ex-small"} {
		code, body := push(t, p.url("/api/v1/push"), tenantID, req)
		require.Equal(t, http.StatusNoContent, code, body)
	}
	params := url.Values{"query": {"http_requests_total"}, "start": {formatTime(base)}, "end": {formatTime(base.Add(time.Hour))}}
	var before []exemplarSeries
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/query_exemplars", "ex-blocks", params, &before)
	require.Len(t, before, 2)
	require.Len(t, before[0].Exemplars, 60)
	require.Len(t, before[1].Exemplars, 60)

	flush(t, p)
	require.Eventually(t, func() bool { return storeGatewayBlocks(t, p, "ex-blocks") > 0 }, 30*time.Second, 100*time.Millisecond)
	// The ingester's copy and the block's are one answer.
	var both []exemplarSeries
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/query_exemplars", "ex-blocks", params, &both)
	require.Equal(t, before, both)

	p.kill()
	require.NoError(t, os.RemoveAll(dataDir))
	p = startStrata(t, dataDir, args...)
	require.Eventually(t, func() bool {
		var after []exemplarSeries
		mustGetAPI(t, p.url("/prometheus"), "/api/v1/query_exemplars", "ex-blocks", params, &after)
		return reflect.DeepEqual(before, after)
	}, 30*time.Second, 200*time.Millisecond, "the blocks answer what the ingester did")
	// A narrower range and selector read the blocks too.
	var narrow []exemplarSeries
	mustGetAPI(t, p.url("/prometheus"), "/api/v1/query_exemplars", "ex-blocks", url.Values{
		"query": {`http_requests_total{job="db"}`}, "start": {formatTime(base.Add(10 * time.Minute))}, "end": {formatTime(base.Add(19 * time.Minute))},
	}, &narrow)
	require.Len(t, narrow, 1)
	require.Len(t, narrow[0].Exemplars, 10)
	require.Equal(t, "db-10", narrow[0].Exemplars[0].Labels["trace_id"])

	// 120 exemplars are over ex-small's 50.
	require.Eventually(t, func() bool { return storeGatewayBlocks(t, p, "ex-small") > 0 }, 30*time.Second, 100*time.Millisecond)
	code, apiResp := getAPI(t, p.url("/prometheus"), "/api/v1/query_exemplars", "ex-small", params)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Contains(t, apiResp.Error, "max_fetched_exemplars_per_query")
}

// In a cluster of three ingesters with RF=3, every ingester holds each exemplar: the querier answers each
// once, and still answers all of them with one ingester killed.
func TestExemplars_ReplicasAnswerEachExemplarOnce(t *testing.T) {
	c := startCluster(t, clusterOptions{ingesters: 3, args: []string{"-ingester.max-global-exemplars-per-user=100000"}})
	now := time.Now().Truncate(time.Second)
	req := &prompb.WriteRequest{}
	for s := range 20 {
		ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "rpc_total"}, {Name: "s", Value: fmt.Sprintf("%02d", s)}}}
		for i := range 5 {
			at := now.Add(time.Duration(i-5) * time.Second).UnixMilli()
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: at, Value: float64(i)})
			ts.Exemplars = append(ts.Exemplars, prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: fmt.Sprintf("%d-%d", s, i)}}, Value: float64(i), Timestamp: at})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	code, body := push(t, c.distributor.url("/api/v1/push"), "replicas", req)
	require.Equal(t, http.StatusNoContent, code, body)

	check := func() {
		t.Helper()
		var got []exemplarSeries
		mustGetAPI(t, c.querier.url("/prometheus"), "/api/v1/query_exemplars", "replicas", url.Values{"query": {"rpc_total"}, "start": {formatTime(now.Add(-time.Minute))}}, &got)
		require.Len(t, got, 20)
		for s, series := range got {
			require.Equal(t, fmt.Sprintf("%02d", s), series.SeriesLabels["s"], "series in label order")
			require.Len(t, series.Exemplars, 5, "each exemplar once")
			for i, e := range series.Exemplars {
				require.Equal(t, fmt.Sprintf("%d-%d", s, i), e.Labels["trace_id"], "oldest first")
			}
		}
	}
	check()
	c.ingesters[1].kill()
	check()
}
