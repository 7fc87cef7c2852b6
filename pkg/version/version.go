// Package version holds the build information of the Strata binary: what `strata -version`,
// /prometheus/api/v1/status/buildinfo and the strata_build_info metric report.
//
// A release build stamps it with the linker (`make build` does; a Dockerfile or CI can pass the same
// variables to make, or the same -X flags to go build):
//
//	go build -ldflags "-X github.com/strata-metrics/strata/pkg/version.Version=v1.2.3 \
//	    -X github.com/strata-metrics/strata/pkg/version.Revision=$(git rev-parse HEAD) ..." ./cmd/strata
//
// A plain `go build` or `go run` stamps nothing; then the revision and time of the commit come from the
// VCS information the Go toolchain embeds (runtime/debug.ReadBuildInfo), when it had any.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at build time with -ldflags "-X github.com/strata-metrics/strata/pkg/version.<Name>=<value>".
var (
	// Version is the release, e.g. v1.2.3 or the output of git describe.
	Version string
	// Revision is the full commit hash.
	Revision string
	// Branch is the branch the binary was built from.
	Branch string
	// BuildUser is who built it, user@host.
	BuildUser string
	// BuildDate is when it was built, RFC 3339 in UTC.
	BuildDate string
)

// Info is the build information, in the JSON field names of Prometheus' buildinfo endpoint.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Branch    string `json:"branch"`
	BuildUser string `json:"buildUser"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

// Get returns the stamped build information, completed from the Go toolchain's VCS stamp where the linker
// stamped nothing.
func Get() Info {
	info := Info{Version: Version, Revision: Revision, Branch: Branch, BuildUser: BuildUser, BuildDate: BuildDate, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info = withBuildInfo(info, bi)
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// withBuildInfo fills the fields the linker left empty from what `go build` embeds: the module version (a
// tag, or since Go 1.24 a pseudo-version, ending in +dirty for a modified tree; "(devel)" when it knows
// none), the commit and the commit's time. There is no branch in it.
func withBuildInfo(info Info, bi *debug.BuildInfo) Info {
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && info.Revision == "":
			info.Revision = s.Value
		case s.Key == "vcs.time" && info.BuildDate == "":
			// The commit's time, not the build's: the closest the toolchain records.
			info.BuildDate = s.Value
		}
	}
	return info
}

// String is what `strata -version` prints.
func (i Info) String() string {
	return fmt.Sprintf("strata, version %s (branch: %s, revision: %s)\n  build user: %s\n  build date: %s\n  go version: %s\n",
		i.Version, orUnknown(i.Branch), orUnknown(i.Revision), orUnknown(i.BuildUser), orUnknown(i.BuildDate), i.GoVersion)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
