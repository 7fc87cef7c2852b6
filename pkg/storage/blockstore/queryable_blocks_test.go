package blockstore

import (
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
)

func blockIDs(blocks []*BlockEntry) []ulid.ULID {
	out := []ulid.ULID{}
	for _, b := range blocks {
		out = append(out, b.ID)
	}
	return out
}

// hourEntry returns a block entry with a ULID derived from n, over [minH, maxH) hours.
func hourEntry(n uint64, minH, maxH int64) *BlockEntry {
	const hourMs = 3600 * 1000
	return &BlockEntry{ID: ulid.MustNew(n, nil), MinTime: minH * hourMs, MaxTime: maxH * hourMs}
}

func TestBlocksToQuery(t *testing.T) {
	s1, s2, s3 := hourEntry(1, 0, 2), hourEntry(2, 0, 2), hourEntry(3, 0, 2)
	merged := hourEntry(10, 0, 2)      // s1+s2+s3
	retried := hourEntry(11, 0, 2)     // the same sources, compacted again
	other := hourEntry(4, 2, 4)        // unrelated
	day := hourEntry(20, 0, 24)        // merged + other
	noSources := hourEntry(30, 24, 26) // a hand-made block whose meta.json lists no sources
	sources := BlockSources{
		s1.ID: {s1.ID}, s2.ID: {s2.ID}, s3.ID: {s3.ID}, other.ID: {other.ID},
		merged.ID:  {s1.ID, s2.ID, s3.ID},
		retried.ID: {s1.ID, s2.ID, s3.ID},
		day.ID:     {s1.ID, s2.ID, s3.ID, other.ID},
	}
	mark := func(bs ...*BlockEntry) []*DeletionMark {
		var out []*DeletionMark
		for _, b := range bs {
			out = append(out, &DeletionMark{ID: b.ID})
		}
		return out
	}
	tests := map[string]struct {
		blocks  []*BlockEntry
		marks   []*DeletionMark
		sources BlockSources
		want    []*BlockEntry
	}{
		"marked blocks are dropped": {
			blocks: []*BlockEntry{s1, s2, merged}, marks: mark(s1, s2), want: []*BlockEntry{merged},
		},
		"sources of a compacted block are dropped before they are marked": {
			blocks: []*BlockEntry{s1, s2, s3, merged, other}, sources: sources, want: []*BlockEntry{merged, other},
		},
		"without sources only marks count": {
			blocks: []*BlockEntry{s1, merged}, want: []*BlockEntry{s1, merged},
		},
		"of two blocks with the same sources the lower ULID stays": {
			blocks: []*BlockEntry{retried, merged}, sources: sources, want: []*BlockEntry{merged},
		},
		"replacement is transitive": {
			blocks: []*BlockEntry{s1, merged, other, day}, sources: sources, want: []*BlockEntry{day},
		},
		"a marked compacted block replaces nothing": {
			blocks: []*BlockEntry{s1, s2, s3, merged}, marks: mark(merged), sources: sources, want: []*BlockEntry{s1, s2, s3},
		},
		"a block without sources is its own source": {
			blocks: []*BlockEntry{noSources, day}, sources: sources, want: []*BlockEntry{noSources, day},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			idx := &Index{Version: IndexVersion1, Blocks: tc.blocks, DeletionMarks: tc.marks}
			require.Equal(t, blockIDs(tc.want), blockIDs(BlocksToQuery(idx, tc.sources)))
		})
	}
}
