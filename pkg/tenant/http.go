package tenant

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// OrgIDHeader is the HTTP header that names the tenant of a request, as in Cortex and Mimir.
const OrgIDHeader = "X-Scope-OrgID"

var errNoOrgIDHeader = fmt.Errorf("%w: set the %s header", ErrNoTenant, OrgIDHeader)

// FromHTTPRequest returns the tenant of r. With multitenancy disabled it is always AnonymousTenant and the
// header is ignored. Otherwise the X-Scope-OrgID header must be present once and hold a valid ID: a
// missing header gives an error matching ErrNoTenant, an invalid one an *InvalidIDError.
func FromHTTPRequest(r *http.Request, multitenancyEnabled bool) (string, error) {
	if !multitenancyEnabled {
		return AnonymousTenant, nil
	}
	values := r.Header.Values(OrgIDHeader)
	switch len(values) {
	case 0:
		return "", errNoOrgIDHeader
	case 1:
	default:
		// Taking the first value would let a proxy that appends headers pick the tenant silently.
		return "", fmt.Errorf("the %s header is set %d times, send it once", OrgIDHeader, len(values))
	}
	if err := ValidateID(values[0]); err != nil {
		return "", err
	}
	return values[0], nil
}

// FederatedFromHTTPRequest is FromHTTPRequest for reads that may span tenants: X-Scope-OrgID may name
// several, separated by "|", and the canonical ID of ParseFederatedID is returned.
func FederatedFromHTTPRequest(r *http.Request, multitenancyEnabled bool) (string, error) {
	values := r.Header.Values(OrgIDHeader)
	if !multitenancyEnabled || len(values) != 1 || !strings.Contains(values[0], FederationSeparator) {
		return FromHTTPRequest(r, multitenancyEnabled)
	}
	return ParseFederatedID(values[0])
}

// Middleware puts the tenant of each request into its context (see FromHTTPRequest). A request without a
// tenant gets 401 Unauthorized and one with an invalid tenant 400 Bad Request, each with a plain-text body
// saying what to fix; next is not called for them.
func Middleware(multitenancyEnabled bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := FromHTTPRequest(r, multitenancyEnabled)
			if err != nil {
				code := http.StatusBadRequest
				if errors.Is(err, ErrNoTenant) {
					code = http.StatusUnauthorized
				}
				http.Error(w, err.Error(), code)
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
		})
	}
}

// FromContextOr401 returns the tenant Middleware put in the request's context, or answers 401 as
// Middleware does for a request without one, for handlers that may be mounted without it.
func FromContextOr401(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := FromContext(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return "", false
	}
	return id, true
}
