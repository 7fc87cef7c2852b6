package blockstore

import (
	"github.com/oklog/ulid/v2"
)

// BlockSources maps a block to the level-1 blocks it was compacted from (its meta.json's
// Compaction.Sources). A block missing from the map counts as its own only source.
type BlockSources map[ulid.ULID][]ulid.ULID

// sourcesOf returns the sources of b; a block claiming none is treated as its own source, so a
// hand-made meta.json without sources is never taken as replaced by every other block.
func (s BlockSources) sourcesOf(id ulid.ULID) []ulid.ULID {
	if src := s[id]; len(src) > 0 {
		return src
	}
	return []ulid.ULID{id}
}

// BlocksToQuery returns the blocks of idx that queriers and store-gateways should read: those not marked
// for deletion and not replaced by another such block, i.e. whose sources are not all among another
// block's sources. With sources nil, the sources recorded in the index entries are used.
func BlocksToQuery(idx *Index, sources BlockSources) []*BlockEntry {
	if sources == nil {
		sources = BlockSources{}
		for _, b := range idx.Blocks {
			sources[b.ID] = b.Sources
		}
	}
	live := make([]*BlockEntry, 0, len(idx.Blocks))
	for _, b := range idx.Blocks {
		if !idx.IsMarkedForDeletion(b.ID) {
			live = append(live, b)
		}
	}
	replaced := ReplacedBlocks(live, sources)
	out := live[:0]
	for _, b := range live {
		if _, ok := replaced[b.ID]; !ok {
			out = append(out, b)
		}
	}
	return out
}

// ReplacedBlocks returns, for each block of blocks whose data another block of blocks already holds, the
// ID of that other block. Block A is replaced by B when A's sources are a subset of B's and B has more
// of them; with equal sources (two compactors raced, or one was retried) the lower ULID wins, so exactly
// one copy stays.
func ReplacedBlocks(blocks []*BlockEntry, sources BlockSources) map[ulid.ULID]ulid.ULID {
	// A block that replaces A holds all of A's sources, so in particular its first: only the blocks
	// holding that one need checking.
	bySource := map[ulid.ULID][]*BlockEntry{}
	for _, b := range blocks {
		for _, s := range sources.sourcesOf(b.ID) {
			bySource[s] = append(bySource[s], b)
		}
	}
	replaced := map[ulid.ULID]ulid.ULID{}
	for _, a := range blocks {
		src := sources.sourcesOf(a.ID)
		for _, b := range bySource[src[0]] {
			if b == a {
				continue
			}
			bsrc := sources.sourcesOf(b.ID)
			if len(bsrc) < len(src) || (len(bsrc) == len(src) && b.ID.Compare(a.ID) > 0) {
				continue
			}
			if containsAll(bsrc, src) {
				replaced[a.ID] = b.ID
				break
			}
		}
	}
	return replaced
}

// containsAll reports whether every ULID of sub is in set.
func containsAll(set, sub []ulid.ULID) bool {
	m := make(map[ulid.ULID]struct{}, len(set))
	for _, id := range set {
		m[id] = struct{}{}
	}
	for _, id := range sub {
		if _, ok := m[id]; !ok {
			return false
		}
	}
	return true
}
