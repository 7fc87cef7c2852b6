package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runCLI runs stratatool with args and returns its exit status, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	status := run(args, &stdout, &stderr)
	return status, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

func TestHelp_ListsCommandsAndExitsZero(t *testing.T) {
	status, stdout, _ := runCLI(t, "--help")
	require.Equal(t, 0, status)
	for _, want := range []string{"rules test", "--address", "STRATA_TENANT_ID", "STRATA_AUTH_TOKEN", "version"} {
		require.Contains(t, stdout, want)
	}
}

func TestUsageError_ExitsOne(t *testing.T) {
	status, _, stderr := runCLI(t, "rules", "nonsense")
	require.Equal(t, 1, status)
	require.Contains(t, stderr, "try --help")

	status, _, stderr = runCLI(t, "rules")
	require.Equal(t, 1, status)
	require.Contains(t, stderr, "must select a subcommand of 'rules'")

	// Without arguments it shows the usage, as kingpin does.
	status, stdout, _ := runCLI(t)
	require.Equal(t, 0, status)
	require.Contains(t, stdout, "usage: stratatool")
}

func TestVersion(t *testing.T) {
	status, stdout, _ := runCLI(t, "version")
	require.Equal(t, 0, status)
	require.True(t, strings.HasPrefix(stdout, "stratatool, version "), stdout)
}

func TestRulesTest_ExitStatus(t *testing.T) {
	dir := t.TempDir()
	pass := writeFile(t, dir, "pass.yml", "tests:\n  - name: ok\n    promql_expr_test: [{expr: vector(1), eval_time: 0s, exp_samples: [{value: 1}]}]\n")
	fail := writeFile(t, dir, "fail.yml", "tests:\n  - name: wrong\n    promql_expr_test: [{expr: vector(1), eval_time: 0s, exp_samples: [{value: 2}]}]\n")

	status, stdout, _ := runCLI(t, "rules", "test", pass)
	require.Equal(t, 0, status, stdout)

	status, stdout, _ = runCLI(t, "rules", "test", pass, fail, filepath.Join(dir, "missing.yml"))
	require.Equal(t, 1, status)
	require.Contains(t, stdout, "PASS  "+pass)
	require.Contains(t, stdout, "FAIL  "+fail+"\n  test group \"wrong\" (tests[0]):\n    expr \"vector(1)\", eval_time 0s: expected 1 sample, got 1\n      other value for {}: expected 2, got 1\n")
	require.Contains(t, stdout, "FAIL  "+filepath.Join(dir, "missing.yml")+": cannot test: ")
	require.Contains(t, stdout, "2 of 3 test files failed")

	status, stdout, _ = runCLI(t, "rules", "test", "--run", "^ok$", pass, fail)
	require.Equal(t, 0, status, stdout)

	junit := filepath.Join(dir, "junit.xml")
	status, _, _ = runCLI(t, "rules", "test", "--junit", junit, pass, fail)
	require.Equal(t, 1, status)
	xml, err := os.ReadFile(junit)
	require.NoError(t, err)
	require.Contains(t, string(xml), `<testcase name="&#34;wrong&#34; (tests[0])"><failure>`)

	status, _, stderr := runCLI(t, "rules", "test", "--run", "(", pass)
	require.Equal(t, 1, status)
	require.Contains(t, stderr, `--run "("`)
}
