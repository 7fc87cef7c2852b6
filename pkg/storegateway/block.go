package storegateway

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/querysharding"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// block is a loaded block: its index is on local disk (memory-mapped), its chunks stay in the bucket.
type block struct {
	tenant string
	meta   *blockstore.Meta
	dir    string
	index  *index.Reader
	// bkt is the tenant's bucket, where the block's chunks are read from.
	bkt objstore.BucketReader

	// inflight counts requests using the block. Requests join it only while the block is in the store's
	// map (under its lock), so once a sync has removed the block, Wait returns when the last one is done
	// and the memory-mapped index can be closed safely.
	inflight sync.WaitGroup
}

func (b *block) id() ulid.ULID { return b.meta.ULID }

// overlaps reports whether the block may hold samples in the inclusive range [mint, maxt]. A block's
// MaxTime is exclusive.
func (b *block) overlaps(mint, maxt int64) bool {
	return b.meta.MinTime <= maxt && mint < b.meta.MaxTime
}

// close waits for the requests using the block, then unmaps its index.
func (b *block) close() error {
	b.inflight.Wait()
	if err := b.index.Close(); err != nil {
		return fmt.Errorf("close index of block %s: %w", b.id(), err)
	}
	return nil
}

// postingsKey identifies the series references of a matcher set in one block.
type postingsKey struct {
	tenant   string
	block    ulid.ULID
	matchers string
}

func postingsSize(k postingsKey, refs []storage.SeriesRef) int64 {
	return int64(len(k.tenant)+len(k.matchers)+16) + int64(8*len(refs))
}

// matchersKey is a canonical text of a matcher set: the same matchers in another order share cache
// entries.
func matchersKey(ms []*labels.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	slices.Sort(parts)
	// 0xff cannot occur in valid UTF-8, so it separates matchers unambiguously.
	return strings.Join(parts, "\xff")
}

// postings returns the references of the series matching ms, in label order, from the postings cache or
// the index. No matchers select every series.
func (b *block) postings(ctx context.Context, ms []*labels.Matcher, cache *lruCache[postingsKey, []storage.SeriesRef]) ([]storage.SeriesRef, error) {
	key := postingsKey{tenant: b.tenant, block: b.id(), matchers: matchersKey(ms)}
	if refs, ok := cache.Get(key); ok {
		return refs, nil
	}
	var (
		p   index.Postings
		err error
	)
	if len(ms) == 0 {
		name, value := index.AllPostingsKey()
		p, err = b.index.Postings(ctx, name, value)
	} else {
		p, err = promtsdb.PostingsForMatchers(ctx, b.index, ms...)
	}
	if err != nil {
		return nil, fmt.Errorf("postings of block %s: %w", b.id(), err)
	}
	// Expanding copies the references out of the memory-mapped index, so the cached slice outlives it.
	refs, err := index.ExpandPostings(p)
	if err != nil {
		return nil, fmt.Errorf("postings of block %s: %w", b.id(), err)
	}
	cache.Add(key, refs)
	return refs, nil
}

// blockSeries is one series of one block with its chunks in the queried time range; the chunk data is
// still in the bucket.
type blockSeries struct {
	lset   labels.Labels
	block  *block
	chunks []chunks.Meta
}

// selectSeries returns the series of shard matching ms that have chunks overlapping [mint, maxt], in label
// order (a block's index holds its series sorted by labels): the first atMost of them, or all when atMost
// is 0.
func (b *block) selectSeries(ctx context.Context, ms []*labels.Matcher, shard querysharding.Shard, mint, maxt int64, atMost int,
	cache *lruCache[postingsKey, []storage.SeriesRef]) ([]blockSeries, error) {
	refs, err := b.postings(ctx, ms, cache)
	if err != nil {
		return nil, err
	}
	var (
		out     []blockSeries
		builder labels.ScratchBuilder
		scratch labels.Labels
		metas   []chunks.Meta
	)
	for i, ref := range refs {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := b.index.Series(ref, &builder, &metas); err != nil {
			return nil, fmt.Errorf("read series of block %s: %w", b.id(), err)
		}
		var kept []chunks.Meta
		for _, m := range metas {
			if m.MinTime <= maxt && m.MaxTime >= mint {
				kept = append(kept, m)
			}
		}
		if len(kept) == 0 {
			continue
		}
		if shard.Sharded() {
			// Hashed in place, without copying: most series of a shard query are not in its shard.
			builder.Overwrite(&scratch)
			if !shard.Contains(scratch) {
				continue
			}
		}
		// Labels() copies the strings out of the memory-mapped symbol table.
		out = append(out, blockSeries{lset: builder.Labels(), block: b, chunks: kept})
		if len(out) == atMost {
			break
		}
	}
	return out, nil
}
