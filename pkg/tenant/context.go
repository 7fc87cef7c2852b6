package tenant

import (
	"context"
	"errors"
	"fmt"
)

// ErrNoTenant means a request carries no tenant ID. Errors returned when the ID is missing from a
// context, an HTTP header or gRPC metadata all match it with errors.Is.
var ErrNoTenant = errors.New("no tenant ID")

var errNoTenantInContext = fmt.Errorf("%w in request context", ErrNoTenant)

type contextKey struct{}

// NewContext returns a copy of ctx carrying tenant id. The id should already have passed ValidateID.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext returns the tenant ID stored by NewContext, or an error matching ErrNoTenant when there is
// none (an empty ID counts as none).
func FromContext(ctx context.Context) (string, error) {
	id, _ := ctx.Value(contextKey{}).(string)
	if id == "" {
		return "", errNoTenantInContext
	}
	return id, nil
}
