package ring

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
)

func ids(instances []InstanceDesc) []string {
	out := make([]string, len(instances))
	for i, in := range instances {
		out[i] = in.ID
	}
	return out
}

func TestConfig_Validate(t *testing.T) {
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"valid":              {cfg: Config{HeartbeatTimeout: time.Minute, ReplicationFactor: 3}},
		"no timeout":         {cfg: Config{ReplicationFactor: 3}, wantErr: "-ring.heartbeat-timeout"},
		"replication factor": {cfg: Config{HeartbeatTimeout: time.Minute}, wantErr: "-distributor.replication-factor"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestGet_ReplicationSetHasDistinctInstances(t *testing.T) {
	for _, rf := range []int{1, 2, 3, 5} {
		t.Run(fmt.Sprint("rf=", rf), func(t *testing.T) {
			r := newTestRing(t, Config{ReplicationFactor: rf}, generatedDesc(10, 64))
			rnd := rand.New(rand.NewPCG(1, uint64(rf)))
			for range 1000 {
				rs, err := r.Get(rnd.Uint32(), Write, nil)
				require.NoError(t, err)
				require.Len(t, rs.Instances, rf)
				seen := map[string]bool{}
				for _, in := range rs.Instances {
					require.False(t, seen[in.ID], "instance %s twice", in.ID)
					seen[in.ID] = true
				}
			}
		})
	}
}

func TestGet_ZoneAwareSetHasDistinctZones(t *testing.T) {
	r := newTestRing(t, Config{ReplicationFactor: 3, ZoneAwarenessEnabled: true},
		generatedDesc(9, 64, "zone-a", "zone-b", "zone-c"))
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		rs, err := r.Get(rnd.Uint32(), Write, nil)
		require.NoError(t, err)
		require.Len(t, rs.Instances, 3)
		zones := map[string]bool{}
		for _, in := range rs.Instances {
			require.False(t, zones[in.Zone], "zone %s twice", in.Zone)
			zones[in.Zone] = true
		}
	}
}

func TestGet_WalksClockwiseFromKey(t *testing.T) {
	r := newTestRing(t, Config{ReplicationFactor: 2},
		descOf(inst("a", "", 100), inst("b", "", 200), inst("c", "", 300)))
	tests := []struct {
		key  uint32
		want []string
	}{
		{50, []string{"a", "b"}},
		{100, []string{"a", "b"}},
		{101, []string{"b", "c"}},
		{250, []string{"c", "a"}},
		{301, []string{"a", "b"}}, // wraps around
	}
	for _, tc := range tests {
		rs, err := r.Get(tc.key, Write, nil)
		require.NoError(t, err)
		require.Equal(t, tc.want, ids(rs.Instances), "key %d", tc.key)
	}
}

func TestOwnership_IsEvenWithManyTokens(t *testing.T) {
	// Tokens are random, so the property is checked over many rings drawn from fixed seeds: the test is
	// deterministic, and a generator that is only even on average fails it.
	const rings = 500
	outside := 0
	for seed := range uint64(rings) {
		rnd := rand.New(rand.NewPCG(seed, seed))
		d := NewDesc()
		var taken []uint32
		for i := range 3 {
			ts := generateTokens(rnd, 128, taken)
			taken = append(taken, ts...)
			in := inst(fmt.Sprintf("ingester-%d", i), "", ts...)
			d.Instances[in.ID] = in
		}
		own := newTestRing(t, Config{ReplicationFactor: 1}, d).Ownership()
		require.Len(t, own, 3)
		for _, share := range own {
			if share < 1.0/3-0.08 || share > 1.0/3+0.08 {
				outside++
				break
			}
		}
	}
	require.Zero(t, outside, "%d of %d rings of 3 instances × 128 tokens have an instance outside 33%% ± 8%%", outside, rings)
}

func TestOwnership_CountsRangesUpToEachToken(t *testing.T) {
	r := newTestRing(t, Config{ReplicationFactor: 1},
		descOf(inst("a", "", 0), inst("b", "", 1<<31)))
	require.Equal(t, map[string]float64{"a": 0.5, "b": 0.5}, r.Ownership())

	r = newTestRing(t, Config{ReplicationFactor: 1}, descOf(inst("only", "", 42)))
	require.Equal(t, map[string]float64{"only": 1}, r.Ownership())
}

func TestGet_SkipsUnhealthyInstances(t *testing.T) {
	stale := inst("b", "", 200)
	stale.Timestamp = testNow.Add(-2 * time.Minute).UnixMilli()
	joining := inst("b", "", 200)
	joining.State = JOINING
	leaving := inst("b", "", 200)
	leaving.State = LEAVING

	tests := map[string]struct {
		b             InstanceDesc
		op            Operation
		want          []string
		wantMaxErrors int
	}{
		// a, b, c hold key 150's replicas b, c, d with RF 3 (the walk starts at b).
		"all healthy":                {b: inst("b", "", 200), op: Write, want: []string{"b", "c", "d"}, wantMaxErrors: 1},
		"stale heartbeat is dropped": {b: stale, op: Write, want: []string{"c", "d"}, wantMaxErrors: 0},
		"joining is extended past":   {b: joining, op: Write, want: []string{"c", "d", "a"}, wantMaxErrors: 1},
		"leaving is extended past":   {b: leaving, op: Write, want: []string{"c", "d", "a"}, wantMaxErrors: 1},
		"leaving is read":            {b: leaving, op: Read, want: []string{"b", "c", "d"}, wantMaxErrors: 1},
		"joining is not read":        {b: joining, op: Read, want: []string{"c", "d", "a"}, wantMaxErrors: 1},
		"stale is not read":          {b: stale, op: Read, want: []string{"c", "d"}, wantMaxErrors: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newTestRing(t, Config{ReplicationFactor: 3},
				descOf(inst("a", "", 100), tc.b, inst("c", "", 300), inst("d", "", 400)))
			rs, err := r.Get(150, tc.op, nil)
			require.NoError(t, err)
			require.Equal(t, tc.want, ids(rs.Instances))
			require.Equal(t, tc.wantMaxErrors, rs.MaxErrors)
		})
	}
}

func TestGet_TooManyUnhealthyIsAnError(t *testing.T) {
	b, c := inst("b", "", 200), inst("c", "", 300)
	b.Timestamp = testNow.Add(-time.Hour).UnixMilli()
	c.State = PENDING // extended past for writes, but a is stale too, so no third replica is left
	a := inst("a", "", 100)
	a.Timestamp = b.Timestamp
	r := newTestRing(t, Config{ReplicationFactor: 3}, descOf(a, b, c, inst("d", "", 400)))
	_, err := r.Get(150, Write, nil)
	var tooFew *TooFewReplicasError
	require.ErrorAs(t, err, &tooFew)
	require.Equal(t, TooFewReplicasError{Op: Write, Needed: 2, Found: 1}, *tooFew)
	require.ErrorContains(t, err, "need 2, found 1")
}

func TestGet_EmptyRing(t *testing.T) {
	r := newTestRing(t, Config{ReplicationFactor: 3}, NewDesc())
	_, err := r.Get(1, Write, nil)
	require.ErrorIs(t, err, ErrEmptyRing)
	_, err = r.GetReplicationSetForOperation(Read)
	require.ErrorIs(t, err, ErrEmptyRing)
}

func TestQuorumArithmetic(t *testing.T) {
	tests := []struct {
		rf, quorum, maxErrors int
	}{
		{1, 1, 0},
		{2, 2, 0},
		{3, 2, 1},
		{5, 3, 2},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("rf=", tc.rf), func(t *testing.T) {
			require.Equal(t, tc.quorum, quorum(tc.rf))
			r := newTestRing(t, Config{ReplicationFactor: tc.rf}, generatedDesc(tc.rf, 16))
			rs, err := r.Get(12345, Write, nil)
			require.NoError(t, err)
			require.Len(t, rs.Instances, tc.rf)
			require.Equal(t, tc.maxErrors, rs.MaxErrors)

			all, err := r.GetReplicationSetForOperation(Read)
			require.NoError(t, err)
			require.Len(t, all.Instances, tc.rf)
			require.Equal(t, tc.maxErrors, all.MaxErrors)
		})
	}
}

func TestGet_ReplicasCappedBySmallRing(t *testing.T) {
	r := newTestRing(t, Config{ReplicationFactor: 3}, generatedDesc(1, 16))
	rs, err := r.Get(1, Write, nil)
	require.NoError(t, err)
	require.Len(t, rs.Instances, 1)
	require.Equal(t, 0, rs.MaxErrors)
}

func TestGetReplicationSetForOperation(t *testing.T) {
	down := func(in InstanceDesc) InstanceDesc {
		in.Timestamp = testNow.Add(-time.Hour).UnixMilli()
		return in
	}
	joining := func(in InstanceDesc) InstanceDesc {
		in.State = JOINING
		return in
	}
	tests := map[string]struct {
		cfg                 Config
		desc                *Desc
		want                []string
		maxErrors, maxZones int
		wantErr             string
	}{
		"all healthy": {
			cfg:  Config{ReplicationFactor: 3},
			desc: descOf(inst("a", "", 1), inst("b", "", 2), inst("c", "", 3), inst("d", "", 4)),
			want: []string{"a", "b", "c", "d"}, maxErrors: 1,
		},
		"one down uses the budget": {
			cfg:  Config{ReplicationFactor: 3},
			desc: descOf(inst("a", "", 1), down(inst("b", "", 2)), inst("c", "", 3), inst("d", "", 4)),
			want: []string{"a", "c", "d"}, maxErrors: 0,
		},
		"joining is neither queried nor counted as down": {
			cfg:  Config{ReplicationFactor: 3},
			desc: descOf(inst("a", "", 1), joining(inst("b", "", 2)), inst("c", "", 3), inst("d", "", 4)),
			want: []string{"a", "c", "d"}, maxErrors: 1,
		},
		"two down is too many": {
			cfg:     Config{ReplicationFactor: 3},
			desc:    descOf(inst("a", "", 1), down(inst("b", "", 2)), down(inst("c", "", 3)), inst("d", "", 4)),
			wantErr: "2 unhealthy (b (b:9095), c (c:9095)), at most 1 tolerated",
		},
		"zone aware, healthy": {
			cfg:  Config{ReplicationFactor: 3, ZoneAwarenessEnabled: true},
			desc: descOf(inst("a1", "a", 1), inst("b1", "b", 2), inst("c1", "c", 3), inst("c2", "c", 4)),
			want: []string{"a1", "b1", "c1", "c2"}, maxZones: 1,
		},
		"zone aware, a whole zone down": {
			cfg:  Config{ReplicationFactor: 3, ZoneAwarenessEnabled: true},
			desc: descOf(inst("a1", "a", 1), inst("b1", "b", 2), down(inst("c1", "c", 3)), down(inst("c2", "c", 4))),
			want: []string{"a1", "b1"}, maxZones: 0,
		},
		"zone aware, two zones down": {
			cfg:     Config{ReplicationFactor: 3, ZoneAwarenessEnabled: true},
			desc:    descOf(inst("a1", "a", 1), down(inst("b1", "b", 2)), down(inst("c1", "c", 3)), inst("c2", "c", 4)),
			wantErr: "2 unhealthy (b, c), at most 1 tolerated",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newTestRing(t, tc.cfg, tc.desc)
			rs, err := r.GetReplicationSetForOperation(Read)
			if tc.wantErr != "" {
				var unhealthy *TooManyUnhealthyError
				require.ErrorAs(t, err, &unhealthy)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, ids(rs.Instances))
			require.Equal(t, tc.maxErrors, rs.MaxErrors)
			require.Equal(t, tc.maxZones, rs.MaxUnavailableZones)
		})
	}
}

func TestRing_Counts(t *testing.T) {
	stale := inst("b", "", 2)
	stale.Timestamp = 0
	leaving := inst("c", "", 3)
	leaving.State = LEAVING
	r := newTestRing(t, Config{ReplicationFactor: 3},
		descOf(inst("a", "", 1), stale, leaving, InstanceDesc{ID: "gone", State: LEFT, Timestamp: 1}))
	require.Equal(t, 3, r.ReplicationFactor())
	require.Equal(t, 3, r.InstancesCount(), "tombstones are not instances")
	require.Equal(t, 1, r.HealthyInstancesCount(Write))
	require.Equal(t, 2, r.HealthyInstancesCount(Read))
}

func TestRing_FollowsKVChangesAndExportsMetrics(t *testing.T) {
	ctx := context.Background()
	store := inmemory.New(DescCodec{})
	require.NoError(t, store.CAS(ctx, "ring", func(any) (any, bool, error) {
		return descOf(inst("a", "", 1)), false, nil
	}))
	reg := prometheus.NewPedanticRegistry()
	r, err := New(Config{HeartbeatTimeout: time.Minute, ReplicationFactor: 1}, "ingester", "ring", store, reg, nil)
	require.NoError(t, err)
	r.now = func() time.Time { return testNow }
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { require.NoError(t, r.Stop(ctx)) })
	require.Equal(t, 1, r.InstancesCount())

	require.NoError(t, store.CAS(ctx, "ring", func(in any) (any, bool, error) {
		d := in.(*Desc)
		d.Instances["b"] = inst("b", "", 2)
		return d, false, nil
	}))
	// The metrics follow the view just after it changes: wait for them, not only for the view.
	require.Eventually(t, func() bool {
		return r.InstancesCount() == 2 && testutil.ToFloat64(r.members.WithLabelValues("ACTIVE")) == 2 &&
			testutil.ToFloat64(r.tokensTotal) == 2
	}, 5*time.Second, time.Millisecond)
	n, err := testutil.GatherAndCount(reg, "strata_ring_members", "strata_ring_tokens")
	require.NoError(t, err)
	require.Equal(t, 6, n) // PENDING, JOINING, ACTIVE, LEAVING, unhealthy, and the token count
}

func TestNew_RingsOfOneProcessShareMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cfg := Config{HeartbeatTimeout: time.Minute, ReplicationFactor: 1}
	store := inmemory.New(DescCodec{})
	_, err := New(cfg, "ingester", "ring", store, reg, nil)
	require.NoError(t, err)
	_, err = New(cfg, "ingester", "ring", store, reg, nil)
	require.NoError(t, err, "a second ring with the same name reuses the metrics")
	_, err = New(cfg, "store-gateway", "sg-ring", store, reg, nil)
	require.NoError(t, err)
}

func TestGet_DoesNotAllocateWithBuffer(t *testing.T) {
	r := newTestRing(t, Config{ReplicationFactor: 3, ZoneAwarenessEnabled: true},
		generatedDesc(30, 128, "a", "b", "c"))
	buf := make([]InstanceDesc, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = r.Get(rand.Uint32(), Write, buf)
	})
	require.Zero(t, allocs)
}

func BenchmarkGet(b *testing.B) {
	for _, bc := range []struct {
		name  string
		cfg   Config
		zones []string
	}{
		{"rf=3", Config{ReplicationFactor: 3}, nil},
		{"rf=3,zones=3", Config{ReplicationFactor: 3, ZoneAwarenessEnabled: true}, []string{"a", "b", "c"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := newTestRing(b, bc.cfg, generatedDesc(100, 128, bc.zones...))
			buf := make([]InstanceDesc, 0, 8)
			keys := make([]uint32, 1024)
			for i := range keys {
				keys[i] = rand.Uint32()
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				rs, err := r.Get(keys[i%len(keys)], Write, buf)
				if err != nil {
					b.Fatal(err)
				}
				buf = rs.Instances[:0]
				i++
			}
		})
	}
}

func TestGet_BlocksSyncCountsJoiningInstances(t *testing.T) {
	now := time.Now().UnixMilli()
	joining := InstanceDesc{ID: "a", Addr: "a:9095", State: JOINING, Tokens: []uint32{100}, Timestamp: now}
	active := InstanceDesc{ID: "b", Addr: "b:9095", State: ACTIVE, Tokens: []uint32{200}, Timestamp: now}
	r := newTestRing(t, Config{HeartbeatTimeout: time.Minute, ReplicationFactor: 1}, descOf(joining, active))

	rs, err := r.Get(50, BlocksSync, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, ids(rs.Instances), "a joining store-gateway owns its blocks, to load them before it serves")
	rs, err = r.Get(50, Read, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, ids(rs.Instances), "queriers skip it until it is ACTIVE")
}

func TestGet_OwnerMovesPastDeadAndInactiveInstances(t *testing.T) {
	dead := inst("ruler-b", "", 200)
	dead.Timestamp = testNow.Add(-2 * time.Minute).UnixMilli() // past the 1m heartbeat timeout
	leaving := inst("ruler-c", "", 300)
	leaving.State = LEAVING
	r := newTestRing(t, Config{ReplicationFactor: 1}, descOf(inst("ruler-a", "", 100), dead, leaving, inst("ruler-d", "", 400)))

	owner := func(key uint32) string {
		t.Helper()
		rs, err := r.Get(key, Owner, nil)
		require.NoError(t, err)
		require.Len(t, rs.Instances, 1)
		return rs.Instances[0].ID
	}
	require.Equal(t, "ruler-a", owner(50))
	require.Equal(t, "ruler-d", owner(150), "the dead owner's keys go to the next live ACTIVE instance")
	require.Equal(t, "ruler-d", owner(250), "as do a LEAVING one's")
	require.Equal(t, "ruler-a", owner(450))

	// Write keeps counting the dead instance as the key's replica: the set fails rather than moves.
	_, err := r.Get(150, Write, nil)
	require.Error(t, err)
}
