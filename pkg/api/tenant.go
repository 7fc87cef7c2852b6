package api

import (
	"errors"
	"net/http"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// TenantMiddleware puts each request's tenant into its context, as tenant.Middleware does, but answers a
// request without a tenant (401) or with an invalid one (400) in the Prometheus API's JSON error envelope:
// Prometheus clients such as Grafana parse that body on every status, and show a plain-text one as a
// decoding failure instead of the message saying what to fix.
func TenantMiddleware(multitenancyEnabled bool) func(http.Handler) http.Handler {
	return tenantMiddleware(func(r *http.Request) (string, error) { return tenant.FromHTTPRequest(r, multitenancyEnabled) })
}

// FederatedTenantMiddleware is TenantMiddleware for reads that may span tenants
// (-tenant-federation.enabled): X-Scope-OrgID may name several, "team-a|team-b".
func FederatedTenantMiddleware(multitenancyEnabled bool) func(http.Handler) http.Handler {
	return tenantMiddleware(func(r *http.Request) (string, error) {
		return tenant.FederatedFromHTTPRequest(r, multitenancyEnabled)
	})
}

func tenantMiddleware(tenantOf func(*http.Request) (string, error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := tenantOf(r)
			if err != nil {
				status := http.StatusBadRequest
				if errors.Is(err, tenant.ErrNoTenant) {
					status = http.StatusUnauthorized
				}
				writeJSON(w, status, response{Status: "error", ErrorType: errorBadData, Error: err.Error()})
				return
			}
			next.ServeHTTP(w, r.WithContext(tenant.NewContext(r.Context(), id)))
		})
	}
}
