package version

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithBuildInfo_FillsOnlyWhatTheLinkerLeftEmpty(t *testing.T) {
	vcs := &debug.BuildInfo{
		Main: debug.Module{Version: "v0.0.0-20261201120000-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-01T12:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name    string
		stamped Info
		bi      *debug.BuildInfo
		want    Info
	}{
		{
			name:    "stamped values win",
			stamped: Info{Version: "v1.2.3", Revision: "fedcba", Branch: "main", BuildDate: "2026-12-02T00:00:00Z"},
			bi:      vcs,
			want:    Info{Version: "v1.2.3", Revision: "fedcba", Branch: "main", BuildDate: "2026-12-02T00:00:00Z"},
		},
		{
			name: "unstamped go build from a checkout",
			bi:   vcs,
			want: Info{Version: "v0.0.0-20261201120000-0123456789ab+dirty", Revision: "0123456789abcdef0123456789abcdef01234567", BuildDate: "2026-12-01T12:00:00Z"},
		},
		{
			name: "no VCS information (go run of a tree without .git)",
			bi:   &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			want: Info{},
		},
		{
			name:    "version stamped alone keeps the VCS revision",
			stamped: Info{Version: "v1.2.3"},
			bi:      vcs,
			want:    Info{Version: "v1.2.3", Revision: "0123456789abcdef0123456789abcdef01234567", BuildDate: "2026-12-01T12:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, withBuildInfo(tt.stamped, tt.bi))
		})
	}
}

func TestGet_ReportsTheLinkerVariables(t *testing.T) {
	v, r, b, u, d := Version, Revision, Branch, BuildUser, BuildDate
	t.Cleanup(func() { Version, Revision, Branch, BuildUser, BuildDate = v, r, b, u, d })
	Version, Revision, Branch, BuildUser, BuildDate = "v9.8.7", "abc123", "release-9.8", "ci@builder", "2026-12-02T10:00:00Z"
	require.Equal(t, Info{Version: "v9.8.7", Revision: "abc123", Branch: "release-9.8", BuildUser: "ci@builder",
		BuildDate: "2026-12-02T10:00:00Z", GoVersion: runtime.Version()}, Get())
}

func TestGet_UnstampedVersionIsNeverEmpty(t *testing.T) {
	v := Version
	t.Cleanup(func() { Version = v })
	Version = ""
	require.NotEmpty(t, Get().Version) // a test binary has no module version: "dev"
}

func TestInfo_String(t *testing.T) {
	got := Info{Version: "v1.2.3", Revision: "abc123", Branch: "main", BuildDate: "2026-12-02T10:00:00Z", GoVersion: "go1.26.8"}.String()
	require.Equal(t, "strata, version v1.2.3 (branch: main, revision: abc123)\n  build user: unknown\n  build date: 2026-12-02T10:00:00Z\n  go version: go1.26.8\n", got)
}
