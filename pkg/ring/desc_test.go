package ring

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// randomDesc draws descriptors from a small space (few IDs, few timestamps, few token sets) so that
// merges often meet the same instance, and often with equal timestamps.
func randomDesc(rnd *rand.Rand) *Desc {
	d := NewDesc()
	for _, id := range []string{"a", "b", "c", "d"} {
		if rnd.IntN(3) == 0 {
			continue
		}
		in := InstanceDesc{
			ID:        id,
			Addr:      []string{"10.0.0.1:9095", "10.0.0.2:9095"}[rnd.IntN(2)],
			Zone:      []string{"", "z1"}[rnd.IntN(2)],
			State:     InstanceState(rnd.IntN(int(LEFT) + 1)),
			Timestamp: int64(rnd.IntN(3)),
		}
		if in.State != LEFT {
			in.Tokens = [][]uint32{{1, 2}, {3}, {1, 5, 9}}[rnd.IntN(3)]
		}
		d.Instances[id] = in
	}
	return d
}

func merged(t *testing.T, a, b *Desc) *Desc {
	t.Helper()
	out := a.Clone().(*Desc)
	_, err := out.Merge(b.Clone(), false)
	require.NoError(t, err)
	return out
}

func TestDescMerge_IsCommutativeAssociativeIdempotent(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		a, b, c := randomDesc(rnd), randomDesc(rnd), randomDesc(rnd)
		require.Equal(t, merged(t, a, b), merged(t, b, a), "commutative")
		require.Equal(t, merged(t, merged(t, a, b), c), merged(t, a, merged(t, b, c)), "associative")
		require.Equal(t, a, merged(t, a, a), "idempotent")

		// The returned change, applied to the old value, gives the merged value: gossip only sends changes.
		old := a.Clone().(*Desc)
		cur := a.Clone().(*Desc)
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

func TestDescMerge_Tombstones(t *testing.T) {
	alive := inst("a", "", 1, 2)
	tomb := InstanceDesc{ID: "a", State: LEFT, Timestamp: alive.Timestamp + 1}
	olderTomb := InstanceDesc{ID: "a", State: LEFT, Timestamp: alive.Timestamp - 1}

	tests := map[string]struct {
		ours, theirs *Desc
		want         *Desc
		changed      bool
	}{
		"newer tombstone removes":        {descOf(alive), descOf(tomb), descOf(tomb), true},
		"older tombstone loses":          {descOf(alive), descOf(olderTomb), descOf(alive), false},
		"newer entry resurrects":         {descOf(olderTomb), descOf(alive), descOf(alive), true},
		"unknown instance is added":      {NewDesc(), descOf(alive), descOf(alive), true},
		"missing remote entry is kept":   {descOf(alive), NewDesc(), descOf(alive), false},
		"tombstone for unknown is added": {NewDesc(), descOf(tomb), descOf(tomb), true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			change, err := tc.ours.Merge(tc.theirs, false)
			require.NoError(t, err)
			require.Equal(t, tc.want, tc.ours)
			require.Equal(t, tc.changed, change != nil)
		})
	}
}

func TestDescMerge_LocalCASTurnsDeletionsIntoTombstones(t *testing.T) {
	ours := descOf(inst("a", "", 1), inst("b", "", 2))
	afterCAS := descOf(inst("a", "", 1)) // the CAS deleted b
	change, err := ours.Merge(afterCAS, true)
	require.NoError(t, err)
	require.Equal(t, LEFT, ours.Instances["b"].State)
	require.Greater(t, ours.Instances["b"].Timestamp, inst("b", "").Timestamp)
	require.Equal(t, []string{"b"}, change.MergeContent())

	// The tombstone then wins over the old entry elsewhere.
	remote := descOf(inst("a", "", 1), inst("b", "", 2))
	_, err = remote.Merge(change, false)
	require.NoError(t, err)
	require.Equal(t, LEFT, remote.Instances["b"].State)
}

func TestDescMerge_RejectsOtherTypes(t *testing.T) {
	_, err := NewDesc().Merge(fakeMergeable{}, false)
	require.Error(t, err)
}

type fakeMergeable struct{ kv.Mergeable }

func TestDesc_RemoveTombstones(t *testing.T) {
	d := descOf(inst("alive", ""),
		InstanceDesc{ID: "old", State: LEFT, Timestamp: testNow.Add(-time.Hour).UnixMilli()},
		InstanceDesc{ID: "recent", State: LEFT, Timestamp: testNow.UnixMilli()})
	total, removed := d.RemoveTombstones(testNow.Add(-time.Minute))
	require.Equal(t, 2, total)
	require.Equal(t, 1, removed)
	require.Equal(t, []string{"alive", "recent"}, d.MergeContent())

	total, removed = d.RemoveTombstones(time.Time{})
	require.Equal(t, 1, total)
	require.Equal(t, 1, removed)
	require.Equal(t, []string{"alive"}, d.MergeContent())
}

func TestDescCodec_RoundTrip(t *testing.T) {
	d := descOf(inst("a", "z1", 1, 2, 3), InstanceDesc{ID: "b", State: LEFT, Timestamp: 5})
	b, err := DescCodec{}.Encode(d)
	require.NoError(t, err)
	require.Contains(t, string(b), `"state":"ACTIVE"`)
	got, err := DescCodec{}.Decode(b)
	require.NoError(t, err)
	require.Equal(t, d, got)
}

func TestDescCodec_RejectsBadInput(t *testing.T) {
	tests := map[string]string{
		"not json":      `{`,
		"unknown state": `{"instances":{"a":{"id":"a","state":"SLEEPING"}}}`,
		"wrong type":    `{"instances":[]}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := DescCodec{}.Decode([]byte(in))
			require.Error(t, err)
		})
	}
	_, err := DescCodec{}.Encode("not a desc")
	require.Error(t, err)
}
