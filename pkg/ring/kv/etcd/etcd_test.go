package etcd

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/ring/kv/kvtest"
)

func TestClient_Conformance(t *testing.T) {
	t.Parallel()
	s := startEtcd(t)
	cfg := s.testConfig()
	kvtest.RunClientConformance(t, func(t *testing.T, codec kv.Codec) kv.Client {
		return newTestClientWithCodec(t, cfg, codec)
	}, kvtest.Options{MaxCASRetries: cfg.MaxRetries})
}

// The value is stored under the key as given, encoded by the codec, so operators can read it with etcdctl.
func TestClient_StoresEncodedValueUnderKey(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startEtcd(t)
	c := newTestClient(t, s.testConfig())
	require.NoError(t, c.CAS(ctx, "k", kvtest.Increment("a")))
	require.NoError(t, c.CAS(ctx, "k", kvtest.Increment("a")))
	require.NoError(t, c.CAS(ctx, "k", kvtest.Increment("b")))

	resp, err := s.adminClient(t, "", "").Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.JSONEq(t, `{"a":2,"b":1}`, string(resp.Kvs[0].Value))
}

func TestClient_CASRetriesOnConflict(t *testing.T) {
	t.Parallel()
	s := startEtcd(t)
	tests := map[string]struct {
		existing      bool // whether the key exists before the CAS (new keys compare CreateRevision)
		conflicts     int  // how many of f's calls another writer races
		wantErr       error
		wantCalls     int
		wantConflicts float64
		want          kvtest.Counters
	}{
		"update, one conflict":     {existing: true, conflicts: 1, wantCalls: 2, wantConflicts: 1, want: kvtest.Counters{"mine": 1, "theirs": 2}},
		"create, one conflict":     {conflicts: 1, wantCalls: 2, wantConflicts: 1, want: kvtest.Counters{"mine": 1, "theirs": 1}},
		"conflicts until give-up":  {existing: true, conflicts: 100, wantErr: kv.ErrTooManyCASRetries, wantCalls: 3, wantConflicts: 3, want: kvtest.Counters{"theirs": 4}},
		"update without conflicts": {existing: true, wantCalls: 1, want: kvtest.Counters{"mine": 1, "theirs": 1}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			cfg := s.testConfig()
			cfg.MaxRetries = 3
			c, other := newTestClient(t, cfg), newTestClient(t, cfg)
			key := t.Name()
			if tc.existing {
				require.NoError(t, other.CAS(ctx, key, kvtest.Increment("theirs")))
			}
			calls := 0
			err := c.CAS(ctx, key, func(in any) (any, bool, error) {
				calls++
				if calls <= tc.conflicts {
					// Another writer changes the key after c read it, so c's write must not go through.
					require.NoError(t, other.CAS(ctx, key, kvtest.Increment("theirs")))
				}
				return kvtest.Increment("mine")(in)
			})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.wantCalls, calls)
			require.Equal(t, tc.wantConflicts, testutil.ToFloat64(c.metrics.casConflicts))
			v, err := c.Get(ctx, key)
			require.NoError(t, err)
			require.Equal(t, tc.want, v)
		})
	}
}

func TestClient_ConcurrentCASFromTwoClientsLosesNoUpdate(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startEtcd(t)
	cfg := s.testConfig()
	cfg.MaxRetries = 1000 // every writer must get through however often it loses
	clients := []*Client{newTestClient(t, cfg), newTestClient(t, cfg)}
	const writersPerClient, perWriter = 4, 20
	var wg sync.WaitGroup
	for _, c := range clients {
		for w := range writersPerClient {
			name := []string{"a", "b"}[w%2]
			wg.Go(func() {
				for range perWriter {
					if err := c.CAS(ctx, "k", kvtest.Increment(name)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	v, err := clients[0].Get(ctx, "k")
	require.NoError(t, err)
	each := len(clients) * writersPerClient / 2 * perWriter
	require.Equal(t, kvtest.Counters{"a": each, "b": each}, v)
}
