package ring

import (
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
)

// The tokens of blocks and tenants decide which instance owns what: a change would move every block and
// tenant at the next rollout, so these pin the definitions.
func TestBlockToken(t *testing.T) {
	id := ulid.MustNew(1, nil)
	h := xxhash.Sum64(append([]byte("tenant-a\xff"), id[:]...))
	require.Equal(t, uint32(h)^uint32(h>>32), BlockToken("tenant-a", id))
	require.NotEqual(t, BlockToken("a", id), BlockToken("b", id), "depends on the tenant")
	require.NotEqual(t, BlockToken("a", id), BlockToken("a", ulid.MustNew(2, nil)), "depends on the block")
}

func TestTenantToken(t *testing.T) {
	h := xxhash.Sum64String("tenant-a")
	require.Equal(t, uint32(h)^uint32(h>>32), TenantToken("tenant-a"))
	require.NotEqual(t, TenantToken("a"), TenantToken("b"))
}
