package bucket

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/tenant"

	"github.com/strata-metrics/strata/pkg/storage/bucket/buckettest"
)

func TestTenantBucket_RejectsNamesLeavingTheTenant(t *testing.T) {
	raw := objstore.NewInMemBucket()
	upload(t, raw, "victim/secret", "x")
	bkt := NewTenantBucket(raw, "attacker")
	ctx := t.Context()

	for _, name := range []string{"", "../victim/secret", "a/../../victim/secret", "/victim/secret", "./x", "a//b", "a/"} {
		_, err := bkt.Get(ctx, name)
		require.Error(t, err, "get %q", name)
		require.Error(t, bkt.Upload(ctx, name, strings.NewReader("x")), "upload %q", name)
		require.Error(t, bkt.Delete(ctx, name), "delete %q", name)
		_, err = bkt.Exists(ctx, name)
		require.Error(t, err, "exists %q", name)
		_, err = bkt.Attributes(ctx, name)
		require.Error(t, err, "attributes %q", name)
		_, err = bkt.GetRange(ctx, name, 0, 1)
		require.Error(t, err, "get_range %q", name)
	}
	for _, dir := range []string{"..", "../", "../victim/", "/"} {
		require.Error(t, bkt.Iter(ctx, dir, func(string) error { return nil }), "iter %q", dir)
	}
	require.Equal(t, "x", readObject(t, raw, "victim/secret"))
}

func TestTenantBucket_InvalidTenantFailsEveryOperation(t *testing.T) {
	raw := objstore.NewInMemBucket()
	upload(t, raw, "x", "top-level object")
	for id, rule := range map[string]error{
		"":         tenant.ErrEmptyID,
		"..":       tenant.ErrReservedID,
		"a/b":      tenant.ErrUnsupportedCharacter,
		"tenant x": tenant.ErrUnsupportedCharacter,
	} {
		bkt := NewTenantBucket(raw, id)
		_, err := bkt.Get(t.Context(), "x")
		require.ErrorIs(t, err, rule, "tenant %q", id)
		require.ErrorIs(t, bkt.Upload(t.Context(), "x", strings.NewReader("x")), rule, "tenant %q", id)
		require.ErrorIs(t, bkt.Iter(t.Context(), "", func(string) error { return nil }), rule, "tenant %q", id)
	}
}

func TestTenantBucket_NameAndClose(t *testing.T) {
	raw := buckettest.NewErrorInjectedBucket(objstore.NewInMemBucket())
	bkt := NewTenantBucket(raw, "team-a")
	require.Equal(t, raw.Name()+"/team-a", bkt.Name())
	require.Equal(t, objstore.MEMORY, bkt.Provider())
	require.NoError(t, bkt.Close())
	// The shared bucket is still usable after a tenant's view is closed.
	upload(t, bkt, "obj", "x")
	require.Equal(t, "x", readObject(t, raw, "team-a/obj"))
}

func TestTenantBucket_IterDoesNotSeePrefixSiblings(t *testing.T) {
	// "team" must not list "team-b", whose name merely starts with "team".
	raw := objstore.NewInMemBucket()
	upload(t, raw, "team/a", "x")
	upload(t, raw, "team-b/b", "x")
	require.Equal(t, []string{"a"}, listNames(t, NewTenantBucket(raw, "team"), "", objstore.WithRecursiveIter()))
}

func TestListTenants_Errors(t *testing.T) {
	raw := buckettest.NewErrorInjectedBucket(objstore.NewInMemBucket())
	raw.SetFailing(true)
	_, err := ListTenants(t.Context(), raw)
	require.ErrorIs(t, err, buckettest.ErrInjectedFailure)
	require.ErrorContains(t, err, "list tenants")
}
