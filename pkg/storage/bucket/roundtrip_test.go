package bucket

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

// The checks in this file run against every backend the tests can reach (filesystem, and S3 through
// versitygw), so that the instrumented and tenant wrappers are proven over real providers.

func upload(t *testing.T, bkt objstore.Bucket, name, content string) {
	t.Helper()
	require.NoError(t, bkt.Upload(t.Context(), name, strings.NewReader(content)))
}

func readObject(t *testing.T, bkt objstore.Bucket, name string) string {
	t.Helper()
	rc, err := bkt.Get(t.Context(), name)
	require.NoError(t, err)
	defer func() { require.NoError(t, rc.Close()) }()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b)
}

func listNames(t *testing.T, bkt objstore.Bucket, dir string, opts ...objstore.IterOption) []string {
	t.Helper()
	var names []string
	require.NoError(t, bkt.Iter(t.Context(), dir, func(name string) error {
		names = append(names, name)
		return nil
	}, opts...))
	// S3 lists objects before common prefixes ("top" before "a/"), the filesystem in one sorted order:
	// callers must not depend on the order, so the checks do not either.
	slices.Sort(names)
	return names
}

// checkRoundTrip exercises every operation on bkt, which must start empty, and leaves it empty.
func checkRoundTrip(t *testing.T, bkt objstore.Bucket) {
	ctx := t.Context()
	upload(t, bkt, "a/b/obj1", "hello world")
	upload(t, bkt, "a/obj2", "second")
	require.NoError(t, bkt.Upload(ctx, "top", bytes.NewReader([]byte("top-level"))))

	require.Equal(t, "hello world", readObject(t, bkt, "a/b/obj1"))

	rc, err := bkt.GetRange(ctx, "a/b/obj1", 6, 5)
	require.NoError(t, err)
	part, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "world", string(part))

	ok, err := bkt.Exists(ctx, "a/obj2")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = bkt.Exists(ctx, "a/missing")
	require.NoError(t, err)
	require.False(t, ok)

	attrs, err := bkt.Attributes(ctx, "a/b/obj1")
	require.NoError(t, err)
	require.EqualValues(t, len("hello world"), attrs.Size)
	require.False(t, attrs.LastModified.IsZero())

	require.Equal(t, []string{"a/", "top"}, listNames(t, bkt, ""))
	require.Equal(t, []string{"a/b/", "a/obj2"}, listNames(t, bkt, "a/"))
	require.Equal(t, []string{"a/b/", "a/obj2"}, listNames(t, bkt, "a"), "a directory without its trailing slash")
	require.Equal(t, []string{"a/b/obj1", "a/obj2", "top"}, listNames(t, bkt, "", objstore.WithRecursiveIter()))

	var withTimes []string
	require.NoError(t, bkt.IterWithAttributes(ctx, "a/b/", func(a objstore.IterObjectAttributes) error {
		_, ok := a.LastModified()
		require.True(t, ok, "last modified of %s", a.Name)
		withTimes = append(withTimes, a.Name)
		return nil
	}, objstore.WithUpdatedAt()))
	require.Equal(t, []string{"a/b/obj1"}, withTimes)

	_, err = bkt.Get(ctx, "a/missing")
	require.Error(t, err)
	require.True(t, bkt.IsObjNotFoundErr(err), "get of a missing object: %v", err)

	for _, name := range []string{"a/b/obj1", "a/obj2", "top"} {
		require.NoError(t, bkt.Delete(ctx, name))
	}
	ok, err = bkt.Exists(ctx, "a/b/obj1")
	require.NoError(t, err)
	require.False(t, ok)
	require.Empty(t, listNames(t, bkt, "", objstore.WithRecursiveIter()))
}

// checkTenantIsolation writes the same object names for two tenants of bkt (which must start empty)
// and checks that neither view ever sees the other's objects.
func checkTenantIsolation(t *testing.T, bkt objstore.Bucket) {
	ctx := t.Context()
	t1 := NewTenantBucket(bkt, "tenant-1")
	t2 := NewTenantBucket(bkt, "tenant-2")

	for _, tb := range []struct {
		bkt  objstore.Bucket
		name string
	}{{t1, "tenant-1"}, {t2, "tenant-2"}} {
		upload(t, tb.bkt, "01BLOCK/meta.json", "meta of "+tb.name)
		upload(t, tb.bkt, "01BLOCK/chunks/000001", "chunks of "+tb.name)
	}
	upload(t, t1, "only-in-1", "x")
	// Top-level entries that are not tenants.
	upload(t, bkt, "not-a-tenant.txt", "x")
	upload(t, bkt, "bad@tenant/obj", "x")

	require.Equal(t, "meta of tenant-1", readObject(t, t1, "01BLOCK/meta.json"))
	require.Equal(t, "meta of tenant-2", readObject(t, t2, "01BLOCK/meta.json"))
	require.Equal(t, "chunks of tenant-2", readObject(t, bkt, "tenant-2/01BLOCK/chunks/000001"))

	require.Equal(t, []string{"01BLOCK/", "only-in-1"}, listNames(t, t1, ""))
	require.Equal(t, []string{"01BLOCK/"}, listNames(t, t2, ""))
	require.Equal(t, []string{"01BLOCK/chunks/000001", "01BLOCK/meta.json"},
		listNames(t, t2, "", objstore.WithRecursiveIter()))
	require.Equal(t, []string{"01BLOCK/chunks/000001"}, listNames(t, t1, "01BLOCK/chunks/", objstore.WithRecursiveIter()))

	var attrNames []string
	require.NoError(t, t2.IterWithAttributes(ctx, "01BLOCK/", func(a objstore.IterObjectAttributes) error {
		attrNames = append(attrNames, a.Name)
		return nil
	}))
	slices.Sort(attrNames)
	require.Equal(t, []string{"01BLOCK/chunks/", "01BLOCK/meta.json"}, attrNames)

	ok, err := t2.Exists(ctx, "only-in-1")
	require.NoError(t, err)
	require.False(t, ok)
	_, err = t2.Get(ctx, "only-in-1")
	require.True(t, t2.IsObjNotFoundErr(err), "get of another tenant's object: %v", err)

	tenants, err := ListTenants(ctx, bkt)
	require.NoError(t, err)
	require.Equal(t, []string{"tenant-1", "tenant-2"}, tenants)

	// Deleting in one tenant leaves the other's object of the same name alone.
	require.NoError(t, t1.Delete(ctx, "01BLOCK/meta.json"))
	require.Equal(t, "meta of tenant-2", readObject(t, t2, "01BLOCK/meta.json"))

	// Leave the bucket empty for the next check.
	for _, name := range []string{
		"tenant-1/01BLOCK/chunks/000001", "tenant-1/only-in-1", "tenant-2/01BLOCK/meta.json",
		"tenant-2/01BLOCK/chunks/000001", "not-a-tenant.txt", "bad@tenant/obj",
	} {
		require.NoError(t, bkt.Delete(ctx, name), name)
	}
	require.Empty(t, listNames(t, bkt, "", objstore.WithRecursiveIter()))
	tenants, err = ListTenants(ctx, bkt)
	require.NoError(t, err)
	require.Empty(t, tenants)
}
