package blockstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/oklog/ulid/v2"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"github.com/thanos-io/objstore"
)

// Names of the files and directories of a block, locally and in the bucket.
const (
	MetaFilename       = "meta.json"
	BlockIndexFilename = "index"
	ChunksDirname      = "chunks"
	TombstonesFilename = "tombstones"
)

// MetaVersion1 is the only meta.json version Prometheus (and so Strata) writes.
const MetaVersion1 = 1

// Source says which component produced a block.
type Source string

// Block sources.
const (
	SourceIngester  Source = "ingester"
	SourceCompactor Source = "compactor"
	SourceUpload    Source = "upload"
)

// StrataMeta is the "strata" section of meta.json: where a block came from. Prometheus ignores it.
type StrataMeta struct {
	// TenantID owns the block's series.
	TenantID string `json:"tenant_id"`
	// IngesterID is the ingester that cut the block; empty for compacted and uploaded blocks.
	IngesterID string `json:"ingester_id,omitempty"`
	// Source is the component that wrote the block.
	Source Source `json:"source,omitempty"`
	// ReplicasDeduplicated is true for a compacted block whose inputs' replica copies were merged.
	ReplicasDeduplicated bool `json:"replicas_deduplicated,omitempty"`
	// HoldsUploadedData is true for a compacted block with an uploaded (backfilled) block among its
	// inputs: no ingester holds that data, so queriers read it however recent it is.
	HoldsUploadedData bool `json:"holds_uploaded_data,omitempty"`
	// Restored is true for a block copied back from a backup (stratatool bucket restore): the ingesters
	// that shipped it may be gone, so queriers read it however recent it is.
	Restored bool `json:"restored,omitempty"`
	// Exemplars is how many exemplars the block's exemplar file (ExemplarsFilename) holds; 0: no file.
	Exemplars int64 `json:"exemplars,omitempty"`
}

// UploadedData reports whether the block holds data that was uploaded or restored rather than shipped by
// a running ingester: no ingester answers for it.
func (m StrataMeta) UploadedData() bool {
	return m.Source == SourceUpload || m.HoldsUploadedData || m.Restored
}

// Meta is the content of a block's meta.json: Prometheus' fields, unchanged so Prometheus tools still read
// the file, plus Strata's section.
type Meta struct {
	promtsdb.BlockMeta
	Strata StrataMeta `json:"strata"`
}

var (
	// ErrMetaNotFound is wrapped by DownloadMeta's error when the block has no meta.json in the bucket: it
	// does not exist, or it is partial (meta.json is uploaded last and deleted first).
	ErrMetaNotFound = errors.New("block meta.json not found")
	// ErrMetaCorrupted is wrapped by the error of a meta.json that cannot be decoded, has an unsupported
	// version, or describes another block than the one it was read for.
	ErrMetaCorrupted = errors.New("block meta.json corrupted")
)

// MetaPath returns the bucket path of a block's meta.json.
func MetaPath(id ulid.ULID) string {
	return path.Join(id.String(), MetaFilename)
}

// ReadMetaFromDir reads the meta.json of the block in dir and checks that its ULID is the directory's name,
// since a block copied or renamed by hand would otherwise be shipped under the wrong name.
func ReadMetaFromDir(dir string) (*Meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, MetaFilename))
	if err != nil {
		return nil, fmt.Errorf("read block meta: %w", err)
	}
	m, err := decodeMeta(b)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", dir, err)
	}
	if name := filepath.Base(dir); m.ULID.String() != name {
		return nil, fmt.Errorf("%w: block %s: meta.json has ULID %s, not the directory name %s", ErrMetaCorrupted, dir, m.ULID, name)
	}
	return m, nil
}

// WriteToDir writes m as dir/meta.json. The file is replaced atomically so a crash never leaves a
// truncated meta.json, which would make the block unreadable.
func (m *Meta) WriteToDir(dir string) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, MetaFilename), b)
}

// DownloadMeta reads a block's meta.json from the bucket. Its error wraps ErrMetaNotFound when the file is
// missing, and ErrMetaCorrupted when the file is corrupt or describes another block.
func DownloadMeta(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (*Meta, error) {
	r, err := bkt.Get(ctx, MetaPath(id))
	if err != nil {
		if bkt.IsObjNotFoundErr(err) {
			return nil, fmt.Errorf("block %s: %w", id, ErrMetaNotFound)
		}
		return nil, fmt.Errorf("get meta.json of block %s: %w", id, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read meta.json of block %s: %w", id, err)
	}
	m, err := decodeMeta(b)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", id, err)
	}
	if m.ULID != id {
		return nil, fmt.Errorf("%w: block %s: meta.json has ULID %s", ErrMetaCorrupted, id, m.ULID)
	}
	return m, nil
}

// UploadMeta writes m as <ULID>/meta.json in the bucket. Upload it after every other file of the block:
// its presence is what says the block is complete.
func UploadMeta(ctx context.Context, bkt objstore.Bucket, m *Meta) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	if err := bkt.Upload(ctx, MetaPath(m.ULID), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("upload meta.json of block %s: %w", m.ULID, err)
	}
	return nil
}

func (m *Meta) encode() ([]byte, error) {
	if m.Version != MetaVersion1 {
		return nil, fmt.Errorf("block %s: meta.json version %d, want %d", m.ULID, m.Version, MetaVersion1)
	}
	// Indented like Prometheus writes it, so the file stays readable when inspected by hand.
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("encode meta.json of block %s: %w", m.ULID, err)
	}
	return b, nil
}

func decodeMeta(b []byte) (*Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMetaCorrupted, err)
	}
	if m.Version != MetaVersion1 {
		return nil, fmt.Errorf("%w: version %d is not supported, want %d", ErrMetaCorrupted, m.Version, MetaVersion1)
	}
	if m.ULID == (ulid.ULID{}) {
		return nil, fmt.Errorf("%w: no ULID", ErrMetaCorrupted)
	}
	return &m, nil
}

// writeFileAtomic writes b to a temporary file beside name, syncs it and renames it over name, so readers
// and crashes see either the old content or the new one.
func writeFileAtomic(name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fileutil.Replace(tmp, name)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
