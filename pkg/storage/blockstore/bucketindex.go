package blockstore

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"
)

const (
	// BucketIndexFilename is the bucket path of a tenant's bucket index, relative to the tenant's bucket.
	BucketIndexFilename = "bucket-index.json.gz"
	// IndexVersion1 is the bucket index format written by WriteIndex.
	IndexVersion1 = 1
)

var (
	// ErrIndexNotFound is returned by ReadIndex when the tenant has no bucket index yet.
	ErrIndexNotFound = errors.New("bucket index not found")
	// ErrIndexCorrupted is wrapped by ReadIndex's error when the index cannot be decoded.
	ErrIndexCorrupted = errors.New("bucket index corrupted")
)

// Index is a tenant's bucket index: the complete blocks and the deletion marks in its bucket, so that
// queriers and store-gateways learn them with one read instead of listing the bucket.
type Index struct {
	// Version is the index format, IndexVersion1.
	Version int `json:"version"`
	// Blocks are the complete blocks (with a meta.json), sorted by MinTime then ID.
	Blocks []*BlockEntry `json:"blocks"`
	// DeletionMarks are the marks of blocks still in the bucket, sorted by ID.
	DeletionMarks []*DeletionMark `json:"deletion_marks"`
	// UpdatedAt is when the index was built, in unix seconds.
	UpdatedAt int64 `json:"updated_at"`
}

// BlockEntry is what the index keeps of a block's meta.json.
type BlockEntry struct {
	// ID is the block's ULID.
	ID ulid.ULID `json:"id"`
	// MinTime and MaxTime are the block's time range in milliseconds; MaxTime is exclusive, as in Prometheus.
	MinTime int64 `json:"min_time"`
	MaxTime int64 `json:"max_time"`
	// Source is the component that wrote the block; empty for blocks without a Strata section.
	Source Source `json:"source,omitempty"`
	// CompactionLevel is 1 for blocks cut from an ingester's head, higher for compacted blocks.
	CompactionLevel int `json:"compaction_level"`
	// IngesterID is the ingester that cut the block, for level-1 blocks.
	IngesterID string `json:"ingester_id,omitempty"`
	// Sources are the level-1 blocks this block holds the data of (meta.json's Compaction.Sources), so
	// readers can skip a block that a compacted one replaces even before its deletion mark exists.
	Sources []ulid.ULID `json:"sources,omitempty"`
	// UploadedData is true when the block holds uploaded (backfilled) data, which no ingester has.
	UploadedData bool `json:"uploaded_data,omitempty"`
	// HasExemplars is true when the block has an exemplar file.
	HasExemplars bool `json:"has_exemplars,omitempty"`
	// UploadedAt is when the block's meta.json was written to the bucket, in unix seconds.
	UploadedAt int64 `json:"uploaded_at"`
}

// BlocksInRange returns the blocks overlapping [minT, maxT] (milliseconds, both inclusive), including blocks
// marked for deletion: whether to still query those is the caller's decision (see IsMarkedForDeletion).
func (idx *Index) BlocksInRange(minT, maxT int64) []*BlockEntry {
	var blocks []*BlockEntry
	for _, b := range idx.Blocks {
		if b.MinTime <= maxT && minT < b.MaxTime {
			blocks = append(blocks, b)
		}
	}
	return blocks
}

// IsMarkedForDeletion reports whether the index holds a deletion mark for block id.
func (idx *Index) IsMarkedForDeletion(id ulid.ULID) bool {
	return idx.DeletionMark(id) != nil
}

// DeletionMark returns the deletion mark of block id, or nil when the block is not marked.
func (idx *Index) DeletionMark(id ulid.ULID) *DeletionMark {
	// A linear scan: marks only live for the deletion delay, so the list stays short.
	for _, m := range idx.DeletionMarks {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// WriteIndex writes idx to the tenant's bucket as gzipped JSON at BucketIndexFilename.
func WriteIndex(ctx context.Context, bkt objstore.Bucket, idx *Index) error {
	if idx.Version != IndexVersion1 {
		return fmt.Errorf("write bucket index: version %d, want %d", idx.Version, IndexVersion1)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	if err := json.NewEncoder(gz).Encode(idx); err != nil {
		return fmt.Errorf("encode bucket index: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("compress bucket index: %w", err)
	}
	if err := bkt.Upload(ctx, BucketIndexFilename, &buf); err != nil {
		return fmt.Errorf("upload bucket index: %w", err)
	}
	return nil
}

// ReadIndex reads the tenant's bucket index. It returns ErrIndexNotFound when there is none, and an error
// wrapping ErrIndexCorrupted when it cannot be decoded or has an unknown version.
func ReadIndex(ctx context.Context, bkt objstore.BucketReader) (*Index, error) {
	r, err := bkt.Get(ctx, BucketIndexFilename)
	if err != nil {
		if bkt.IsObjNotFoundErr(err) {
			return nil, ErrIndexNotFound
		}
		return nil, fmt.Errorf("get bucket index: %w", err)
	}
	defer r.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not gzip: %w", ErrIndexCorrupted, BucketIndexFilename, err)
	}
	defer gz.Close()
	b, err := io.ReadAll(gz)
	if err != nil {
		return nil, fmt.Errorf("%w: decompress %s: %w", ErrIndexCorrupted, BucketIndexFilename, err)
	}
	var idx Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%w: decode %s: %w", ErrIndexCorrupted, BucketIndexFilename, err)
	}
	if idx.Version != IndexVersion1 {
		return nil, fmt.Errorf("%w: %s has version %d, want %d", ErrIndexCorrupted, BucketIndexFilename, idx.Version, IndexVersion1)
	}
	return &idx, nil
}

// Updater builds a tenant's bucket index from the content of its bucket.
type Updater struct {
	bkt    objstore.BucketReader
	logger *slog.Logger
	now    func() time.Time
}

// NewUpdater returns an Updater for a tenant's bucket (already prefixed with the tenant); logger may be nil.
func NewUpdater(bkt objstore.BucketReader, logger *slog.Logger) *Updater {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Updater{bkt: bkt, logger: logger, now: time.Now}
}

// UpdateIndex returns a new index of the bucket. Entries of old (nil for none) are reused rather than read
// again: meta.json and deletion marks never change once written. Blocks without a meta.json are partial
// (being uploaded, or being deleted) and are left out; entries whose block is gone are dropped.
func (u *Updater) UpdateIndex(ctx context.Context, old *Index) (*Index, error) {
	if old == nil {
		old = &Index{}
	}
	dirs, err := u.listBlockDirs(ctx)
	if err != nil {
		return nil, err
	}
	blocks, err := u.updateBlocks(ctx, old, dirs)
	if err != nil {
		return nil, err
	}
	marks, err := u.updateDeletionMarks(ctx, old, dirs)
	if err != nil {
		return nil, err
	}
	return &Index{
		Version:       IndexVersion1,
		Blocks:        blocks,
		DeletionMarks: marks,
		UpdatedAt:     u.now().Unix(),
	}, nil
}

// listBlockDirs returns the ULIDs of the block directories in the bucket, complete or not.
func (u *Updater) listBlockDirs(ctx context.Context) (map[ulid.ULID]struct{}, error) {
	dirs := map[ulid.ULID]struct{}{}
	err := u.bkt.Iter(ctx, "", func(name string) error {
		name, isDir := strings.CutSuffix(name, "/")
		if !isDir {
			return nil
		}
		if id, err := ulid.ParseStrict(name); err == nil {
			dirs[id] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	return dirs, nil
}

func (u *Updater) updateBlocks(ctx context.Context, old *Index, dirs map[ulid.ULID]struct{}) ([]*BlockEntry, error) {
	known := make(map[ulid.ULID]*BlockEntry, len(old.Blocks))
	for _, b := range old.Blocks {
		known[b.ID] = b
	}
	blocks := make([]*BlockEntry, 0, len(dirs))
	for id := range dirs {
		if b, ok := known[id]; ok {
			blocks = append(blocks, b)
			continue
		}
		b, err := u.readBlockEntry(ctx, id)
		if errors.Is(err, ErrMetaNotFound) {
			u.logger.Warn("skipped partial block: no meta.json", "block", id)
			continue
		}
		if errors.Is(err, ErrMetaCorrupted) {
			// One bad block must not stop the tenant's index from being updated.
			u.logger.Warn("skipped block with corrupt meta.json", "block", id, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, b)
	}
	slices.SortFunc(blocks, func(a, b *BlockEntry) int {
		if c := cmp.Compare(a.MinTime, b.MinTime); c != 0 {
			return c
		}
		return a.ID.Compare(b.ID)
	})
	return blocks, nil
}

func (u *Updater) readBlockEntry(ctx context.Context, id ulid.ULID) (*BlockEntry, error) {
	m, err := DownloadMeta(ctx, u.bkt, id)
	if err != nil {
		return nil, err
	}
	attrs, err := u.bkt.Attributes(ctx, MetaPath(id))
	if err != nil {
		if u.bkt.IsObjNotFoundErr(err) {
			// Deleted between the two reads: the block is being deleted.
			return nil, fmt.Errorf("block %s: %w", id, ErrMetaNotFound)
		}
		return nil, fmt.Errorf("get attributes of meta.json of block %s: %w", id, err)
	}
	return &BlockEntry{
		ID:              id,
		MinTime:         m.MinTime,
		MaxTime:         m.MaxTime,
		Source:          m.Strata.Source,
		CompactionLevel: m.Compaction.Level,
		IngesterID:      m.Strata.IngesterID,
		Sources:         m.Compaction.Sources,
		UploadedData:    m.Strata.UploadedData(),
		HasExemplars:    m.Strata.Exemplars > 0,
		UploadedAt:      attrs.LastModified.Unix(),
	}, nil
}

func (u *Updater) updateDeletionMarks(ctx context.Context, old *Index, dirs map[ulid.ULID]struct{}) ([]*DeletionMark, error) {
	known := make(map[ulid.ULID]*DeletionMark, len(old.DeletionMarks))
	for _, m := range old.DeletionMarks {
		known[m.ID] = m
	}
	var ids []ulid.ULID
	err := u.bkt.Iter(ctx, MarkersDir+"/", func(name string) error {
		id, ok := DeletionMarkIDFromPath(name)
		// A mark without its block is left over from an interrupted deletion: nothing to delete any more.
		if _, exists := dirs[id]; ok && exists {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list deletion marks: %w", err)
	}
	marks := make([]*DeletionMark, 0, len(ids))
	for _, id := range ids {
		if m, ok := known[id]; ok {
			marks = append(marks, m)
			continue
		}
		m, err := ReadDeletionMark(ctx, u.bkt, id)
		switch {
		case errors.Is(err, ErrDeletionMarkNotFound):
			continue // Deleted since the listing: the block's deletion just finished.
		case errors.Is(err, ErrDeletionMarkCorrupted):
			u.logger.Warn("skipped corrupt deletion mark", "block", id, "err", err)
			continue
		case err != nil:
			return nil, err
		}
		marks = append(marks, m)
	}
	slices.SortFunc(marks, func(a, b *DeletionMark) int { return a.ID.Compare(b.ID) })
	return marks, nil
}
