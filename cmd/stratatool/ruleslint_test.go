package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const namespacedRules = `# kept
namespace: team-a
groups:
    - name: example   # kept too
      rules:
        - record: job:requests:rate5m
          expr: sum   by(job)(rate(requests_total[5m]))
`

func TestRulesCheck_AcceptsBothFormats(t *testing.T) {
	dir := t.TempDir()
	plain := writeFile(t, dir, "team-b.yaml", "groups:\n  - name: g\n    rules:\n      - {record: 'x:y', expr: vector(1)}\n")
	namespaced := writeFile(t, dir, "other.yml", namespacedRules)

	status, stdout, stderr := runCLI(t, "rules", "check", plain, namespaced)
	require.Equal(t, 0, status, stderr)
	require.Contains(t, stdout, "OK  "+plain+`: namespace "team-b", 1 groups, 1 rules`)
	require.Contains(t, stdout, "OK  "+namespaced+`: namespace "team-a", 1 groups, 1 rules`)

	// In flow style the namespace key cannot be blanked out: the document is re-encoded without it.
	flow := writeFile(t, dir, "flow.yml", "{namespace: team-c, groups: [{name: g, rules: [{record: x, expr: vector(1)}]}]}\n")
	status, stdout, stderr = runCLI(t, "rules", "check", flow)
	require.Equal(t, 0, status, stderr)
	require.Contains(t, stdout, "OK  "+flow+`: namespace "team-c", 1 groups, 1 rules`)

	status, stdout, _ = runCLI(t, "rules", "check", "--namespace", "forced", plain, namespaced)
	require.Equal(t, 0, status)
	require.Contains(t, stdout, `namespace "forced"`)
	require.Contains(t, stdout, `namespace "team-a"`) // the file's own namespace wins
}

func TestRulesCheck_ReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		content string
		want    []string
	}{
		"not YAML": {
			content: "groups: [\n",
			want:    []string{"yaml: line"},
		},
		"unknown field": {
			content: "groups:\n  - name: g\n    rulez: []\n",
			want:    []string{"field rulez not found"},
		},
		"bad PromQL and names": {
			content: "namespace: ns\ngroups:\n  - name: g\n    rules:\n      - record: 'bad name'\n        expr: sum(\n      - alert: A\n        expr: up == 0\n        labels: {'bad-label': x}\n",
			// Line numbers are the file's, the namespace line included.
			want: []string{`6:15: group "g", rule 1, "bad name": could not parse expression`, `5:17: group "g", rule 1, "bad name": invalid recording rule name`, `invalid label name: bad-label`},
		},
		"bad template": {
			content: "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        annotations: {summary: '{{ $labels.job '}\n",
			want:    []string{`group "g", rule 1, "A": annotation "summary": template: __alert_A:1: unclosed action`},
		},
		"duplicate and empty groups": {
			content: "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: [{record: x, expr: vector(1)}]\n",
			want:    []string{`groupname: "g" is repeated in the same file`, `group "g" has no rules`},
		},
		"namespace not a string": {
			content: "namespace: [a]\ngroups: []\n",
			want:    []string{"1:12: namespace must be a string"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, dir, name+".yml", tc.content)
			status, _, stderr := runCLI(t, "rules", "check", path)
			require.Equal(t, 1, status)
			for _, want := range tc.want {
				require.Contains(t, stderr, want)
			}
		})
	}
}

func TestRulesCheck_GroupNamesUniquePerNamespaceAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	group := "groups:\n  - name: g\n    rules: [{record: x, expr: vector(1)}]\n"
	a := writeFile(t, dir, "a/team.yml", group)
	b := writeFile(t, dir, "b/team.yml", group)
	c := writeFile(t, dir, "c/other.yml", group)
	status, _, stderr := runCLI(t, "rules", "check", a, b, c)
	require.Equal(t, 1, status)
	require.Contains(t, stderr, b+`: group "g" of namespace "team" is also in `+a)
	require.NotContains(t, stderr, c)
}

func TestRulesLint_FormatsInPlaceAndShowsDiffOnDryRun(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "rules.yml", namespacedRules)

	status, stdout, stderr := runCLI(t, "rules", "lint", "--dry-run", path)
	require.Equal(t, 0, status, stderr)
	require.Contains(t, stdout, "--- "+path+"\n+++ "+path+" (formatted)\n")
	require.Contains(t, stdout, "-          expr: sum   by(job)(rate(requests_total[5m]))\n")
	require.Contains(t, stdout, "+        expr: sum by (job) (rate(requests_total[5m]))\n")
	unchanged, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, namespacedRules, string(unchanged))

	status, stdout, _ = runCLI(t, "rules", "lint", path)
	require.Equal(t, 0, status)
	require.Equal(t, "formatted "+path+"\n", stdout)
	formatted, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, `# kept
namespace: team-a
groups:
  - name: example # kept too
    rules:
      - record: job:requests:rate5m
        expr: sum by (job) (rate(requests_total[5m]))
`, string(formatted))

	status, stdout, _ = runCLI(t, "rules", "lint", path)
	require.Equal(t, 0, status)
	require.Equal(t, "unchanged "+path+"\n", stdout)
}

func TestRulesLint_LongStringsBecomeBlocks(t *testing.T) {
	dir := t.TempDir()
	long := "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m])) / sum by (job) (rate(http_requests_total[5m])) > 0.05"
	path := writeFile(t, dir, "rules.yml", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: '"+long+"'\n")
	status, _, _ := runCLI(t, "rules", "lint", path)
	require.Equal(t, 0, status)
	formatted, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(formatted), "        expr: |-\n          "+long+"\n")
}

func TestRulesLint_LeavesUnparseableFilesAlone(t *testing.T) {
	dir := t.TempDir()
	content := "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: sum(\n"
	path := writeFile(t, dir, "rules.yml", content)
	status, _, stderr := runCLI(t, "rules", "lint", path)
	require.Equal(t, 1, status)
	require.Contains(t, stderr, path+": not formatted, its expressions do not parse:\n5:15: groups[0].rules[0].expr:")
	after, err := os.ReadFile(filepath.Clean(path))
	require.NoError(t, err)
	require.Equal(t, content, string(after))
}
