package tenant_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

func TestFromContext_ReturnsTenantFromNewContext(t *testing.T) {
	id, err := tenant.FromContext(tenant.NewContext(context.Background(), "team-a"))
	require.NoError(t, err)
	require.Equal(t, "team-a", id)
}

func TestFromContext_NoTenant(t *testing.T) {
	for name, ctx := range map[string]context.Context{
		"absent": context.Background(),
		"empty":  tenant.NewContext(context.Background(), ""),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tenant.FromContext(ctx)
			require.ErrorIs(t, err, tenant.ErrNoTenant)
		})
	}
}
