package storegateway

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
)

// newTestRing registers the instances (ACTIVE, 128 random tokens each) in an in-memory KV store and
// returns a started ring over it with replication factor rf.
func newTestRing(t *testing.T, rf int, addrs ...string) *ring.Ring {
	t.Helper()
	ctx := context.Background()
	store := inmemory.New(ring.DescCodec{})
	require.NoError(t, store.CAS(ctx, "store-gateway", func(any) (any, bool, error) {
		d := ring.NewDesc()
		var taken []uint32
		now := time.Now().UnixMilli()
		for _, addr := range addrs {
			tokens := ring.GenerateTokens(128, taken)
			taken = append(taken, tokens...)
			d.Instances[addr] = ring.InstanceDesc{ID: addr, Addr: addr, State: ring.ACTIVE, Tokens: tokens,
				Timestamp: now, RegisteredTimestamp: now}
		}
		return d, false, nil
	}))
	r, err := ring.New(ring.Config{HeartbeatTimeout: time.Hour, ReplicationFactor: rf}, "store-gateway", "store-gateway", store, nil, testLogger)
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { require.NoError(t, r.Stop(ctx)) })
	return r
}

func TestSharding_SplitsBlocksByRing(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	hour := time.Hour.Milliseconds()
	var all []string
	// Ten tenants with two blocks each: with random tokens, the chance that one of two instances owns none
	// of the 20 blocks is about 2^-19.
	for i := range 10 {
		tenantID := fmt.Sprintf("t%d", i)
		ids := uploadBlocks(t, bkt, tenantID, createBlocks(t, makeSeries(0, 7*hour, labels.FromStrings("job", tenantID))))
		writeBucketIndex(t, bkt, tenantID)
		for _, id := range ids {
			all = append(all, tenantID+"/"+id.String())
		}
	}

	for _, tc := range []struct {
		rf     int
		shared bool
	}{{rf: 1}, {rf: 2, shared: true}} {
		t.Run(fmt.Sprintf("rf=%d", tc.rf), func(t *testing.T) {
			r := newTestRing(t, tc.rf, "sg-1:9095", "sg-2:9095")
			var owned [][]string
			for _, addr := range []string{"sg-1:9095", "sg-2:9095"} {
				cfg := testConfig(t)
				cfg.ReplicationFactor = tc.rf
				sg, err := New(cfg, bkt, r, addr, nil, testLogger)
				require.NoError(t, err)
				require.NoError(t, sg.Start(context.Background()))
				t.Cleanup(func() { require.NoError(t, sg.Stop(context.Background())) })
				var ids []string
				for _, tb := range sg.Tenants() {
					for _, b := range tb.Blocks {
						ids = append(ids, tb.Tenant+"/"+b.ID)
					}
				}
				owned = append(owned, ids)
			}
			if tc.shared {
				require.ElementsMatch(t, all, owned[0])
				require.ElementsMatch(t, all, owned[1])
				return
			}
			require.NotEmpty(t, owned[0])
			require.NotEmpty(t, owned[1])
			require.ElementsMatch(t, all, append(slices.Clone(owned[0]), owned[1]...), "together they cover every block exactly once")
			// Each block is where the querier, using BlockToken, will look for it.
			for i, ids := range owned {
				for _, key := range ids {
					tenantID, idText, _ := strings.Cut(key, "/")
					set, err := r.Get(ring.BlockToken(tenantID, ulid.MustParseStrict(idText)), ring.Read, nil)
					require.NoError(t, err)
					require.Len(t, set.Instances, 1)
					require.Equal(t, []string{"sg-1:9095", "sg-2:9095"}[i], set.Instances[0].Addr)
				}
			}
		})
	}
}
