package alertstore

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// bucketKinds are the buckets every store test runs against: objstore's in-memory bucket and its
// filesystem bucket, which differ in how they list directories and delete missing objects.
var bucketKinds = map[string]func(t *testing.T) objstore.Bucket{
	"inmem": func(*testing.T) objstore.Bucket { return objstore.NewInMemBucket() },
	"filesystem": func(t *testing.T) objstore.Bucket {
		b, err := filesystem.NewBucket(t.TempDir())
		require.NoError(t, err)
		return b
	},
}

func forEachBucket(t *testing.T, test func(t *testing.T, bkt objstore.Bucket, s *BucketStore)) {
	for name, newBucket := range bucketKinds {
		t.Run(name, func(t *testing.T) {
			bkt := newBucket(t)
			s, err := New(Config{Prefix: "alertmanager"}, bkt)
			require.NoError(t, err)
			test(t, bkt, s)
		})
	}
}

func TestBucketStore_ConfigRoundTrip(t *testing.T) {
	forEachBucket(t, func(t *testing.T, bkt objstore.Bucket, s *BucketStore) {
		ctx := context.Background()
		cfg := AlertConfig{
			AlertmanagerConfig: "route:\n  receiver: a\nreceivers:\n  - name: a\n",
			TemplateFiles:      map[string]string{"a.tmpl": `{{ define "x" }}x{{ end }}`, "b.tmpl": "'quoted'\n: odd"},
		}
		require.NoError(t, s.SetConfig(ctx, "team-a", cfg))
		got, err := s.GetConfig(ctx, "team-a")
		require.NoError(t, err)
		require.Equal(t, cfg, got)

		ok, err := bkt.Exists(ctx, "alertmanager/configs/team-a.yaml")
		require.NoError(t, err)
		require.True(t, ok, "the layout is part of the store's contract")

		cfg.AlertmanagerConfig += "# changed\n"
		require.NoError(t, s.SetConfig(ctx, "team-a", cfg))
		got, err = s.GetConfig(ctx, "team-a")
		require.NoError(t, err)
		require.Equal(t, cfg, got)

		require.NoError(t, s.DeleteConfig(ctx, "team-a"))
		_, err = s.GetConfig(ctx, "team-a")
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, s.DeleteConfig(ctx, "team-a"), "deleting a missing configuration is not an error")
	})
}

func TestBucketStore_StateRoundTrip(t *testing.T) {
	forEachBucket(t, func(t *testing.T, bkt objstore.Bucket, s *BucketStore) {
		ctx := context.Background()
		_, err := s.GetState(ctx, "t1")
		require.ErrorIs(t, err, ErrNotFound)

		state := []byte{0, 1, 2, 0xff}
		require.NoError(t, s.SetState(ctx, "t1", state))
		got, err := s.GetState(ctx, "t1")
		require.NoError(t, err)
		require.Equal(t, state, got)
		ok, err := bkt.Exists(ctx, "alertmanager/state/t1/fullstate")
		require.NoError(t, err)
		require.True(t, ok)

		require.NoError(t, s.DeleteState(ctx, "t1"))
		_, err = s.GetState(ctx, "t1")
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, s.DeleteState(ctx, "t1"))
	})
}

func TestBucketStore_ListTenantsOnlyConfigs(t *testing.T) {
	forEachBucket(t, func(t *testing.T, bkt objstore.Bucket, s *BucketStore) {
		ctx := context.Background()
		for _, id := range []string{"b", "a.yaml", "a"} {
			require.NoError(t, s.SetConfig(ctx, id, AlertConfig{AlertmanagerConfig: "x"}))
		}
		require.NoError(t, s.SetState(ctx, "only-state", []byte("s")))
		// Objects of other components share the bucket, and stray objects under the prefix are not
		// configurations.
		for _, name := range []string{
			"tenant-x/01J00000000000000000000000/meta.json",
			"rules/dGVuYW50/ns/group",
			"alertmanager/configs/no-suffix",
			"alertmanager/configs/.yaml",
			"alertmanager/configs/bad%id.yaml",
			"alertmanager/configs/nested/c.yaml",
		} {
			require.NoError(t, bkt.Upload(ctx, name, strings.NewReader("x")))
		}
		tenants, err := s.ListTenants(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "a.yaml", "b"}, tenants)
	})
}

func TestBucketStore_RejectsInvalidTenantIDs(t *testing.T) {
	s, err := New(Config{Prefix: "alertmanager"}, objstore.NewInMemBucket())
	require.NoError(t, err)
	ctx := context.Background()
	for _, id := range []string{"", ".", "..", "a/b", "../x", strings.Repeat("a", tenant.MaxIDLength+1)} {
		var invalid *tenant.InvalidIDError
		_, err := s.GetConfig(ctx, id)
		require.ErrorAs(t, err, &invalid, "%q", id)
		require.ErrorAs(t, s.SetConfig(ctx, id, AlertConfig{}), &invalid, "%q", id)
		require.ErrorAs(t, s.DeleteConfig(ctx, id), &invalid, "%q", id)
		_, err = s.GetState(ctx, id)
		require.ErrorAs(t, err, &invalid, "%q", id)
		require.ErrorAs(t, s.SetState(ctx, id, nil), &invalid, "%q", id)
		require.ErrorAs(t, s.DeleteState(ctx, id), &invalid, "%q", id)
	}
}

func TestBucketStore_RefusesOversizedObjects(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	s, err := New(Config{Prefix: "alertmanager"}, bkt)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, bkt.Upload(ctx, "alertmanager/configs/t.yaml", bytes.NewReader(make([]byte, maxConfigObjectBytes+1))))
	_, err = s.GetConfig(ctx, "t")
	require.ErrorContains(t, err, "larger than")
}

func TestBucketStore_CorruptConfig(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	s, err := New(Config{Prefix: "alertmanager"}, bkt)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, bkt.Upload(ctx, "alertmanager/configs/t.yaml", strings.NewReader("template_files: [not, a, map]")))
	_, err = s.GetConfig(ctx, "t")
	require.ErrorContains(t, err, "decode")
	require.NotErrorIs(t, err, ErrNotFound)
}

func TestConfig_Validate(t *testing.T) {
	for prefix, wantErr := range map[string]bool{
		"alertmanager":   false,
		"alertmanager/b": false,
		"a/b":            true, // a tenant could be called "a"
		"":               true,
		"/a":             true,
		"a/":             true,
		"a/../b":         true,
		".":              true,
	} {
		cfg := Config{Prefix: prefix}
		if wantErr {
			require.Error(t, cfg.Validate(), "%q", prefix)
		} else {
			require.NoError(t, cfg.Validate(), "%q", prefix)
		}
	}
	_, err := New(Config{Prefix: "alertmanager"}, nil)
	require.Error(t, err)
}
