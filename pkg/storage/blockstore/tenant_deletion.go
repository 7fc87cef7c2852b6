package blockstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/thanos-io/objstore"
)

// TenantDeletionMarkPath is the path of a tenant's deletion mark, relative to the tenant's bucket (Mimir's).
var TenantDeletionMarkPath = path.Join(MarkersDir, "tenant-deletion-mark.json")

// ErrTenantDeletionMarkNotFound is returned by ReadTenantDeletionMark when the tenant is not marked.
var ErrTenantDeletionMarkNotFound = errors.New("tenant deletion mark not found")

// TenantDeletionMark says a tenant is deleted: the compactor deletes all its blocks and its bucket index,
// ingesters drop its TSDB. It stays in the bucket after that, so that data written later is deleted too.
type TenantDeletionMark struct {
	// DeletionTime is when the deletion was requested, in unix seconds.
	DeletionTime int64 `json:"deletion_time"`
	// FinishedTime is when the compactor found no block of the tenant left, in unix seconds; 0 before.
	FinishedTime int64 `json:"finished_time,omitempty"`
}

// WriteTenantDeletionMark writes m to the tenant's bucket.
func WriteTenantDeletionMark(ctx context.Context, bkt objstore.Bucket, m *TenantDeletionMark) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode tenant deletion mark: %w", err)
	}
	if err := bkt.Upload(ctx, TenantDeletionMarkPath, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("upload tenant deletion mark: %w", err)
	}
	return nil
}

// ReadTenantDeletionMark reads the tenant's deletion mark; ErrTenantDeletionMarkNotFound when there is none.
func ReadTenantDeletionMark(ctx context.Context, bkt objstore.BucketReader) (*TenantDeletionMark, error) {
	r, err := bkt.Get(ctx, TenantDeletionMarkPath)
	if err != nil {
		if bkt.IsObjNotFoundErr(err) {
			return nil, ErrTenantDeletionMarkNotFound
		}
		return nil, fmt.Errorf("get tenant deletion mark: %w", err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return nil, fmt.Errorf("read tenant deletion mark: %w", err)
	}
	var m TenantDeletionMark
	if err := json.Unmarshal(b, &m); err != nil {
		// A corrupt mark still says the tenant is deleted: the intent is known, only its time is lost.
		return &TenantDeletionMark{}, nil
	}
	return &m, nil
}
