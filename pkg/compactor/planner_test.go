package compactor

import (
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// entry returns a block entry with a ULID derived from n, over [minH, maxH) hours.
func entry(n uint64, minH, maxH int64) *blockstore.BlockEntry {
	return &blockstore.BlockEntry{ID: ulid.MustNew(n, nil), MinTime: minH * hourMs, MaxTime: maxH * hourMs}
}

func TestPlan(t *testing.T) {
	ranges := []int64{2 * hourMs, 12 * hourMs, 24 * hourMs}
	// Reused entries so that expected groups can name them.
	var (
		a1, a2, a3 = entry(1, 0, 2), entry(2, 0, 2), entry(3, 0, 2)
		b1, b2     = entry(4, 2, 4), entry(5, 2, 4)
		ooo        = entry(6, 1, 3) // An out-of-order block across two 2h ranges.
	)
	twoH := func(n uint64, i int64) *blockstore.BlockEntry { return entry(n, 2*i, 2*i+2) }
	day := func(base uint64, fromH int64, count int) []*blockstore.BlockEntry {
		var out []*blockstore.BlockEntry
		for i := range count {
			out = append(out, twoH(base+uint64(i), fromH/2+int64(i)))
		}
		return out
	}
	first6 := day(10, 0, 6)
	twelve1, twelve2 := entry(30, 0, 12), entry(31, 12, 24)

	tests := map[string]struct {
		blocks []*blockstore.BlockEntry
		want   []Group
	}{
		"no blocks": {},
		"one block": {blocks: []*blockstore.BlockEntry{a1}},
		"replica copies of one range are merged vertically": {
			blocks: []*blockstore.BlockEntry{a3, a1, a2},
			want:   []Group{{MinTime: 0, MaxTime: 2 * hourMs, Blocks: []*blockstore.BlockEntry{a1, a2, a3}, Vertical: true}},
		},
		"each range's copies form their own vertical group": {
			blocks: []*blockstore.BlockEntry{a1, b1, a2, b2},
			want: []Group{
				{MinTime: 0, MaxTime: 2 * hourMs, Blocks: []*blockstore.BlockEntry{a1, a2}, Vertical: true},
				{MinTime: 2 * hourMs, MaxTime: 4 * hourMs, Blocks: []*blockstore.BlockEntry{b1, b2}, Vertical: true},
			},
		},
		"an out-of-order block chains the ranges it overlaps": {
			blocks: []*blockstore.BlockEntry{a1, ooo, b1},
			want:   []Group{{MinTime: 0, MaxTime: 4 * hourMs, Blocks: []*blockstore.BlockEntry{a1, ooo, b1}, Vertical: true}},
		},
		"adjacent blocks do not overlap": {
			blocks: []*blockstore.BlockEntry{a1, b1},
		},
		"vertical work comes before horizontal work": {
			blocks: append(append([]*blockstore.BlockEntry{}, first6...), entry(40, 0, 2)),
			want:   []Group{{MinTime: 0, MaxTime: 2 * hourMs, Blocks: []*blockstore.BlockEntry{first6[0], entry(40, 0, 2)}, Vertical: true}},
		},
		"a 12h range covered by six 2h blocks is merged": {
			blocks: first6,
			want:   []Group{{MinTime: 0, MaxTime: 12 * hourMs, Blocks: first6}},
		},
		"an incomplete 12h range waits": {
			blocks: first6[:5],
		},
		"a 12h range with a gap is merged once a later block exists": {
			blocks: []*blockstore.BlockEntry{first6[0], first6[2], twoH(50, 6)},
			want:   []Group{{MinTime: 0, MaxTime: 12 * hourMs, Blocks: []*blockstore.BlockEntry{first6[0], first6[2]}}},
		},
		"a 12h range with a gap waits while it is the newest": {
			blocks: []*blockstore.BlockEntry{first6[0], first6[2], first6[5]},
		},
		"a single block in its range is left alone": {
			blocks: []*blockstore.BlockEntry{first6[0], twoH(51, 12), twoH(52, 24)},
		},
		"lone blocks of one day are merged once the day is complete": {
			blocks: []*blockstore.BlockEntry{first6[0], twoH(53, 6), twoH(54, 12)},
			want:   []Group{{MinTime: 0, MaxTime: 24 * hourMs, Blocks: []*blockstore.BlockEntry{first6[0], twoH(53, 6)}}},
		},
		"two 12h blocks make a 24h block": {
			blocks: []*blockstore.BlockEntry{twelve2, twelve1},
			want:   []Group{{MinTime: 0, MaxTime: 24 * hourMs, Blocks: []*blockstore.BlockEntry{twelve1, twelve2}}},
		},
		"12h merges come before 24h merges": {
			blocks: append([]*blockstore.BlockEntry{twelve2}, first6...),
			want:   []Group{{MinTime: 0, MaxTime: 12 * hourMs, Blocks: first6}},
		},
		"a complete 12h range beside a 12h block is merged before the 24h range": {
			blocks: []*blockstore.BlockEntry{twelve1, twoH(60, 6), twoH(61, 7), twoH(62, 12)},
			want:   []Group{{MinTime: 12 * hourMs, MaxTime: 24 * hourMs, Blocks: []*blockstore.BlockEntry{twoH(60, 6), twoH(61, 7)}}},
		},
		"a block crossing a 12h boundary is merged at the 24h level": {
			blocks: []*blockstore.BlockEntry{first6[0], entry(70, 10, 14), twoH(71, 12)},
			want:   []Group{{MinTime: 0, MaxTime: 24 * hourMs, Blocks: []*blockstore.BlockEntry{first6[0], entry(70, 10, 14)}}},
		},
		"a block crossing the largest range is never merged": {
			blocks: []*blockstore.BlockEntry{entry(72, 20, 26), twoH(73, 13), twoH(74, 24)},
		},
		"several complete ranges are merged in one plan": {
			blocks: append(append([]*blockstore.BlockEntry{}, first6...), day(80, 12, 6)...),
			want: []Group{
				{MinTime: 0, MaxTime: 12 * hourMs, Blocks: first6},
				{MinTime: 12 * hourMs, MaxTime: 24 * hourMs, Blocks: day(80, 12, 6)},
			},
		},
		"blocks before 1970 align downward": {
			blocks: []*blockstore.BlockEntry{entry(90, -12, -10), entry(91, -10, -8), entry(92, 0, 2)},
			want:   []Group{{MinTime: -12 * hourMs, MaxTime: 0, Blocks: []*blockstore.BlockEntry{entry(90, -12, -10), entry(91, -10, -8)}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, Plan(tc.blocks, ranges))
		})
	}
}

func TestPlan_SingleRangeOnlyMergesOverlaps(t *testing.T) {
	blocks := []*blockstore.BlockEntry{entry(1, 0, 2), entry(2, 2, 4), entry(3, 4, 6)}
	require.Empty(t, Plan(blocks, []int64{2 * hourMs}))
}

func TestAlignDown(t *testing.T) {
	for _, tc := range []struct{ t, r, want int64 }{
		{0, 10, 0}, {9, 10, 0}, {10, 10, 10}, {-1, 10, -10}, {-10, 10, -10}, {-11, 10, -20},
	} {
		require.Equal(t, tc.want, alignDown(tc.t, tc.r), "alignDown(%d, %d)", tc.t, tc.r)
	}
}

func ids(blocks []*blockstore.BlockEntry) []ulid.ULID {
	out := []ulid.ULID{}
	for _, b := range blocks {
		out = append(out, b.ID)
	}
	return out
}
