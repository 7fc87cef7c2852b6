package tenant_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// echoTenant answers 200 with the tenant the middleware put into the context.
var echoTenant = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, err := tenant.FromContext(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, id)
})

func TestMiddleware(t *testing.T) {
	tests := []struct {
		name         string
		multitenancy bool
		headers      []string // values of X-Scope-OrgID, nil for none
		wantCode     int
		wantBody     string // substring of the body
	}{
		{name: "valid tenant", multitenancy: true, headers: []string{"team-a"}, wantCode: 200, wantBody: "team-a"},
		{name: "all special characters", multitenancy: true, headers: []string{"!-_.*'()"}, wantCode: 200, wantBody: "!-_.*'()"},
		{name: "150 bytes", multitenancy: true, headers: []string{strings.Repeat("a", 150)}, wantCode: 200},
		{name: "missing header", multitenancy: true, wantCode: 401,
			wantBody: "no tenant ID: set the X-Scope-OrgID header"},
		{name: "empty header", multitenancy: true, headers: []string{""}, wantCode: 400, wantBody: "tenant ID is empty"},
		{name: "dot", multitenancy: true, headers: []string{"."}, wantCode: 400, wantBody: `tenant ID "." is not allowed`},
		{name: "dot dot", multitenancy: true, headers: []string{".."}, wantCode: 400, wantBody: `tenant ID ".." is not allowed`},
		{name: "slash", multitenancy: true, headers: []string{"a/b"}, wantCode: 400,
			wantBody: "tenant ID contains unsupported character '/'"},
		{name: "151 bytes", multitenancy: true, headers: []string{strings.Repeat("a", 151)}, wantCode: 400,
			wantBody: "tenant ID is 151 bytes, at most 150 are allowed"},
		{name: "unicode", multitenancy: true, headers: []string{"tëam"}, wantCode: 400, wantBody: "'ë'"},
		{name: "header twice", multitenancy: true, headers: []string{"a", "b"}, wantCode: 400,
			wantBody: "the X-Scope-OrgID header is set 2 times"},
		{name: "disabled without header", multitenancy: false, wantCode: 200, wantBody: tenant.AnonymousTenant},
		{name: "disabled ignores header", multitenancy: false, headers: []string{"team-a"}, wantCode: 200,
			wantBody: tenant.AnonymousTenant},
		{name: "disabled ignores invalid header", multitenancy: false, headers: []string{"a/b"}, wantCode: 200,
			wantBody: tenant.AnonymousTenant},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/api/v1/push", nil)
			for _, v := range tc.headers {
				req.Header.Add(tenant.OrgIDHeader, v)
			}
			rec := httptest.NewRecorder()
			tenant.Middleware(tc.multitenancy)(echoTenant).ServeHTTP(rec, req)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.wantBody)
			if tc.wantCode != http.StatusOK {
				require.Contains(t, rec.Header().Get("Content-Type"), "text/plain")
			}
		})
	}
}

// TestMiddleware_OverRealHTTP checks the header survives a real client and server, including its
// case-insensitive name.
func TestMiddleware_OverRealHTTP(t *testing.T) {
	srv := httptest.NewServer(tenant.Middleware(true)(echoTenant))
	t.Cleanup(srv.Close)

	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	req.Header["x-scope-orgid"] = []string{"team-b"} // sent as-is, canonicalised by the server
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "team-b", string(body))
}
