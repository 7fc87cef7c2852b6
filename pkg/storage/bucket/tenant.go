package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// tenantBucket is the part of a bucket under "<tenant>/". Every name it takes and returns is relative
// to that directory.
type tenantBucket struct {
	bkt      objstore.Bucket
	tenantID string
	prefix   string // tenantID + "/"
	idErr    error  // set when tenantID is invalid: every operation then fails with it
}

var _ objstore.Bucket = (*tenantBucket)(nil)

// NewTenantBucket returns the view of bkt that holds one tenant's objects: object "x" of the view is
// "<tenantID>/x" in bkt, Iter lists inside the tenant's directory and returns names relative to it,
// and names that could leave the directory ("..", a leading "/") are rejected. tenantID must pass
// tenant.ValidateID; if it does not, every operation returns that error (it comes from a request, so
// failing the request beats crashing the process). Close does not close bkt, which the view does not own.
func NewTenantBucket(bkt objstore.Bucket, tenantID string) objstore.Bucket {
	b := &tenantBucket{bkt: bkt, tenantID: tenantID, prefix: tenantID + "/"}
	if err := tenant.ValidateID(tenantID); err != nil {
		b.idErr = fmt.Errorf("tenant bucket: %w", err)
	}
	return b
}

// objectName maps a name of the view to the name in the wrapped bucket.
func (b *tenantBucket) objectName(name string) (string, error) {
	if b.idErr != nil {
		return "", b.idErr
	}
	if name == "" {
		return "", errors.New("object name is empty")
	}
	if err := checkRelativePath(name, false); err != nil {
		return "", err
	}
	return b.prefix + name, nil
}

// dirName maps a directory of the view ("" is the tenant's root) to the directory in the wrapped bucket.
func (b *tenantBucket) dirName(dir string) (string, error) {
	if b.idErr != nil {
		return "", b.idErr
	}
	if dir == "" {
		return b.prefix, nil
	}
	if err := checkRelativePath(dir, true); err != nil {
		return "", err
	}
	return b.prefix + dir, nil
}

// checkRelativePath rejects names whose segments would resolve outside the tenant's directory on a
// filesystem backend ("..") or address a different object than they name (".", empty segments).
// A directory may end with "/".
func checkRelativePath(name string, isDir bool) error {
	if isDir {
		name = strings.TrimSuffix(name, objstore.DirDelim)
	}
	for seg := range strings.SplitSeq(name, objstore.DirDelim) {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("invalid object name %q: it must be a relative path without empty, \".\" or \"..\" segments", name)
		}
	}
	return nil
}

// relativeName strips the tenant's prefix from a name the wrapped bucket returned.
func (b *tenantBucket) relativeName(name string) (string, error) {
	rel, ok := strings.CutPrefix(name, b.prefix)
	if !ok {
		return "", fmt.Errorf("bucket returned %q outside tenant directory %q", name, b.prefix)
	}
	return rel, nil
}

func (b *tenantBucket) Iter(ctx context.Context, dir string, f func(string) error, options ...objstore.IterOption) error {
	full, err := b.dirName(dir)
	if err != nil {
		return err
	}
	return b.bkt.Iter(ctx, full, func(name string) error {
		rel, err := b.relativeName(name)
		if err != nil {
			return err
		}
		return f(rel)
	}, options...)
}

func (b *tenantBucket) IterWithAttributes(ctx context.Context, dir string, f func(objstore.IterObjectAttributes) error, options ...objstore.IterOption) error {
	full, err := b.dirName(dir)
	if err != nil {
		return err
	}
	return b.bkt.IterWithAttributes(ctx, full, func(attrs objstore.IterObjectAttributes) error {
		rel, err := b.relativeName(attrs.Name)
		if err != nil {
			return err
		}
		attrs.Name = rel
		return f(attrs)
	}, options...)
}

func (b *tenantBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	full, err := b.objectName(name)
	if err != nil {
		return nil, err
	}
	return b.bkt.Get(ctx, full)
}

func (b *tenantBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	full, err := b.objectName(name)
	if err != nil {
		return nil, err
	}
	return b.bkt.GetRange(ctx, full, off, length)
}

func (b *tenantBucket) Exists(ctx context.Context, name string) (bool, error) {
	full, err := b.objectName(name)
	if err != nil {
		return false, err
	}
	return b.bkt.Exists(ctx, full)
}

func (b *tenantBucket) Attributes(ctx context.Context, name string) (objstore.ObjectAttributes, error) {
	full, err := b.objectName(name)
	if err != nil {
		return objstore.ObjectAttributes{}, err
	}
	return b.bkt.Attributes(ctx, full)
}

func (b *tenantBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	full, err := b.objectName(name)
	if err != nil {
		return err
	}
	return b.bkt.Upload(ctx, full, r, opts...)
}

func (b *tenantBucket) Delete(ctx context.Context, name string) error {
	full, err := b.objectName(name)
	if err != nil {
		return err
	}
	return b.bkt.Delete(ctx, full)
}

func (b *tenantBucket) SupportedIterOptions() []objstore.IterOptionType {
	return b.bkt.SupportedIterOptions()
}
func (b *tenantBucket) IsObjNotFoundErr(err error) bool  { return b.bkt.IsObjNotFoundErr(err) }
func (b *tenantBucket) IsAccessDeniedErr(err error) bool { return b.bkt.IsAccessDeniedErr(err) }
func (b *tenantBucket) Provider() objstore.ObjProvider   { return b.bkt.Provider() }

// Name is the wrapped bucket's name followed by the tenant, for logs.
func (b *tenantBucket) Name() string { return b.bkt.Name() + "/" + b.tenantID }

// Close does nothing: the wrapped bucket is shared by every tenant's view and closed by its owner.
func (b *tenantBucket) Close() error { return nil }

// ListTenants returns, sorted, the top-level directories of bkt that are valid tenant IDs: the tenants
// that have objects. Other top-level entries (objects, directories with invalid names) are not
// tenants and are skipped.
func ListTenants(ctx context.Context, bkt objstore.Bucket) ([]string, error) {
	var tenants []string
	err := bkt.Iter(ctx, "", func(name string) error {
		dir, isDir := strings.CutSuffix(name, objstore.DirDelim)
		if isDir && tenant.ValidateID(dir) == nil {
			tenants = append(tenants, dir)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tenants in bucket %s: %w", bkt.Name(), err)
	}
	slices.Sort(tenants)
	return tenants, nil
}

// ValidateOwnPrefix checks the prefix under which a component keeps its own objects in the blocks
// bucket (flag names it in errors): a relative path of plain segments whose first segment no tenant
// can have, so that listing the bucket's tenants never takes it for one and its objects never mix
// with a tenant's blocks.
func ValidateOwnPrefix(flag, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("-%s must not be empty: the objects would be mixed with the tenants' blocks", flag)
	}
	segments := strings.Split(prefix, objstore.DirDelim)
	for _, seg := range segments {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("-%s %q must be a relative path without empty, \".\" or \"..\" segments", flag, prefix)
		}
	}
	if tenant.ValidateID(segments[0]) == nil {
		return fmt.Errorf("-%s %q starts with %q, which could be a tenant's directory: start it with one of %s",
			flag, prefix, segments[0], strings.Join(tenant.ReservedIDs, ", "))
	}
	return nil
}
