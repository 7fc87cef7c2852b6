package bucket

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
)

// tempPrefix starts the name of an object being written by the filesystem bucket.
const tempPrefix = ".strata-upload-"

// atomicFilesystemBucket is objstore's filesystem bucket with uploads that replace an object at once.
// objstore's own Upload truncates the file and then copies into it, so a reader racing a rewrite (a
// querier reading the bucket index the compactor is rewriting, a store-gateway reading meta.json) sees an
// empty or cut object. Here the object is written under a temporary name beside it and renamed over it;
// listings skip the temporary names.
type atomicFilesystemBucket struct {
	objstore.Bucket
	root string
}

func newFilesystemBucket(dir string) (objstore.Bucket, error) {
	b, err := filesystem.NewBucket(dir)
	if err != nil {
		return nil, err
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &atomicFilesystemBucket{Bucket: b, root: root}, nil
}

func (b *atomicFilesystemBucket) Upload(ctx context.Context, name string, r io.Reader, _ ...objstore.ObjectUploadOption) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	file := filepath.Join(b.root, filepath.FromSlash(name))
	if !strings.HasPrefix(file, b.root+string(filepath.Separator)) {
		return fmt.Errorf("object name %q is outside the bucket", name)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), tempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, r); err != nil {
		return fmt.Errorf("copy to %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

func (b *atomicFilesystemBucket) Iter(ctx context.Context, dir string, f func(string) error, options ...objstore.IterOption) error {
	return b.Bucket.Iter(ctx, dir, func(name string) error {
		if isTemp(name) {
			return nil
		}
		return f(name)
	}, options...)
}

func (b *atomicFilesystemBucket) IterWithAttributes(ctx context.Context, dir string, f func(objstore.IterObjectAttributes) error, options ...objstore.IterOption) error {
	return b.Bucket.IterWithAttributes(ctx, dir, func(attrs objstore.IterObjectAttributes) error {
		if isTemp(attrs.Name) {
			return nil
		}
		return f(attrs)
	}, options...)
}

func isTemp(name string) bool {
	return strings.HasPrefix(path.Base(strings.TrimSuffix(name, "/")), tempPrefix)
}
