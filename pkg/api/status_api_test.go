package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Strata shows neither a Prometheus configuration nor its own (which holds credentials) to tenants: the
// answers are empty, in Prometheus' shapes.
func TestStatusConfigAndFlags_AreEmptyInPrometheusShape(t *testing.T) {
	a := newTestAPI(t, testEngineConfig(), nil)
	for path, want := range map[string]string{
		"/status/config": `{"yaml":""}`,
		"/status/flags":  `{}`,
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			status, resp := a.call(t, method, path, nil)
			require.Equal(t, http.StatusOK, status, resp.Error)
			require.Equal(t, "success", resp.Status)
			require.JSONEq(t, want, string(resp.Data), path)
		}
		status, resp := a.call(t, http.MethodDelete, path, nil)
		require.Equal(t, http.StatusMethodNotAllowed, status)
		require.Equal(t, "bad_data", resp.ErrorType)
	}
}
