package tenant

import (
	"fmt"
	"slices"
	"strings"
)

// FederationSeparator joins the tenants of a federated read in X-Scope-OrgID: "team-a|team-b".
const FederationSeparator = "|"

// MaxFederatedTenants bounds the tenants of one federated read: each is a read of its own.
const MaxFederatedTenants = 100

// ParseFederatedID checks the tenants of a federated read's X-Scope-OrgID value and returns them sorted
// and without duplicates, joined again: the canonical ID, so that "b|a" and "a|b|a" share the query
// queue and the results cache.
func ParseFederatedID(value string) (string, error) {
	ids := strings.Split(value, FederationSeparator)
	if len(ids) > MaxFederatedTenants {
		return "", fmt.Errorf("%s names %d tenants; a query may read at most %d", OrgIDHeader, len(ids), MaxFederatedTenants)
	}
	for _, id := range ids {
		if err := ValidateID(id); err != nil {
			return "", fmt.Errorf("tenant %q of %s: %w", id, OrgIDHeader, err)
		}
	}
	slices.Sort(ids)
	return strings.Join(slices.Compact(ids), FederationSeparator), nil
}

// IDs returns the tenants of an ID from ParseFederatedID (one, for a plain tenant ID).
func IDs(id string) []string {
	return strings.Split(id, FederationSeparator)
}
