// Package rulestore keeps each tenant's rule groups, as the ruler's config API writes them and the ruler
// will evaluate them. A group lives in a namespace (Mimir's word for a rule file); within a namespace
// group names are unique, across namespaces they need not be. Two backends: the object storage bucket
// (read-write, one object per group) and a local directory of Prometheus rule files (read-only).
package rulestore

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/rulefmt"
)

// Store holds rule groups per tenant and namespace. Tenant IDs must pass tenant.ValidateID and
// namespace and group names CheckName; a store rejects others rather than map them to a path.
type Store interface {
	// ListTenants returns, sorted, the tenants that have at least one rule group.
	ListTenants(ctx context.Context) ([]string, error)
	// ListRuleGroups returns the tenant's groups by namespace, each namespace's groups sorted by name;
	// with namespace "" every namespace, otherwise only that one. A tenant or namespace without groups
	// gives an empty map, not an error.
	ListRuleGroups(ctx context.Context, tenantID, namespace string) (map[string][]rulefmt.RuleGroup, error)
	// GetRuleGroup returns one group, or an error matching ErrGroupNotFound.
	GetRuleGroup(ctx context.Context, tenantID, namespace, group string) (rulefmt.RuleGroup, error)
	// SetRuleGroup creates the group g.Name in namespace, or replaces it.
	SetRuleGroup(ctx context.Context, tenantID, namespace string, g rulefmt.RuleGroup) error
	// DeleteRuleGroup deletes one group, or returns an error matching ErrGroupNotFound.
	DeleteRuleGroup(ctx context.Context, tenantID, namespace, group string) error
	// DeleteNamespace deletes every group of namespace, or returns an error matching
	// ErrNamespaceNotFound when it has none.
	DeleteNamespace(ctx context.Context, tenantID, namespace string) error
}

var (
	// ErrGroupNotFound means the tenant has no group of that name in that namespace.
	ErrGroupNotFound = errors.New("rule group not found")
	// ErrNamespaceNotFound means the tenant has no group in that namespace.
	ErrNamespaceNotFound = errors.New("rule namespace not found")
	// ErrReadOnly is returned by every write to a store that cannot be written (the local backend).
	ErrReadOnly = errors.New("the rule store is read-only")
	// ErrInvalidName is matched by the errors of CheckName.
	ErrInvalidName = errors.New("invalid name")
)

// MaxNameLength bounds namespace and group names, in bytes. The bucket backend stores each name
// base64-encoded (4/3 of its length) as one path segment, and filesystem buckets allow 255 bytes per
// file name: 191 bytes is the longest name whose encoding fits. Both encoded names, a tenant ID (150
// bytes) and a prefix of up to 360 bytes then also fit the 1024-byte key limit of S3, GCS and Azure.
const MaxNameLength = 191

// CheckName reports whether name can name a namespace or group (what says which, for the message):
// 1 to MaxNameLength bytes of valid UTF-8. Anything else is allowed, '/' and ".." included: the
// backends encode names, they never use them as paths.
func CheckName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: %s name is empty", ErrInvalidName, what)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%w: %s name is %d bytes, at most %d are allowed", ErrInvalidName, what, len(name), MaxNameLength)
	case !utf8.ValidString(name):
		// Names are written back as YAML strings, which must be UTF-8.
		return fmt.Errorf("%w: %s name is not valid UTF-8", ErrInvalidName, what)
	}
	return nil
}
