package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

func TestTenantMiddleware_AnswersTenantErrorsInThePrometheusEnvelope(t *testing.T) {
	tests := []struct {
		name         string
		multitenancy bool
		header       []string
		wantStatus   int
		wantError    string // a substring of the envelope's error; empty when the request goes through
		wantTenant   string
	}{
		{name: "no header", multitenancy: true, wantStatus: http.StatusUnauthorized, wantError: "no tenant ID: set the X-Scope-OrgID header"},
		{name: "invalid tenant", multitenancy: true, header: []string{"a/b"}, wantStatus: http.StatusBadRequest, wantError: "unsupported character '/'"},
		{name: "dot-dot tenant", multitenancy: true, header: []string{".."}, wantStatus: http.StatusBadRequest, wantError: ".."},
		{name: "header twice", multitenancy: true, header: []string{"a", "b"}, wantStatus: http.StatusBadRequest, wantError: "set 2 times"},
		{name: "valid tenant", multitenancy: true, header: []string{"team-a"}, wantStatus: http.StatusOK, wantTenant: "team-a"},
		{name: "multitenancy off", multitenancy: false, wantStatus: http.StatusOK, wantTenant: tenant.AnonymousTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotTenant string
			h := TenantMiddleware(tt.multitenancy)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id, err := tenant.FromContext(r.Context())
				require.NoError(t, err)
				gotTenant = id
			}))
			req := httptest.NewRequest(http.MethodGet, "/prometheus/api/v1/query?query=up", nil)
			for _, v := range tt.header {
				req.Header.Add(tenant.OrgIDHeader, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			if tt.wantError == "" {
				require.Equal(t, tt.wantTenant, gotTenant)
				return
			}
			require.Empty(t, gotTenant, "the handler is not called")
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var resp struct {
				Status    string `json:"status"`
				ErrorType string `json:"errorType"`
				Error     string `json:"error"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp), rec.Body.String())
			require.Equal(t, "error", resp.Status)
			require.Equal(t, "bad_data", resp.ErrorType)
			require.Contains(t, resp.Error, tt.wantError)
		})
	}
}
