package rulestore

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/stretchr/testify/require"
)

// writeFiles creates the files under dir, path -> content.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for path, content := range files {
		full := filepath.Join(dir, path)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
	}
}

const ruleFileA = `groups:
- name: second
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
- name: first
  interval: 1m
  rules:
  - alert: Down
    expr: up == 0
    for: 5m
    annotations:
      summary: "{{ $labels.job }} is down"
`

func newLocalFixture(t *testing.T) (*LocalStore, string) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"team-a/ns1.yaml":         ruleFileA,
		"team-a/ns2.yml":          "groups:\n- name: g\n  rules:\n  - record: x:y\n    expr: vector(1)\n",
		"team-a/empty.yaml":       "groups: []\n",
		"team-a/notes.txt":        "not a rule file",
		"team-a/dir.yaml/x.yaml":  ruleFileA, // a directory, not a rule file
		"team-b/only.yaml":        "groups:\n- name: g\n  rules:\n  - record: b:y\n    expr: vector(2)\n",
		"no-rules/README":         "no rule files here",
		"not a tenant/x.yaml":     ruleFileA,
		"README.md":               "a file, not a tenant",
		"elsewhere/secret.yaml":   ruleFileA,
		"../outside-the-dir.yaml": ruleFileA,
		"team-c/linked/real.yaml": ruleFileA,
	})
	require.NoError(t, os.Symlink(filepath.Join(dir, "team-c/linked/real.yaml"), filepath.Join(dir, "team-c/viaLink.yaml")))
	return NewLocalStore(dir, slog.New(slog.DiscardHandler)), dir
}

func TestLocalStore_Reads(t *testing.T) {
	s, _ := newLocalFixture(t)
	ctx := context.Background()

	tenants, err := s.ListTenants(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"elsewhere", "team-a", "team-b", "team-c"}, tenants)

	all, err := s.ListRuleGroups(ctx, "team-a", "")
	require.NoError(t, err)
	require.Len(t, all, 2, "empty.yaml has no groups, notes.txt and dir.yaml are not rule files")
	require.Equal(t, []string{"first", "second"}, []string{all["ns1"][0].Name, all["ns1"][1].Name}, "sorted by name")
	require.Equal(t, "x:y", all["ns2"][0].Rules[0].Record)

	one, err := s.ListRuleGroups(ctx, "team-a", "ns2")
	require.NoError(t, err)
	require.Equal(t, map[string][]rulefmt.RuleGroup{"ns2": all["ns2"]}, one)
	none, err := s.ListRuleGroups(ctx, "team-a", "absent")
	require.NoError(t, err)
	require.Empty(t, none)

	g, err := s.GetRuleGroup(ctx, "team-a", "ns1", "first")
	require.NoError(t, err)
	require.Equal(t, "Down", g.Rules[0].Alert)

	linked, err := s.ListRuleGroups(ctx, "team-c", "")
	require.NoError(t, err)
	require.Len(t, linked["viaLink"], 2, "a symlinked rule file is read")
}

func TestLocalStore_NotFound(t *testing.T) {
	s, _ := newLocalFixture(t)
	ctx := context.Background()
	for name, c := range map[string]struct{ tenant, ns, group string }{
		"missing group":              {"team-a", "ns1", "absent"},
		"missing namespace":          {"team-a", "absent", "first"},
		"missing tenant":             {"team-z", "ns1", "first"},
		"other tenant's namespace":   {"team-b", "ns1", "first"},
		"path to another tenant":     {"team-a", "../team-b/only", "g"},
		"path out of the directory":  {"team-a", "../../outside-the-dir", "first"},
		"namespace with extension":   {"team-a", "ns1.yaml", "first"},
		"directory named like files": {"team-a", "dir", "first"},
	} {
		_, err := s.GetRuleGroup(ctx, c.tenant, c.ns, c.group)
		require.ErrorIs(t, err, ErrGroupNotFound, name)
	}
	_, err := s.ListRuleGroups(ctx, "..", "")
	require.Error(t, err, "an invalid tenant ID is refused")
}

func TestLocalStore_IsReadOnly(t *testing.T) {
	s, dir := newLocalFixture(t)
	ctx := context.Background()
	require.ErrorIs(t, s.SetRuleGroup(ctx, "team-a", "ns1", rulefmt.RuleGroup{Name: "new"}), ErrReadOnly)
	require.ErrorIs(t, s.DeleteRuleGroup(ctx, "team-a", "ns1", "first"), ErrReadOnly)
	require.ErrorIs(t, s.DeleteNamespace(ctx, "team-a", "ns1"), ErrReadOnly)
	err := s.SetRuleGroup(ctx, "team-a", "ns1", rulefmt.RuleGroup{Name: "new"})
	require.ErrorContains(t, err, "-ruler-storage.backend=local")
	require.NotContains(t, err.Error(), dir, "the message goes to API clients: no server paths")
	content, readErr := os.ReadFile(filepath.Join(dir, "team-a/ns1.yaml"))
	require.NoError(t, readErr)
	require.Equal(t, ruleFileA, string(content))
}

func TestLocalStore_BadFiles(t *testing.T) {
	for name, tc := range map[string]struct {
		files   map[string]string
		wantErr string
	}{
		"invalid expression": {
			files:   map[string]string{"t/ns.yaml": "groups:\n- name: g\n  rules:\n  - record: a:b\n    expr: sum(\n"},
			wantErr: "could not parse expression",
		},
		"unknown field": {
			files:   map[string]string{"t/ns.yaml": "groups:\n- name: g\n  bogus: 1\n  rules: []\n"},
			wantErr: "field bogus not found",
		},
		"metric name the distributor would reject": {
			files:   map[string]string{"t/ns.yaml": "groups:\n- name: g\n  rules:\n  - record: a.b\n    expr: up\n"},
			wantErr: "invalid recording rule name",
		},
		"two files for one namespace": {
			files:   map[string]string{"t/ns.yaml": "groups: []\n", "t/ns.yml": "groups: []\n"},
			wantErr: `both hold namespace "ns"`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			s := NewLocalStore(dir, slog.New(slog.DiscardHandler))
			_, err := s.ListRuleGroups(context.Background(), "t", "")
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestLocalStore_MissingDirectory(t *testing.T) {
	s := NewLocalStore(filepath.Join(t.TempDir(), "absent"), slog.New(slog.DiscardHandler))
	_, err := s.ListTenants(context.Background())
	require.Error(t, err)
	groups, err := s.ListRuleGroups(context.Background(), "team-a", "")
	require.NoError(t, err, "a tenant without a directory has no rules")
	require.Empty(t, groups)
}
