package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// runningApp is an App with -target=all serving on random ports.
type runningApp struct {
	app     *App
	baseURL string
	cancel  context.CancelFunc
	done    chan error
}

func newTestApp(t *testing.T, dataDir string, extraArgs ...string) *App {
	t.Helper()
	cfg, flags, err := LoadConfig(append([]string{
		"-target=all",
		"-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port=0",
		"-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port=0",
		"-ingester.ring.instance-addr=127.0.0.1",
		"-ingester.ring.instance-id=ingester-1",
		"-data.dir=" + dataDir,
	}, extraArgs...), io.Discard)
	require.NoError(t, err)
	a, err := New(cfg, flags, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return a
}

func startApp(t *testing.T, a *App) *runningApp {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningApp{app: a, baseURL: "http://" + a.server.httpListener.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		// Tests that expect an error from Run check it with stop; here it is only worth a log line.
		if err := <-r.done; err != nil {
			t.Logf("Run returned: %v", err)
		}
	})
	r.waitReady(t)
	return r
}

func (r *runningApp) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(r.baseURL + "/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		}
		require.True(t, time.Now().Before(deadline), "not ready after 30s (last error %v)", err)
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for a condition
	}
}

// waitUntil polls cond until it reports done, failing the test after timeout with what and the last
// state cond saw. State that another goroutine updates (the ring's view of the KV store, a mirrored KV) is
// waited for, never read once right after the action that changes it. cond runs on the test's goroutine,
// so it may use require.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (done bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, last := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			require.FailNowf(t, "timed out", "%s: not within %s; last seen: %s", what, timeout, last)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for a condition
	}
}

// stop cancels the app's context and returns what Run returned.
func (r *runningApp) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of its context being cancelled")
		return nil
	}
}

func (r *runningApp) get(t *testing.T, path string, header http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.baseURL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body), resp.Header
}

func (r *runningApp) push(t *testing.T, tenantID string, req *prompb.WriteRequest) (int, string) {
	t.Helper()
	data, err := req.Marshal()
	require.NoError(t, err)
	httpReq, err := http.NewRequest(http.MethodPost, r.baseURL+"/api/v1/push", bytes.NewReader(snappy.Encode(nil, data)))
	require.NoError(t, err)
	httpReq.Header.Set("Content-Encoding", "snappy")
	httpReq.Header.Set("Content-Type", "application/x-protobuf")
	httpReq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	httpReq.Header.Set("X-Scope-OrgID", tenantID)
	resp, err := http.DefaultClient.Do(httpReq)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// query runs an instant query at ts for tenantID and returns the result's value strings by instance label.
func (r *runningApp) query(t *testing.T, tenantID, q string, ts time.Time) []string {
	t.Helper()
	params := url.Values{"query": {q}, "time": {ts.Format(time.RFC3339Nano)}}
	status, body, _ := r.get(t, "/prometheus/api/v1/query?"+params.Encode(), http.Header{"X-Scope-Orgid": {tenantID}})
	require.Equal(t, http.StatusOK, status, body)
	var resp struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &resp), body)
	require.Equal(t, "success", resp.Status)
	require.Equal(t, "vector", resp.Data.ResultType)
	values := []string{}
	for _, s := range resp.Data.Result {
		values = append(values, s.Metric["instance"]+"="+s.Value[1].(string))
	}
	return values
}

func TestApp_ServesWritesQueriesAndStatusPages(t *testing.T) {
	dataDir := t.TempDir()
	a := newTestApp(t, dataDir)

	rec := httptest.NewRecorder()
	a.serveReady(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, "not ready before Run")

	r := startApp(t, a)

	t.Run("services are running", func(t *testing.T) {
		status, body, _ := r.get(t, "/services", nil)
		require.Equal(t, http.StatusOK, status)
		// Every module of the target, also those with nothing to run (distributor and querier only
		// register handlers; memberlist-kv is unused with the in-process ring).
		modules := startOrder([]string{TargetAll})
		for _, module := range []string{moduleServer, moduleMemberlistKV, moduleRingKV, moduleRing, moduleIngesterClient,
			TargetIngester, TargetDistributor, TargetQuerier, TargetCompactor, TargetStoreGateway, TargetAll} {
			require.Contains(t, modules, module)
		}
		var want strings.Builder
		for _, module := range modules {
			want.WriteString(module + ": Running\n")
		}
		require.Equal(t, want.String(), body, "every module, in start order")

		status, body, header := r.get(t, "/services", http.Header{"Accept": {"application/json"}})
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "application/json", header.Get("Content-Type"))
		var list []struct {
			Module string `json:"module"`
			State  string `json:"state"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &list))
		require.Len(t, list, len(modules))
		for _, e := range list {
			require.Equal(t, "Running", e.State, e.Module)
		}
	})

	t.Run("config is YAML of the effective flags", func(t *testing.T) {
		status, body, _ := r.get(t, "/config", nil)
		require.Equal(t, http.StatusOK, status)
		var doc struct {
			Target string `yaml:"target"`
			Server struct {
				HTTPListenPort int `yaml:"http_listen_port"`
			} `yaml:"server"`
			Data struct {
				Dir string `yaml:"dir"`
			} `yaml:"data"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(body), &doc))
		require.Equal(t, "all", doc.Target)
		require.Equal(t, 0, doc.Server.HTTPListenPort)
		require.Equal(t, dataDir, doc.Data.Dir)
	})

	t.Run("metrics", func(t *testing.T) {
		status, body, _ := r.get(t, "/metrics", nil)
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, "strata_build_info{")
		require.Contains(t, body, "go_goroutines")
	})

	t.Run("index links the status pages", func(t *testing.T) {
		status, body, header := r.get(t, "/", nil)
		require.Equal(t, http.StatusOK, status)
		require.True(t, strings.HasPrefix(header.Get("Content-Type"), "text/html"))
		for _, path := range []string{"/ready", "/metrics", "/services", "/config", "/ingester/ring", "/prometheus/api/v1/status/buildinfo"} {
			require.Contains(t, body, `href="`+path+`"`)
		}
		status, _, _ = r.get(t, "/no-such-page", nil)
		require.Equal(t, http.StatusNotFound, status)
	})

	now := time.Now().Truncate(time.Millisecond)
	t.Run("remote write then query", func(t *testing.T) {
		status, body := r.push(t, "tenant-1", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{
				Labels:  []prompb.Label{{Name: "__name__", Value: "test_metric"}, {Name: "instance", Value: "a"}},
				Samples: []prompb.Sample{{Timestamp: now.Add(-time.Second).UnixMilli(), Value: 41}, {Timestamp: now.UnixMilli(), Value: 42}},
			},
			{
				Labels:  []prompb.Label{{Name: "__name__", Value: "test_metric"}, {Name: "instance", Value: "b"}},
				Samples: []prompb.Sample{{Timestamp: now.UnixMilli(), Value: 7}},
			},
		}})
		require.Less(t, status, 300, body)

		require.Equal(t, []string{"a=42", "b=7"}, r.query(t, "tenant-1", "test_metric", now))
		require.Equal(t, []string{"a=2"}, r.query(t, "tenant-1", `count_over_time(test_metric{instance="a"}[1m])`, now))
		require.Equal(t, []string{}, r.query(t, "tenant-2", "test_metric", now), "another tenant sees nothing")

	})

	t.Run("tenant errors: JSON on the Prometheus API, plain text on push", func(t *testing.T) {
		status, body, header := r.get(t, "/prometheus/api/v1/query?query=test_metric", nil)
		require.Equal(t, http.StatusUnauthorized, status, body)
		require.Equal(t, "application/json", header.Get("Content-Type"))
		require.JSONEq(t, `{"status":"error","errorType":"bad_data","error":"no tenant ID: set the X-Scope-OrgID header"}`, body)

		status, body, header = r.get(t, "/prometheus/api/v1/labels", http.Header{"X-Scope-Orgid": {".."}})
		require.Equal(t, http.StatusBadRequest, status, body)
		require.Equal(t, "application/json", header.Get("Content-Type"))
		require.Contains(t, body, `"errorType":"bad_data"`)

		req, err := http.NewRequest(http.MethodPost, r.baseURL+"/api/v1/push", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))
		require.Equal(t, "no tenant ID: set the X-Scope-OrgID header\n", string(b))
	})

	require.NoError(t, r.stop(t), "Run returns nil when its context is cancelled")
	a.stateMtx.Lock()
	for name, s := range a.states {
		require.Equal(t, StateTerminated, s, name)
	}
	a.stateMtx.Unlock()
	require.DirExists(t, filepath.Join(dataDir, "tsdb", "tenant-1", "wal"))
	require.NoFileExists(t, filepath.Join(dataDir, "tsdb", "tenant-1", "lock"), "closing a TSDB releases and removes its lock")

	// The ingester closed its TSDB cleanly: a new process on the same directory opens it (a TSDB still
	// open would hold its lock) and replays the WAL.
	r2 := startApp(t, newTestApp(t, dataDir))
	require.Equal(t, []string{"a=42", "b=7"}, r2.query(t, "tenant-1", "test_metric", now))
	require.NoError(t, r2.stop(t))
}
