package blockstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"
)

const (
	// DeletionMarkFilename is the name of the deletion mark inside a block's directory.
	DeletionMarkFilename = "deletion-mark.json"
	// MarkersDir holds a copy of every deletion mark, so the marks can be listed with one Iter call instead of
	// looking into every block's directory.
	MarkersDir = "markers"
	// DeletionMarkVersion1 is the version of the deletion mark format written by MarkForDeletion.
	DeletionMarkVersion1 = 1

	deletionMarkSuffix = "-" + DeletionMarkFilename
)

var (
	// ErrDeletionMarkNotFound is wrapped by ReadDeletionMark's error when a block has no deletion mark.
	ErrDeletionMarkNotFound = errors.New("deletion mark not found")
	// ErrDeletionMarkCorrupted is wrapped by ReadDeletionMark's error when the mark cannot be decoded.
	ErrDeletionMarkCorrupted = errors.New("deletion mark corrupted")
)

// DeletionMark says a block is to be deleted. Blocks are deleted a delay after DeletionTime, so that
// queriers that loaded an older bucket index stop using the block before it disappears.
type DeletionMark struct {
	// ID is the marked block.
	ID ulid.ULID `json:"id"`
	// DeletionTime is when the block was first marked, in unix seconds.
	DeletionTime int64 `json:"deletion_time"`
	// Reason says why the block is deleted (compacted, retention, partial upload...), for operators.
	Reason string `json:"reason,omitempty"`
	// Version is the mark's format version.
	Version int `json:"version"`
}

// DeletionMarkPath returns the bucket path of a block's deletion mark in the markers directory.
func DeletionMarkPath(id ulid.ULID) string {
	return path.Join(MarkersDir, id.String()+deletionMarkSuffix)
}

// BlockDeletionMarkPath returns the bucket path of the deletion mark inside the block's directory.
func BlockDeletionMarkPath(id ulid.ULID) string {
	return path.Join(id.String(), DeletionMarkFilename)
}

// DeletionMarkIDFromPath returns the block ULID of a path in the markers directory, and false when the path
// is not a deletion mark.
func DeletionMarkIDFromPath(name string) (ulid.ULID, bool) {
	base, ok := strings.CutPrefix(name, MarkersDir+"/")
	if !ok {
		return ulid.ULID{}, false
	}
	base, ok = strings.CutSuffix(base, deletionMarkSuffix)
	if !ok {
		return ulid.ULID{}, false
	}
	id, err := ulid.ParseStrict(base)
	return id, err == nil
}

// MarkForDeletion marks block id for deletion, writing both the mark in the block's directory and the one
// in the markers directory. Marking an already marked block keeps the first deletion time and reason, so
// repeating a mark (after a crash, or from another compactor) does not postpone the deletion. Partial
// blocks can be marked too: they have no meta.json, so the block's existence is not checked.
func MarkForDeletion(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, reason string, now time.Time) error {
	mark := &DeletionMark{ID: id, DeletionTime: now.Unix(), Reason: reason, Version: DeletionMarkVersion1}
	// The markers copy is written last, so it is checked first: when it exists, both copies were written.
	for _, p := range []string{DeletionMarkPath(id), BlockDeletionMarkPath(id)} {
		existing, err := readDeletionMark(ctx, bkt, p, id)
		if errors.Is(err, ErrDeletionMarkNotFound) {
			continue
		}
		if err != nil && !errors.Is(err, ErrDeletionMarkCorrupted) {
			return err
		}
		if err == nil {
			mark = existing
			break
		}
		// A corrupt mark is rewritten: the intent to delete is known, only its first time is lost.
	}
	b, err := json.Marshal(mark)
	if err != nil {
		return fmt.Errorf("encode deletion mark of block %s: %w", id, err)
	}
	// The block's own copy first: the markers copy is what the bucket index lists, and it should only appear
	// once the mark is complete.
	for _, p := range []string{BlockDeletionMarkPath(id), DeletionMarkPath(id)} {
		if err := bkt.Upload(ctx, p, bytes.NewReader(b)); err != nil {
			return fmt.Errorf("upload deletion mark %s: %w", p, err)
		}
	}
	return nil
}

// ReadDeletionMark reads the deletion mark of block id from the markers directory. It returns an error
// wrapping ErrDeletionMarkNotFound when the block is not marked, and one wrapping ErrDeletionMarkCorrupted
// when the mark cannot be decoded or marks another block.
func ReadDeletionMark(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (*DeletionMark, error) {
	return readDeletionMark(ctx, bkt, DeletionMarkPath(id), id)
}

func readDeletionMark(ctx context.Context, bkt objstore.BucketReader, name string, id ulid.ULID) (*DeletionMark, error) {
	r, err := bkt.Get(ctx, name)
	if err != nil {
		if bkt.IsObjNotFoundErr(err) {
			return nil, fmt.Errorf("%s: %w", name, ErrDeletionMarkNotFound)
		}
		return nil, fmt.Errorf("get deletion mark %s: %w", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read deletion mark %s: %w", name, err)
	}
	var m DeletionMark
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDeletionMarkCorrupted, name, err)
	}
	if m.Version != DeletionMarkVersion1 {
		return nil, fmt.Errorf("%w: %s: version %d, want %d", ErrDeletionMarkCorrupted, name, m.Version, DeletionMarkVersion1)
	}
	if m.ID != id {
		return nil, fmt.Errorf("%w: %s: it marks block %s", ErrDeletionMarkCorrupted, name, m.ID)
	}
	return &m, nil
}

// DeleteBlock removes block id from the bucket. meta.json goes first, so that an interrupted deletion leaves
// a partial block that readers skip; the deletion marks go last, so that the block stays listed as marked
// until nothing of it is left and a later call can finish the job. Missing files are not an error.
func DeleteBlock(ctx context.Context, bkt objstore.Bucket, id ulid.ULID) error {
	del := func(name string) error {
		if err := bkt.Delete(ctx, name); err != nil && !bkt.IsObjNotFoundErr(err) {
			return fmt.Errorf("delete %s: %w", name, err)
		}
		return nil
	}
	if err := del(MetaPath(id)); err != nil {
		return err
	}
	markPath := BlockDeletionMarkPath(id)
	var files []string
	err := bkt.Iter(ctx, id.String()+"/", func(name string) error {
		if name != markPath {
			files = append(files, name)
		}
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return fmt.Errorf("list files of block %s: %w", id, err)
	}
	for _, f := range files {
		if err := del(f); err != nil {
			return err
		}
	}
	if err := del(markPath); err != nil {
		return err
	}
	return del(DeletionMarkPath(id))
}
