package etcd

import (
	"errors"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

func TestClient_GetMissingKeyIsNil(t *testing.T) {
	t.Parallel()
	s := startEtcd(t)
	c := newTestClient(t, s.testConfig())
	v, err := c.Get(testContext(t), "missing")
	require.NoError(t, err)
	require.Nil(t, v)
}

func TestClient_CASCreatesAndUpdatesWithoutAliasing(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startEtcd(t)
	c := newTestClient(t, s.testConfig())

	require.NoError(t, c.CAS(ctx, "k", increment("a")))
	require.NoError(t, c.CAS(ctx, "k", increment("a")))
	require.NoError(t, c.CAS(ctx, "k", increment("b")))

	v, err := c.Get(ctx, "k")
	require.NoError(t, err)
	got := v.(counters)
	require.Equal(t, counters{"a": 2, "b": 1}, got)
	got["a"] = 100 // must not leak into the store
	v, err = c.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, counters{"a": 2, "b": 1}, v)

	// The value is stored under the key as given, encoded by the codec, readable with etcdctl.
	resp, err := s.adminClient(t, "", "").Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.JSONEq(t, `{"a":2,"b":1}`, string(resp.Kvs[0].Value))
}

func TestClient_CASOutcomes(t *testing.T) {
	t.Parallel()
	s := startEtcd(t)
	boom := errors.New("boom")
	const maxRetries = 4
	tests := map[string]struct {
		f       func(calls *int) func(any) (any, bool, error)
		wantErr error
		want    any
		calls   int
	}{
		"nil out writes nothing": {
			f: func(calls *int) func(any) (any, bool, error) {
				return func(any) (any, bool, error) { *calls++; return nil, false, nil }
			},
			calls: 1,
		},
		"error without retry stops": {
			f: func(calls *int) func(any) (any, bool, error) {
				return func(any) (any, bool, error) { *calls++; return nil, false, boom }
			},
			wantErr: boom, calls: 1,
		},
		"retry then success": {
			f: func(calls *int) func(any) (any, bool, error) {
				return func(any) (any, bool, error) {
					*calls++
					if *calls < 3 {
						return nil, true, boom
					}
					return counters{"x": 1}, false, nil
				}
			},
			want: counters{"x": 1}, calls: 3,
		},
		"retry forever gives up": {
			f: func(calls *int) func(any) (any, bool, error) {
				return func(any) (any, bool, error) { *calls++; return nil, true, boom }
			},
			wantErr: kv.ErrTooManyCASRetries, calls: maxRetries,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			cfg := s.testConfig()
			cfg.MaxRetries = maxRetries
			c := newTestClient(t, cfg)
			key := t.Name()
			calls := 0
			err := c.CAS(ctx, key, tc.f(&calls))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.calls, calls)
			v, err := c.Get(ctx, key)
			require.NoError(t, err)
			if tc.want == nil {
				require.Nil(t, v)
			} else {
				require.Equal(t, tc.want, v)
			}
		})
	}
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
		want          counters
	}{
		"update, one conflict":     {existing: true, conflicts: 1, wantCalls: 2, wantConflicts: 1, want: counters{"mine": 1, "theirs": 2}},
		"create, one conflict":     {conflicts: 1, wantCalls: 2, wantConflicts: 1, want: counters{"mine": 1, "theirs": 1}},
		"conflicts until give-up":  {existing: true, conflicts: 100, wantErr: kv.ErrTooManyCASRetries, wantCalls: 3, wantConflicts: 3, want: counters{"theirs": 4}},
		"update without conflicts": {existing: true, wantCalls: 1, want: counters{"mine": 1, "theirs": 1}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			cfg := s.testConfig()
			cfg.MaxRetries = 3
			c, other := newTestClient(t, cfg), newTestClient(t, cfg)
			key := t.Name()
			if tc.existing {
				require.NoError(t, other.CAS(ctx, key, increment("theirs")))
			}
			calls := 0
			err := c.CAS(ctx, key, func(in any) (any, bool, error) {
				calls++
				if calls <= tc.conflicts {
					// Another writer changes the key after c read it, so c's write must not go through.
					require.NoError(t, other.CAS(ctx, key, increment("theirs")))
				}
				return increment("mine")(in)
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
					if err := c.CAS(ctx, "k", increment(name)); err != nil {
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
	require.Equal(t, counters{"a": each, "b": each}, v)
}
