package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

func (r *runningApp) do(t *testing.T, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, r.baseURL+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// ringInstances returns the IDs of the instances a ring page (path) shows now.
func (r *runningApp) ringInstances(t *testing.T, path string) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.baseURL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var ringStatus struct {
		Instances []struct{ ID string } `json:"instances"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ringStatus))
	ids := []string{}
	for _, inst := range ringStatus.Instances {
		ids = append(ids, inst.ID)
	}
	return ids
}

func TestApp_PrepareShutdownThenShutdownLeavesTheRing(t *testing.T) {
	r := startApp(t, newTestApp(t, t.TempDir(), "-ingester.ring.unregister-on-shutdown=false"))

	_, body := r.do(t, http.MethodGet, "/ingester/prepare-shutdown")
	require.Equal(t, "unset", body)
	code, _ := r.do(t, http.MethodPost, "/ingester/prepare-shutdown")
	require.Equal(t, http.StatusNoContent, code)
	_, body = r.do(t, http.MethodGet, "/ingester/prepare-shutdown")
	require.Equal(t, "set", body)
	code, _ = r.do(t, http.MethodDelete, "/ingester/prepare-shutdown")
	require.Equal(t, http.StatusNoContent, code)
	_, body = r.do(t, http.MethodGet, "/ingester/prepare-shutdown")
	require.Equal(t, "unset", body)
	code, _ = r.do(t, http.MethodPut, "/ingester/prepare-shutdown")
	require.Equal(t, http.StatusMethodNotAllowed, code)

	code, _ = r.do(t, http.MethodPost, "/ingester/prepare-shutdown")
	require.Equal(t, http.StatusNoContent, code)
	code, body = r.do(t, http.MethodPost, "/ingester/shutdown")
	require.Equal(t, http.StatusNoContent, code, body)

	code, body = r.do(t, http.MethodGet, "/ready")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "ingester")
	_, body = r.do(t, http.MethodGet, "/services")
	require.Contains(t, body, "ingester: Terminated")

	// The ring page shows the ring's view, which follows the KV store asynchronously: the ingester has
	// left the KV when shutdown returns, the view catches up a moment later.
	waitUntil(t, 30*time.Second, "after prepare-shutdown, the shut-down ingester leaves the ring", func() (bool, string) {
		instances := r.ringInstances(t, "/ingester/ring")
		return len(instances) == 0, fmt.Sprint("ring page instances ", instances)
	})

	code, _ = r.do(t, http.MethodPost, "/ingester/shutdown")
	require.Equal(t, http.StatusConflict, code, "a second shutdown has nothing to stop")
	require.NoError(t, r.stop(t), "the process still stops cleanly")
}

func TestApp_MultiStoreMirrorsTheRingToMemberlist(t *testing.T) {
	r := startApp(t, newTestApp(t, t.TempDir(),
		"-distributor.replication-factor=1",
		"-ingester.ring.store=multi",
		"-ingester.ring.multi.primary=inmemory",
		"-ingester.ring.multi.secondary=memberlist",
		"-ingester.ring.multi.mirror-enabled=true",
		"-memberlist.bind-addr=127.0.0.1",
		"-memberlist.bind-port=0",
	))
	// A mirror copy that fails is only logged, and the next write repairs it: wait for it.
	waitUntil(t, 30*time.Second, "the primary's ring (with ingester-1) is mirrored into memberlist", func() (bool, string) {
		req, err := http.NewRequest(http.MethodGet, r.baseURL+"/memberlist", nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		page := string(b)
		return strings.Contains(page, "ingester-ring") && strings.Contains(page, "ingester-1"), "/memberlist " + page
	})
}

func TestApp_FlushShipsBlocksToTheFilesystemBucket(t *testing.T) {
	dataDir := t.TempDir()
	r := startApp(t, newTestApp(t, dataDir))
	code, body := r.push(t, "tenant-1", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "flushed"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}},
	}}})
	require.Equal(t, http.StatusNoContent, code, body)

	code, body = r.do(t, http.MethodPost, "/ingester/flush?wait=true&tenant=tenant-1")
	require.Equal(t, http.StatusNoContent, code, body)
	metas, err := filepath.Glob(filepath.Join(dataDir, "bucket", "tenant-1", "*", "meta.json"))
	require.NoError(t, err)
	require.Len(t, metas, 1, "the default bucket is a directory under -data.dir")

	code, _ = r.do(t, http.MethodPost, "/ingester/flush?wait=true&tenant=nobody")
	require.Equal(t, http.StatusInternalServerError, code)
	code, _ = r.do(t, http.MethodPost, "/ingester/flush")
	require.Equal(t, http.StatusAccepted, code)
}

func TestApp_ServesProfiles(t *testing.T) {
	r := startApp(t, newTestApp(t, t.TempDir()))
	code, body := r.do(t, http.MethodGet, "/debug/pprof/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "goroutine")
	code, _ = r.do(t, http.MethodGet, "/debug/pprof/heap")
	require.Equal(t, http.StatusOK, code)
}

func TestApp_IngesterActionsRefuseEveryMethodButPOST(t *testing.T) {
	dataDir := t.TempDir()
	r := startApp(t, newTestApp(t, dataDir))
	code, body := r.push(t, "tenant-1", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "not_flushed"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}},
	}}})
	require.Equal(t, http.StatusNoContent, code, body)

	for _, path := range []string{"/ingester/shutdown", "/ingester/flush?wait=true&tenant=tenant-1", "/ingester/flush"} {
		for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
			req, err := http.NewRequest(method, r.baseURL+path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", method, path)
			require.Equal(t, http.MethodPost, resp.Header.Get("Allow"), "%s %s", method, path)
		}
	}

	// Nothing was done: the ingester still runs and its head was not shipped.
	code, _ = r.do(t, http.MethodGet, "/ready")
	require.Equal(t, http.StatusOK, code)
	_, body = r.do(t, http.MethodGet, "/services")
	require.Contains(t, body, "ingester: Running")
	metas, err := filepath.Glob(filepath.Join(dataDir, "bucket", "tenant-1", "*", "meta.json"))
	require.NoError(t, err)
	require.Empty(t, metas)
}
