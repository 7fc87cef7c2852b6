package rulestore

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"gopkg.in/yaml.v3"
)

// bucketKinds are the buckets every bucket store test runs against: objstore's in-memory bucket and
// its filesystem bucket, which differ in how they list directories and delete missing objects.
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
			test(t, bkt, NewBucketStore(bkt, "rules", slog.New(slog.DiscardHandler)))
		})
	}
}

func group(name string, exprs ...string) rulefmt.RuleGroup {
	g := rulefmt.RuleGroup{Name: name}
	for i, e := range exprs {
		g.Rules = append(g.Rules, rulefmt.Rule{Record: "job:rule" + string(rune('a'+i)) + ":sum", Expr: e})
	}
	return g
}

// fullGroup sets every field a group and its rules can have, so a round trip shows none is lost.
func fullGroup(name string) rulefmt.RuleGroup {
	offset := model.Duration(30 * time.Second)
	return rulefmt.RuleGroup{
		Name:        name,
		Interval:    model.Duration(time.Minute),
		QueryOffset: &offset,
		Limit:       10,
		Labels:      map[string]string{"team": "a"},
		Rules: []rulefmt.Rule{
			{Record: "job:up:sum", Expr: "sum by (job) (up)", Labels: map[string]string{"source": "rule"}},
			{
				Alert: "Down", Expr: "up == 0", For: model.Duration(5 * time.Minute), KeepFiringFor: model.Duration(time.Minute),
				Labels: map[string]string{"severity": "page"}, Annotations: map[string]string{"summary": "{{ $labels.job }} is down"},
			},
		},
	}
}

func TestBucketStore_EmptyStore(t *testing.T) {
	forEachBucket(t, func(t *testing.T, _ objstore.Bucket, s *BucketStore) {
		ctx := context.Background()
		tenants, err := s.ListTenants(ctx)
		require.NoError(t, err)
		require.Empty(t, tenants)
		groups, err := s.ListRuleGroups(ctx, "team-a", "")
		require.NoError(t, err)
		require.Empty(t, groups)
		_, err = s.GetRuleGroup(ctx, "team-a", "ns", "g")
		require.ErrorIs(t, err, ErrGroupNotFound)
		require.ErrorIs(t, s.DeleteRuleGroup(ctx, "team-a", "ns", "g"), ErrGroupNotFound)
		require.ErrorIs(t, s.DeleteNamespace(ctx, "team-a", "ns"), ErrNamespaceNotFound)
	})
}

func TestBucketStore_SetGetRoundTripsEveryField(t *testing.T) {
	forEachBucket(t, func(t *testing.T, _ objstore.Bucket, s *BucketStore) {
		ctx := context.Background()
		want := fullGroup("g1")
		require.NoError(t, s.SetRuleGroup(ctx, "team-a", "ns", want))
		got, err := s.GetRuleGroup(ctx, "team-a", "ns", "g1")
		require.NoError(t, err)
		require.Equal(t, want, got)

		// Set replaces.
		replacement := group("g1", "sum(rate(x[5m]))")
		require.NoError(t, s.SetRuleGroup(ctx, "team-a", "ns", replacement))
		got, err = s.GetRuleGroup(ctx, "team-a", "ns", "g1")
		require.NoError(t, err)
		require.Equal(t, replacement, got)
		all, err := s.ListRuleGroups(ctx, "team-a", "")
		require.NoError(t, err)
		require.Equal(t, map[string][]rulefmt.RuleGroup{"ns": {replacement}}, all)
	})
}

func TestBucketStore_AnyNameIsOneSafeKeySegment(t *testing.T) {
	names := []string{
		"plain", "a/b", "/leading/and/trailing/", "..", ".", "../../etc/passwd", "ns/../other", "a//b",
		"ünïcødé ✓ 名前", " spaces ", "%2F", "a\\b", "x=y?z#w", strings.Repeat("x", MaxNameLength),
	}
	forEachBucket(t, func(t *testing.T, bkt objstore.Bucket, s *BucketStore) {
		ctx := context.Background()
		for _, name := range names {
			require.NoError(t, s.SetRuleGroup(ctx, "team-a", name, group(name, "up")), name)
		}
		// Every object sits exactly three segments below the prefix, whatever the names.
		var keys []string
		require.NoError(t, bkt.Iter(ctx, "", func(k string) error { keys = append(keys, k); return nil }, objstore.WithRecursiveIter()))
		require.Len(t, keys, len(names))
		for _, k := range keys {
			parts := strings.Split(k, "/")
			require.Len(t, parts, 4, k)
			require.Equal(t, []string{"rules", "team-a"}, parts[:2])
			require.NotContains(t, []string{"", ".", ".."}, parts[2])
			require.NotContains(t, []string{"", ".", ".."}, parts[3])
		}

		all, err := s.ListRuleGroups(ctx, "team-a", "")
		require.NoError(t, err)
		require.Len(t, all, len(names))
		for _, name := range names {
			require.Equal(t, []rulefmt.RuleGroup{group(name, "up")}, all[name], name)
			one, err := s.ListRuleGroups(ctx, "team-a", name)
			require.NoError(t, err)
			require.Equal(t, map[string][]rulefmt.RuleGroup{name: {group(name, "up")}}, one, name)
			got, err := s.GetRuleGroup(ctx, "team-a", name, name)
			require.NoError(t, err)
			require.Equal(t, name, got.Name)
		}
		for _, name := range names {
			require.NoError(t, s.DeleteRuleGroup(ctx, "team-a", name, name), name)
		}
		all, err = s.ListRuleGroups(ctx, "team-a", "")
		require.NoError(t, err)
		require.Empty(t, all)
	})
}

func TestBucketStore_ObjectLayoutAndContent(t *testing.T) {
	bkt := objstore.NewInMemBucket()
	s := NewBucketStore(bkt, "strata/rules", slog.New(slog.DiscardHandler))
	require.NoError(t, s.SetRuleGroup(context.Background(), "team-a", "a/b", fullGroup("g/1")))

	// base64url without padding of "a/b" and "g/1".
	const key = "strata/rules/team-a/YS9i/Zy8x"
	r, err := bkt.Get(context.Background(), key)
	require.NoError(t, err)
	data, err := io.ReadAll(r)
	require.NoError(t, err)
	var got rulefmt.RuleGroup
	require.NoError(t, yaml.Unmarshal(data, &got), "the object is the group as YAML")
	require.Equal(t, fullGroup("g/1"), got)
}

func TestBucketStore_ListsNamespacesAndTenantsSeparately(t *testing.T) {
	forEachBucket(t, func(t *testing.T, _ objstore.Bucket, s *BucketStore) {
		ctx := context.Background()
		for _, w := range []struct{ tenant, ns, group string }{
			{"team-b", "ns1", "g2"}, {"team-b", "ns1", "g1"}, {"team-b", "ns2", "g1"}, {"team-a", "ns1", "other"},
		} {
			require.NoError(t, s.SetRuleGroup(ctx, w.tenant, w.ns, group(w.group, "up")))
		}
		tenants, err := s.ListTenants(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"team-a", "team-b"}, tenants)

		all, err := s.ListRuleGroups(ctx, "team-b", "")
		require.NoError(t, err)
		require.Equal(t, map[string][]rulefmt.RuleGroup{
			"ns1": {group("g1", "up"), group("g2", "up")}, // sorted by name
			"ns2": {group("g1", "up")},
		}, all)
		ns2, err := s.ListRuleGroups(ctx, "team-b", "ns2")
		require.NoError(t, err)
		require.Equal(t, map[string][]rulefmt.RuleGroup{"ns2": {group("g1", "up")}}, ns2)

		// team-a sees only its own group, even under the same namespace name.
		a, err := s.ListRuleGroups(ctx, "team-a", "ns1")
		require.NoError(t, err)
		require.Equal(t, map[string][]rulefmt.RuleGroup{"ns1": {group("other", "up")}}, a)
		_, err = s.GetRuleGroup(ctx, "team-a", "ns1", "g1")
		require.ErrorIs(t, err, ErrGroupNotFound)
		require.ErrorIs(t, s.DeleteRuleGroup(ctx, "team-a", "ns2", "g1"), ErrGroupNotFound)
		require.ErrorIs(t, s.DeleteNamespace(ctx, "team-a", "ns2"), ErrNamespaceNotFound)
		_, err = s.GetRuleGroup(ctx, "team-b", "ns2", "g1")
		require.NoError(t, err, "team-a's deletes left team-b's group")
	})
}

func TestBucketStore_Deletes(t *testing.T) {
	forEachBucket(t, func(t *testing.T, _ objstore.Bucket, s *BucketStore) {
		ctx := context.Background()
		for _, ns := range []string{"ns1", "ns1/sub", "ns2"} {
			for _, g := range []string{"g1", "g2"} {
				require.NoError(t, s.SetRuleGroup(ctx, "team-a", ns, group(g, "up")))
			}
		}
		require.NoError(t, s.DeleteRuleGroup(ctx, "team-a", "ns2", "g1"))
		require.ErrorIs(t, s.DeleteRuleGroup(ctx, "team-a", "ns2", "g1"), ErrGroupNotFound, "a second delete finds nothing")

		// Deleting "ns1" leaves "ns1/sub": names are encoded, not prefixes of each other.
		require.NoError(t, s.DeleteNamespace(ctx, "team-a", "ns1"))
		require.ErrorIs(t, s.DeleteNamespace(ctx, "team-a", "ns1"), ErrNamespaceNotFound)
		all, err := s.ListRuleGroups(ctx, "team-a", "")
		require.NoError(t, err)
		require.Equal(t, map[string][]rulefmt.RuleGroup{
			"ns1/sub": {group("g1", "up"), group("g2", "up")},
			"ns2":     {group("g2", "up")},
		}, all)

		require.NoError(t, s.DeleteNamespace(ctx, "team-a", "ns1/sub"))
		require.NoError(t, s.DeleteNamespace(ctx, "team-a", "ns2"))
		tenants, err := s.ListTenants(ctx)
		require.NoError(t, err)
		require.Empty(t, tenants, "a tenant without groups is no longer listed")
	})
}

func TestBucketStore_RejectsInvalidNamesAndTenants(t *testing.T) {
	forEachBucket(t, func(t *testing.T, bkt objstore.Bucket, s *BucketStore) {
		ctx := context.Background()
		for name, call := range map[string]func() error{
			"empty namespace": func() error { return s.SetRuleGroup(ctx, "team-a", "", group("g", "up")) },
			"empty group":     func() error { return s.SetRuleGroup(ctx, "team-a", "ns", group("", "up")) },
			"long group": func() error {
				return s.SetRuleGroup(ctx, "team-a", "ns", group(strings.Repeat("g", MaxNameLength+1), "up"))
			},
			"non-UTF-8 namespace": func() error { return s.SetRuleGroup(ctx, "team-a", "\xff", group("g", "up")) },
			"get long namespace": func() error {
				_, err := s.GetRuleGroup(ctx, "team-a", strings.Repeat("n", MaxNameLength+1), "g")
				return err
			},
			"delete empty group":       func() error { return s.DeleteRuleGroup(ctx, "team-a", "ns", "") },
			"delete empty namespace":   func() error { return s.DeleteNamespace(ctx, "team-a", "") },
			"list non-UTF-8 namespace": func() error { _, err := s.ListRuleGroups(ctx, "team-a", "\xff"); return err },
		} {
			require.ErrorIs(t, call(), ErrInvalidName, name)
		}
		for _, id := range []string{"", "..", ".", "a/b"} {
			require.Error(t, s.SetRuleGroup(ctx, id, "ns", group("g", "up")), "tenant %q", id)
			_, err := s.ListRuleGroups(ctx, id, "")
			require.Error(t, err, "tenant %q", id)
		}
		var keys []string
		require.NoError(t, bkt.Iter(ctx, "", func(k string) error { keys = append(keys, k); return nil }, objstore.WithRecursiveIter()))
		require.Empty(t, keys, "nothing was written")
	})
}

func TestBucketStore_ForeignAndCorruptObjects(t *testing.T) {
	forEachBucket(t, func(t *testing.T, bkt objstore.Bucket, s *BucketStore) {
		ctx := context.Background()
		require.NoError(t, s.SetRuleGroup(ctx, "team-a", "ns", group("g", "up")))
		upload := func(key, content string) {
			require.NoError(t, bkt.Upload(ctx, key, strings.NewReader(content)))
		}
		// Objects whose key is not <encoded ns>/<encoded group> are skipped.
		upload("rules/team-a/README", "hello")
		upload("rules/team-a/not base64!/x", "hello")
		upload("rules/team-a/bnM/eHg/deeper", "hello")
		upload("rules/team-a/bnM=/Zw", "padded: not this store's encoding")
		all, err := s.ListRuleGroups(ctx, "team-a", "")
		require.NoError(t, err)
		require.Equal(t, map[string][]rulefmt.RuleGroup{"ns": {group("g", "up")}}, all)

		// A group object that does not decode, or holds another group, is an error.
		upload("rules/team-a/bnM/Zw", "name: [")
		_, err = s.GetRuleGroup(ctx, "team-a", "ns", "g")
		require.ErrorContains(t, err, "decode rule group object")
		_, err = s.ListRuleGroups(ctx, "team-a", "")
		require.Error(t, err)
		upload("rules/team-a/bnM/Zw", "name: other\nrules: []\n")
		_, err = s.GetRuleGroup(ctx, "team-a", "ns", "g")
		require.ErrorContains(t, err, `holds group "other", not "g"`)
		upload("rules/team-a/bnM/Zw", strings.Repeat("#", maxObjectBytes+1))
		_, err = s.GetRuleGroup(ctx, "team-a", "ns", "g")
		require.ErrorContains(t, err, "larger than")
	})
}

func TestParseGroupKey(t *testing.T) {
	ns, g, err := parseGroupKey(groupKey("a/b", "../c"))
	require.NoError(t, err)
	require.Equal(t, "a/b", ns)
	require.Equal(t, "../c", g)
	for _, bad := range []string{"", "bnM", "bnM/", "/Zw", "bnM/Zw/x", "bnM=/Zw", "bnM/Zw==", "!!/Zw"} {
		_, _, err := parseGroupKey(bad)
		require.Error(t, err, bad)
	}
}

func TestBucketStore_ListReadsManyGroups(t *testing.T) {
	s := NewBucketStore(objstore.NewInMemBucket(), "rules", slog.New(slog.DiscardHandler))
	ctx := context.Background()
	var b bytes.Buffer
	for i := range 3 * loadConcurrency {
		b.Reset()
		b.WriteString("g")
		b.WriteByte(byte('A' + i))
		require.NoError(t, s.SetRuleGroup(ctx, "team-a", "ns", group(b.String(), "up")))
	}
	all, err := s.ListRuleGroups(ctx, "team-a", "ns")
	require.NoError(t, err)
	require.Len(t, all["ns"], 3*loadConcurrency)
	for i, g := range all["ns"] {
		require.Equal(t, "g"+string(rune('A'+i)), g.Name)
	}
}
