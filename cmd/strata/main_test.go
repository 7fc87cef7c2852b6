package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVersionFlag_PrintsTheStampedBuildInformation builds strata as `make build` does, with the build
// information stamped by the linker, and runs it with -version.
func TestVersionFlag_PrintsTheStampedBuildInformation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the strata binary")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "this test builds strata with the go command: put it on PATH")
	const pkg = "github.com/strata-metrics/strata/pkg/version"
	ldflags := strings.Join([]string{
		"-X " + pkg + ".Version=v1.2.3-test",
		"-X " + pkg + ".Revision=0123456789abcdef",
		"-X " + pkg + ".Branch=release-1.2",
		"-X " + pkg + ".BuildDate=2026-12-02T10:00:00Z",
	}, " ")
	bin := filepath.Join(t.TempDir(), "strata")
	out, err := exec.Command(goBin, "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	tests := []struct {
		name string
		args []string
	}{
		{"alone", []string{"-version"}},
		{"with a flag that would not validate", []string{"-version", "-target=no-such-target"}},
		{"with an unknown flag and a missing config file", []string{"-no-such-flag", "-config.file=/no/such/file", "--version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Dir = t.TempDir() // nothing is written: no ./data appears
			stdout, err := cmd.Output()
			require.NoError(t, err, "exit status 0")
			require.Equal(t, "strata, version v1.2.3-test (branch: release-1.2, revision: 0123456789abcdef)\n"+
				"  build user: unknown\n  build date: 2026-12-02T10:00:00Z\n", strings.Join(strings.SplitAfter(string(stdout), "\n")[:3], ""))
			require.Contains(t, string(stdout), "  go version: go")
			entries, err := filepath.Glob(filepath.Join(cmd.Dir, "*"))
			require.NoError(t, err)
			require.Empty(t, entries)
		})
	}
}
