package ring

import (
	"github.com/cespare/xxhash/v2"
	"github.com/oklog/ulid/v2"
)

// KeySeparator goes between the parts of a hashed key. It cannot occur in valid UTF-8 text (tenant IDs,
// label names and values), so different keys never hash the same bytes.
const KeySeparator = 0xff

// TokenOf folds a 64-bit xxhash of a key to the key's 32-bit ring token. Every component places its keys
// (series, metric families, blocks, tenants) on a ring through it.
func TokenOf(h uint64) uint32 { return uint32(h) ^ uint32(h>>32) }

// BlockToken is the ring token of a block: a hash of its tenant and ID. Store-gateways load the blocks whose
// replication set holds them, and queriers find the store-gateways of a block with the same token.
func BlockToken(tenantID string, id ulid.ULID) uint32 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(tenantID)
	_, _ = d.Write([]byte{KeySeparator})
	_, _ = d.Write(id[:])
	return TokenOf(d.Sum64())
}

// TenantToken is the ring token of a tenant, for work sharded by tenant (compaction).
func TenantToken(tenantID string) uint32 { return TokenOf(xxhash.Sum64String(tenantID)) }
