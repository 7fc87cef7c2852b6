package querier

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// The compactor deletes a deleted tenant's blocks without delay, so a bucket index cached before lists
// blocks no store-gateway has any more: the query answers what is left instead of failing.
func TestBlocksQueryable_BlocksOfADeletedTenantMissingIsNoError(t *testing.T) {
	bkt, a, _ := blocksFixture(t)
	only := &fakeStoreGateway{blocks: map[string]int64{a.String(): 1000}}
	r := fakeRing{set: ring.ReplicationSet{Instances: []ring.InstanceDesc{{ID: "sg-1", Addr: startFakeStoreGateway(t, only)}}}}
	q := NewBlocksQueryable(bkt, r, dialClients{t}, Config{}, nil, slog.New(slog.DiscardHandler))
	require.NoError(t, blockstore.WriteTenantDeletionMark(context.Background(), bucket.NewTenantBucket(bkt, "t"), &blockstore.TenantDeletionMark{DeletionTime: 1}))

	got, err := selectAll(t, q)
	require.NoError(t, err)
	require.Equal(t, map[int64]float64{1000: 1000}, got)
}
