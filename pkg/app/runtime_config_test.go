package app

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

func TestLoadConfig_LimitsSectionUsesTheOverrideKeys(t *testing.T) {
	file := writeConfigFile(t, `
limits:
  max_label_names_per_series: 12
  max_query_lookback: 30d
`)
	cfg, flags, err := LoadConfig([]string{"-config.file", file}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 12, cfg.Limits.MaxLabelNamesPerSeries)
	require.Equal(t, model.Duration(30*24*time.Hour), cfg.Limits.MaxQueryLookback)

	// /config shows them where the file takes them, so its output loads back.
	out, err := effectiveConfig(flags)
	require.NoError(t, err)
	require.Contains(t, string(out), "limits:\n")
	require.Contains(t, string(out), "max_label_names_per_series: 12")

	_, _, err = LoadConfig([]string{"-config.file", writeConfigFile(t, "limits:\n  max_label_names: 3\n")}, io.Discard)
	require.ErrorContains(t, err, `unknown configuration key "limits.max_label_names"`)
}

func TestParseRuntimeConfig(t *testing.T) {
	var defaults = newTestLimits(t)
	parse := parseRuntimeConfig(defaults)

	rc, err := parse([]byte("overrides:\n  team-a:\n    max_label_names_per_series: 5\n  team-b:\n"))
	require.NoError(t, err)
	require.Equal(t, 5, rc.Overrides["team-a"].MaxLabelNamesPerSeries)
	require.Equal(t, defaults.MaxLabelValueLength, rc.Overrides["team-a"].MaxLabelValueLength, "what a tenant leaves out is the default")
	require.Equal(t, defaults, *rc.Overrides["team-b"])

	rc, err = parse(nil)
	require.NoError(t, err, "an empty file is no overrides")
	require.Empty(t, rc.Overrides)

	for name, content := range map[string]string{
		"unknown limit":          "overrides:\n  a:\n    max_labels: 5\n",
		"unknown top-level key":  "overide:\n  a: {}\n",
		"invalid value":          "overrides:\n  a:\n    max_label_names_per_series: 0\n",
		"not a number":           "overrides:\n  a:\n    max_label_names_per_series: five\n",
		"invalid tenant ID":      "overrides:\n  \"../x\":\n    max_label_names_per_series: 5\n",
		"not yaml":               "overrides: [\n",
		"limits are not a block": "overrides:\n  a: 5\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse([]byte(content))
			require.Error(t, err)
		})
	}
}

// TestRuntimeConfig_OverridesChangeLive lowers a tenant's limit in the runtime file of a running Strata,
// sees it take effect within a reload period without a restart, survives a broken file with the previous
// limits, and restores service by raising it again.
func TestRuntimeConfig_OverridesChangeLive(t *testing.T) {
	dir := t.TempDir()
	rcFile := filepath.Join(dir, "runtime.yaml")
	writeRuntime := func(content string) {
		t.Helper()
		// Written aside and renamed, as config management does, so a reload never sees half a file.
		tmp := rcFile + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
		require.NoError(t, os.Rename(tmp, rcFile))
	}
	writeRuntime("overrides: {}\n")
	r := startApp(t, newTestApp(t, filepath.Join(dir, "data"), "-runtime-config.file="+rcFile, "-runtime-config.reload-period=100ms"))

	// Four labels: accepted under the default limit of 30.
	push := func(tenantID string) (int, string) {
		t.Helper()
		return r.pushSeries(t, tenantID, "__name__", "up", "a", "1", "b", "2", "c", "3")
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			require.True(t, time.Now().Before(deadline), "not within 10s: %s", what)
			time.Sleep(20 * time.Millisecond) // polling interval
		}
	}
	code, body := push("team-a")
	require.Equal(t, http.StatusNoContent, code, body)

	writeRuntime("overrides:\n  team-a:\n    max_label_names_per_series: 3\n")
	eventually("team-a's lowered limit applies", func() bool { code, _ := push("team-a"); return code == http.StatusBadRequest })
	code, body = push("team-a")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "err-strata-max-label-names-per-series")
	require.Contains(t, body, "limit is 3")
	code, body = push("team-b")
	require.Equal(t, http.StatusNoContent, code, "other tenants keep the defaults: %s", body)

	require.Equal(t, 3, r.userLimits(t, "team-a")["max_label_names_per_series"])
	require.Equal(t, 30, r.userLimits(t, "team-b")["max_label_names_per_series"])
	diff := r.getOK(t, "/runtime_config?mode=diff")
	require.Equal(t, "overrides:\n    team-a:\n        max_label_names_per_series: 3\n", diff)
	require.Contains(t, r.getOK(t, "/metrics"), `strata_limits_overrides{limit_name="max_label_names_per_series",user="team-a"} 3`)

	writeRuntime("overrides:\n  team-a:\n    max_label_names_per_series: [\n")
	eventually("the broken file is reported", func() bool {
		return strings.Contains(r.getOK(t, "/metrics"), "strata_runtime_config_last_reload_successful 0")
	})
	code, _ = push("team-a")
	require.Equal(t, http.StatusBadRequest, code, "a broken file keeps the previous limits")

	writeRuntime("overrides:\n  team-a:\n    max_label_names_per_series: 10\n")
	eventually("team-a's raised limit applies", func() bool { code, _ := push("team-a"); return code == http.StatusNoContent })
	require.Contains(t, r.getOK(t, "/metrics"), "strata_runtime_config_last_reload_successful 1")
}

func TestRuntimeConfig_BrokenFileAtStartIsAnError(t *testing.T) {
	rcFile := filepath.Join(t.TempDir(), "runtime.yaml")
	require.NoError(t, os.WriteFile(rcFile, []byte("overrides:\n  a:\n    nope: 1\n"), 0o600))
	a := newTestApp(t, t.TempDir(), "-runtime-config.file="+rcFile)
	err := a.Run(t.Context())
	require.ErrorContains(t, err, `unknown limit "nope"`)
}

func (r *runningApp) getOK(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(r.baseURL + path)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	return string(body)
}

func (r *runningApp) userLimits(t *testing.T, tenantID string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.baseURL+"/api/v1/user_limits", nil)
	require.NoError(t, err)
	req.Header.Set("X-Scope-OrgID", tenantID)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out map[string]any
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	require.NoError(t, dec.Decode(&out))
	for k, v := range out {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				out[k] = int(i)
			}
		}
	}
	return out
}

// pushSeries pushes one sample of the series given as name/value pairs, and returns the status and body.
func (r *runningApp) pushSeries(t *testing.T, tenantID string, nameValues ...string) (int, string) {
	t.Helper()
	var ls []prompb.Label
	for i := 0; i+1 < len(nameValues); i += 2 {
		ls = append(ls, prompb.Label{Name: nameValues[i], Value: nameValues[i+1]})
	}
	return r.push(t, tenantID, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: ls, Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}}}}})
}

func newTestLimits(*testing.T) validation.Limits { return validation.DefaultLimits() }

// The runtime configuration pages only read: other methods, unknown modes and requests without a tenant
// get a clear 4xx.
func TestRuntimeConfig_PagesRefuseWhatTheyDoNotServe(t *testing.T) {
	r := startApp(t, newTestApp(t, t.TempDir()))
	do := func(method, path, tenantID string) int {
		t.Helper()
		req, err := http.NewRequest(method, r.baseURL+path, strings.NewReader("overrides: {}"))
		require.NoError(t, err)
		if tenantID != "" {
			req.Header.Set("X-Scope-OrgID", tenantID)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, do(http.MethodGet, "/runtime_config", ""))
	require.Equal(t, http.StatusMethodNotAllowed, do(http.MethodPost, "/runtime_config", ""), "it cannot be written over HTTP")
	require.Equal(t, http.StatusMethodNotAllowed, do(http.MethodDelete, "/runtime_config", ""))
	require.Equal(t, http.StatusBadRequest, do(http.MethodGet, "/runtime_config?mode=everything", ""))
	require.Equal(t, http.StatusOK, do(http.MethodGet, "/api/v1/user_limits", "team-a"))
	require.Equal(t, http.StatusUnauthorized, do(http.MethodGet, "/api/v1/user_limits", ""))
	require.Equal(t, http.StatusBadRequest, do(http.MethodGet, "/api/v1/user_limits", "../etc"))
	require.Equal(t, http.StatusMethodNotAllowed, do(http.MethodPost, "/api/v1/user_limits", "team-a"))
}
