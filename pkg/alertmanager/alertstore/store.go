// Package alertstore keeps each tenant's Alertmanager configuration and state in the object storage
// bucket that also holds the tenants' blocks and rule groups, under a prefix of its own:
//
//	<prefix>/configs/<tenant>.yaml     the configuration the config API wrote (AlertConfig as YAML)
//	<prefix>/state/<tenant>/fullstate  the silences and notification log of the tenant's Alertmanager
//
// Configurations and state live in separate directories so that listing the tenants with a
// configuration reads one directory, and a tenant's state can grow more objects later (one per
// replica, say) without touching its configuration.
package alertstore

import (
	"context"
	"errors"
)

// AlertConfig is one tenant's Alertmanager configuration, in the shape of Mimir's config API.
type AlertConfig struct {
	// TemplateFiles maps a template file name to its content; the configuration's templates field
	// names which of them are loaded.
	TemplateFiles map[string]string `yaml:"template_files"`
	// AlertmanagerConfig is the Alertmanager configuration file, as YAML text.
	AlertmanagerConfig string `yaml:"alertmanager_config"`
}

// Store holds the configuration and state of every tenant's Alertmanager. Tenant IDs must pass
// tenant.ValidateID: a store rejects others rather than turn them into object names.
type Store interface {
	// ListTenants returns, sorted, the tenants that have a configuration.
	ListTenants(ctx context.Context) ([]string, error)
	// GetConfig returns the tenant's configuration, or an error matching ErrNotFound.
	GetConfig(ctx context.Context, tenantID string) (AlertConfig, error)
	// SetConfig creates or replaces the tenant's configuration.
	SetConfig(ctx context.Context, tenantID string, cfg AlertConfig) error
	// DeleteConfig deletes the tenant's configuration; deleting a missing one is not an error.
	DeleteConfig(ctx context.Context, tenantID string) error
	// GetState returns the tenant's state blob, or an error matching ErrNotFound.
	GetState(ctx context.Context, tenantID string) ([]byte, error)
	// SetState creates or replaces the tenant's state blob.
	SetState(ctx context.Context, tenantID string, state []byte) error
	// DeleteState deletes the tenant's state blob; deleting a missing one is not an error.
	DeleteState(ctx context.Context, tenantID string) error
}

// ErrNotFound means the tenant has no configuration (GetConfig) or no state (GetState).
var ErrNotFound = errors.New("alertmanager storage object not found")
