package compactor

import (
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/storage/tsdb"
)

func ids(blocks []*tsdb.BlockEntry) []ulid.ULID {
	out := []ulid.ULID{}
	for _, b := range blocks {
		out = append(out, b.ID)
	}
	return out
}

func TestBlocksToQuery(t *testing.T) {
	s1, s2, s3 := entry(1, 0, 2), entry(2, 0, 2), entry(3, 0, 2)
	merged := entry(10, 0, 2)      // s1+s2+s3
	retried := entry(11, 0, 2)     // the same sources, compacted again
	other := entry(4, 2, 4)        // unrelated
	day := entry(20, 0, 24)        // merged + other
	noSources := entry(30, 24, 26) // a hand-made block whose meta.json lists no sources
	sources := BlockSources{
		s1.ID: {s1.ID}, s2.ID: {s2.ID}, s3.ID: {s3.ID}, other.ID: {other.ID},
		merged.ID:  {s1.ID, s2.ID, s3.ID},
		retried.ID: {s1.ID, s2.ID, s3.ID},
		day.ID:     {s1.ID, s2.ID, s3.ID, other.ID},
	}
	mark := func(bs ...*tsdb.BlockEntry) []*tsdb.DeletionMark {
		var out []*tsdb.DeletionMark
		for _, b := range bs {
			out = append(out, &tsdb.DeletionMark{ID: b.ID})
		}
		return out
	}
	tests := map[string]struct {
		blocks  []*tsdb.BlockEntry
		marks   []*tsdb.DeletionMark
		sources BlockSources
		want    []*tsdb.BlockEntry
	}{
		"marked blocks are dropped": {
			blocks: []*tsdb.BlockEntry{s1, s2, merged}, marks: mark(s1, s2), want: []*tsdb.BlockEntry{merged},
		},
		"sources of a compacted block are dropped before they are marked": {
			blocks: []*tsdb.BlockEntry{s1, s2, s3, merged, other}, sources: sources, want: []*tsdb.BlockEntry{merged, other},
		},
		"without sources only marks count": {
			blocks: []*tsdb.BlockEntry{s1, merged}, want: []*tsdb.BlockEntry{s1, merged},
		},
		"of two blocks with the same sources the lower ULID stays": {
			blocks: []*tsdb.BlockEntry{retried, merged}, sources: sources, want: []*tsdb.BlockEntry{merged},
		},
		"replacement is transitive": {
			blocks: []*tsdb.BlockEntry{s1, merged, other, day}, sources: sources, want: []*tsdb.BlockEntry{day},
		},
		"a marked compacted block replaces nothing": {
			blocks: []*tsdb.BlockEntry{s1, s2, s3, merged}, marks: mark(merged), sources: sources, want: []*tsdb.BlockEntry{s1, s2, s3},
		},
		"a block without sources is its own source": {
			blocks: []*tsdb.BlockEntry{noSources, day}, sources: sources, want: []*tsdb.BlockEntry{noSources, day},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			idx := &tsdb.Index{Version: tsdb.IndexVersion1, Blocks: tc.blocks, DeletionMarks: tc.marks}
			require.Equal(t, ids(tc.want), ids(BlocksToQuery(idx, tc.sources)))
		})
	}
}
