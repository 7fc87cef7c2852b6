// Package buckettest holds test aids for code that uses object storage; only tests import it, so it is
// never part of the binary.
package buckettest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/thanos-io/objstore"
)

// ErrInjectedFailure is what every operation of a failing ErrorInjectedBucket returns, wrapped with the
// operation and object name; match it with errors.Is.
var ErrInjectedFailure = errors.New("object storage unavailable (injected failure)")

// ErrorInjectedBucket is a bucket that behaves like the one it wraps until SetFailing(true),
// and then fails every operation with ErrInjectedFailure, as an object store outage would. Other
// packages use it to test how they survive outages. It is safe for concurrent use; readers opened
// before a failure started keep working.
type ErrorInjectedBucket struct {
	bkt     objstore.Bucket
	failing atomic.Bool
}

var _ objstore.Bucket = (*ErrorInjectedBucket)(nil)

// NewErrorInjectedBucket wraps bkt; the result does not fail until SetFailing(true).
func NewErrorInjectedBucket(bkt objstore.Bucket) *ErrorInjectedBucket {
	return &ErrorInjectedBucket{bkt: bkt}
}

// SetFailing starts (true) or ends (false) the outage.
func (b *ErrorInjectedBucket) SetFailing(failing bool) {
	b.failing.Store(failing)
}

func (b *ErrorInjectedBucket) fail(op, name string) error {
	if b.failing.Load() {
		return fmt.Errorf("%s %q: %w", op, name, ErrInjectedFailure)
	}
	return nil
}

// Iter lists like the wrapped bucket, or fails while the outage lasts.
func (b *ErrorInjectedBucket) Iter(ctx context.Context, dir string, f func(string) error, options ...objstore.IterOption) error {
	if err := b.fail("iter", dir); err != nil {
		return err
	}
	return b.bkt.Iter(ctx, dir, f, options...)
}

// IterWithAttributes lists like the wrapped bucket, or fails while the outage lasts.
func (b *ErrorInjectedBucket) IterWithAttributes(ctx context.Context, dir string, f func(objstore.IterObjectAttributes) error, options ...objstore.IterOption) error {
	if err := b.fail("iter", dir); err != nil {
		return err
	}
	return b.bkt.IterWithAttributes(ctx, dir, f, options...)
}

// Get reads like the wrapped bucket, or fails while the outage lasts.
func (b *ErrorInjectedBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := b.fail("get", name); err != nil {
		return nil, err
	}
	return b.bkt.Get(ctx, name)
}

// GetRange reads like the wrapped bucket, or fails while the outage lasts.
func (b *ErrorInjectedBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := b.fail("get_range", name); err != nil {
		return nil, err
	}
	return b.bkt.GetRange(ctx, name, off, length)
}

// Exists checks like the wrapped bucket, or fails while the outage lasts.
func (b *ErrorInjectedBucket) Exists(ctx context.Context, name string) (bool, error) {
	if err := b.fail("exists", name); err != nil {
		return false, err
	}
	return b.bkt.Exists(ctx, name)
}

// Attributes reads like the wrapped bucket, or fails while the outage lasts.
func (b *ErrorInjectedBucket) Attributes(ctx context.Context, name string) (objstore.ObjectAttributes, error) {
	if err := b.fail("attributes", name); err != nil {
		return objstore.ObjectAttributes{}, err
	}
	return b.bkt.Attributes(ctx, name)
}

// Upload writes like the wrapped bucket, or fails while the outage lasts.
func (b *ErrorInjectedBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	if err := b.fail("upload", name); err != nil {
		return err
	}
	return b.bkt.Upload(ctx, name, r, opts...)
}

// Delete deletes like the wrapped bucket, or fails while the outage lasts.
func (b *ErrorInjectedBucket) Delete(ctx context.Context, name string) error {
	if err := b.fail("delete", name); err != nil {
		return err
	}
	return b.bkt.Delete(ctx, name)
}

// SupportedIterOptions is the wrapped bucket's.
func (b *ErrorInjectedBucket) SupportedIterOptions() []objstore.IterOptionType {
	return b.bkt.SupportedIterOptions()
}

// IsObjNotFoundErr is the wrapped bucket's: an injected failure is never "not found".
func (b *ErrorInjectedBucket) IsObjNotFoundErr(err error) bool { return b.bkt.IsObjNotFoundErr(err) }

// IsAccessDeniedErr is the wrapped bucket's.
func (b *ErrorInjectedBucket) IsAccessDeniedErr(err error) bool { return b.bkt.IsAccessDeniedErr(err) }

// Provider is the wrapped bucket's.
func (b *ErrorInjectedBucket) Provider() objstore.ObjProvider { return b.bkt.Provider() }

// Name is the wrapped bucket's.
func (b *ErrorInjectedBucket) Name() string { return b.bkt.Name() }

// Close closes the wrapped bucket.
func (b *ErrorInjectedBucket) Close() error { return b.bkt.Close() }
