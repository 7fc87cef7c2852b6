// Package validationtest holds test aids for code that refuses requests over a tenant's limits.
package validationtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

// RequireLimitError asserts that err is the *validation.LimitError of the limit key, and that its
// message names the error ID and the flag a user would change.
func RequireLimitError(t testing.TB, err error, key string) {
	t.Helper()
	var lerr *validation.LimitError
	require.ErrorAs(t, err, &lerr)
	require.Equal(t, key, lerr.Key)
	require.Contains(t, err.Error(), validation.ErrorID(key))
	require.Contains(t, err.Error(), "-"+validation.FlagOf(key))
}
