package compactor

import (
	"cmp"
	"slices"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// Group is a set of blocks to merge into one.
type Group struct {
	// MinTime and MaxTime (exclusive) are the time range of the result: the blocks' span for a vertical
	// group, the aligned range for a horizontal one.
	MinTime, MaxTime int64
	// Blocks are the inputs, sorted by MinTime then ID.
	Blocks []*blockstore.BlockEntry
	// Vertical is true when the blocks overlap (replica copies, out-of-order blocks): their series are
	// merged and duplicate samples dropped.
	Vertical bool
}

// Plan returns the next compactions to run over a tenant's blocks, which must leave out blocks marked for
// deletion or replaced by another block. ranges are the block ranges in milliseconds, smallest first.
//
// Overlapping blocks come first: each set of blocks that overlap (directly or through others) is one
// vertical group, and nothing else is planned until they are merged. Then, for the smallest range above
// the first that has work, each aligned range holding two or more blocks, all inside it and none
// overlapping, becomes a horizontal group once the range is complete: its blocks cover it without a gap,
// or some block starts at or after its end, so no more data will come for it. Callers run the groups and
// plan again until Plan returns nothing, so a pass goes from 2h blocks to 24h blocks in one go.
func Plan(blocks []*blockstore.BlockEntry, ranges []int64) []Group {
	sorted := slices.Clone(blocks)
	slices.SortFunc(sorted, compareBlocks)
	if groups := planVertical(sorted); len(groups) > 0 {
		return groups
	}
	var newestMinTime int64
	for i, b := range sorted {
		if i == 0 || b.MinTime > newestMinTime {
			newestMinTime = b.MinTime
		}
	}
	for _, r := range ranges[min(1, len(ranges)):] {
		if groups := planHorizontal(sorted, r, newestMinTime); len(groups) > 0 {
			return groups
		}
	}
	return nil
}

func compareBlocks(a, b *blockstore.BlockEntry) int {
	if c := cmp.Compare(a.MinTime, b.MinTime); c != 0 {
		return c
	}
	return a.ID.Compare(b.ID)
}

// planVertical returns a group for each run of transitively overlapping blocks; sorted is sorted by MinTime.
func planVertical(sorted []*blockstore.BlockEntry) []Group {
	var groups []Group
	for i := 0; i < len(sorted); {
		g := Group{MinTime: sorted[i].MinTime, MaxTime: sorted[i].MaxTime, Blocks: []*blockstore.BlockEntry{sorted[i]}, Vertical: true}
		j := i + 1
		// MaxTime is exclusive: a block starting where another ends does not overlap it.
		for ; j < len(sorted) && sorted[j].MinTime < g.MaxTime; j++ {
			g.Blocks = append(g.Blocks, sorted[j])
			g.MaxTime = max(g.MaxTime, sorted[j].MaxTime)
		}
		if len(g.Blocks) > 1 {
			groups = append(groups, g)
		}
		i = j
	}
	return groups
}

// planHorizontal returns a group for each complete aligned range of size r holding several blocks;
// sorted is sorted by MinTime and has no overlapping blocks.
func planHorizontal(sorted []*blockstore.BlockEntry, r, newestMinTime int64) []Group {
	var groups []Group
	for i := 0; i < len(sorted); {
		start := alignDown(sorted[i].MinTime, r)
		end := start + r
		j := i
		inside := true
		for ; j < len(sorted) && sorted[j].MinTime < end; j++ {
			// A block crossing the range's end cannot be merged into it, nor can the range be merged
			// without it.
			inside = inside && sorted[j].MaxTime <= end
		}
		in := sorted[i:j]
		i = j
		if !inside || len(in) < 2 {
			continue
		}
		if !covers(in, start, end) && newestMinTime < end {
			continue // More blocks may still come for this range.
		}
		groups = append(groups, Group{MinTime: start, MaxTime: end, Blocks: slices.Clone(in)})
	}
	return groups
}

// covers reports whether blocks, sorted and not overlapping, span [start, end) without a gap.
func covers(blocks []*blockstore.BlockEntry, start, end int64) bool {
	next := start
	for _, b := range blocks {
		if b.MinTime != next {
			return false
		}
		next = b.MaxTime
	}
	return next == end
}

// alignDown returns the start of the range of size r that holds t; it rounds toward minus infinity so
// that blocks before 1970 align too.
func alignDown(t, r int64) int64 {
	if t >= 0 {
		return t - t%r
	}
	return -((-t + r - 1) / r * r)
}
