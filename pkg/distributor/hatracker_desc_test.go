package distributor

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// randomClusters draws values from a small space (few clusters, replicas and times) so that merges often
// meet the same cluster, and often with equal times.
func randomClusters(rnd *rand.Rand) *HAClusters {
	h := &HAClusters{Clusters: map[string]ReplicaDesc{}}
	for _, c := range []string{"a", "b", "c"} {
		if rnd.IntN(3) == 0 {
			continue
		}
		r := ReplicaDesc{
			Replica:        []string{"r1", "r2"}[rnd.IntN(2)],
			ReceivedAt:     int64(rnd.IntN(3)),
			ElectedAt:      int64(rnd.IntN(2)),
			ElectedChanges: int64(rnd.IntN(2)),
		}
		if rnd.IntN(4) == 0 {
			r.DeletedAt = int64(rnd.IntN(4))
		}
		h.Clusters[c] = r
	}
	return h
}

func mergedClusters(t *testing.T, a, b *HAClusters) *HAClusters {
	t.Helper()
	out := a.Clone().(*HAClusters)
	_, err := out.Merge(b.Clone(), false)
	require.NoError(t, err)
	return out
}

// Memberlist members that exchange values in any order, any number of times, end with the same value.
func TestHAClustersMerge_IsCommutativeAssociativeIdempotent(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		a, b, c := randomClusters(rnd), randomClusters(rnd), randomClusters(rnd)
		require.Equal(t, mergedClusters(t, a, b), mergedClusters(t, b, a), "commutative")
		require.Equal(t, mergedClusters(t, mergedClusters(t, a, b), c), mergedClusters(t, a, mergedClusters(t, b, c)), "associative")
		require.Equal(t, a, mergedClusters(t, a, a), "idempotent")

		// The change returned, applied to the old value, gives the merged value: gossip sends only changes.
		old, cur := a.Clone().(*HAClusters), a.Clone().(*HAClusters)
		change, err := cur.Merge(b.Clone(), false)
		require.NoError(t, err)
		if change == nil {
			require.Equal(t, old, cur)
			continue
		}
		_, err = old.Merge(change, false)
		require.NoError(t, err)
		require.Equal(t, cur, old)
	}
}

func TestHAClustersMerge_LatestReceivedWins(t *testing.T) {
	r1 := ReplicaDesc{Replica: "r1", ReceivedAt: 100, ElectedAt: 10, ElectedChanges: 1}
	r2 := ReplicaDesc{Replica: "r2", ReceivedAt: 200, ElectedAt: 200, ElectedChanges: 2}
	tomb := ReplicaDesc{Replica: "r1", ReceivedAt: 100, ElectedAt: 10, ElectedChanges: 1, DeletedAt: 150}
	of := func(r ReplicaDesc) *HAClusters { return &HAClusters{Clusters: map[string]ReplicaDesc{"c": r}} }

	tests := map[string]struct {
		ours, theirs, want *HAClusters
		changed            bool
	}{
		"a later election wins":            {of(r1), of(r2), of(r2), true},
		"an earlier one loses":             {of(r2), of(r1), of(r2), false},
		"a later removal wins":             {of(r1), of(tomb), of(tomb), true},
		"an election after a removal wins": {of(tomb), of(r2), of(r2), true},
		"an unknown cluster is added":      {&HAClusters{}, of(r1), of(r1), true},
		"a cluster missing remotely stays": {of(r1), &HAClusters{}, of(r1), false},
		"an older removal loses":           {of(r2), of(tomb), of(r2), false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			change, err := tt.ours.Merge(tt.theirs, false)
			require.NoError(t, err)
			require.Equal(t, tt.want.Clusters, tt.ours.Clusters)
			require.Equal(t, tt.changed, change != nil)
		})
	}
}

// A cluster a local CAS removed becomes a tombstone, which the removal spreads as, and which later goes.
func TestHAClustersMerge_LocalRemovalLeavesATombstone(t *testing.T) {
	now := time.Now().UnixMilli()
	h := &HAClusters{Clusters: map[string]ReplicaDesc{
		"gone": {Replica: "r1", ReceivedAt: 5},
		"kept": {Replica: "r1", ReceivedAt: 5},
	}}
	change, err := h.Merge(&HAClusters{Clusters: map[string]ReplicaDesc{"kept": {Replica: "r1", ReceivedAt: 5}}}, true)
	require.NoError(t, err)
	require.Equal(t, []string{"gone"}, change.MergeContent())
	gone := h.Clusters["gone"]
	require.True(t, gone.deleted())
	require.GreaterOrEqual(t, gone.DeletedAt, now)
	require.Equal(t, 1, h.live())

	total, removed := h.RemoveTombstones(time.UnixMilli(gone.DeletedAt))
	require.Equal(t, 1, total)
	require.Zero(t, removed, "not older than the limit yet")
	total, removed = h.RemoveTombstones(time.Time{})
	require.Equal(t, 1, total)
	require.Equal(t, 1, removed)
	require.Equal(t, []string{"kept"}, h.MergeContent())
}

func TestHAClustersMerge_RejectsOtherValues(t *testing.T) {
	_, err := (&HAClusters{}).Merge(nil, false)
	require.Error(t, err)
}

func TestHAClustersCodec_RoundTripAndBadInput(t *testing.T) {
	h := &HAClusters{Clusters: map[string]ReplicaDesc{"c": {Replica: "r", ReceivedAt: 2, ElectedAt: 1, ElectedChanges: 1, DeletedAt: 3}}}
	b, err := HAClustersCodec{}.Encode(h)
	require.NoError(t, err)
	got, err := HAClustersCodec{}.Decode(b)
	require.NoError(t, err)
	require.Equal(t, h, got)

	empty, err := HAClustersCodec{}.Decode([]byte(`{}`))
	require.NoError(t, err)
	require.NotNil(t, empty.(*HAClusters).Clusters)
	for _, in := range []string{"", "not json", `{"clusters": 3}`, `[]`} {
		_, err := HAClustersCodec{}.Decode([]byte(in))
		require.Error(t, err, "%q", in)
	}
	_, err = HAClustersCodec{}.Encode("not clusters")
	require.Error(t, err)
}
