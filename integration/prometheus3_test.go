package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A current Prometheus, the version Strata's go.mod requires, for tests that need what Debian's 2.42
// cannot do: send headers (X-Scope-OrgID) with remote write and remote read. It is the tool of the nested
// module in integration/prometheus, so its dependencies stay out of Strata's go.mod.
var (
	prometheus3Once sync.Once
	prometheus3Path string
	prometheus3Err  error
)

// prometheus3Binary builds Prometheus once per test run and returns its path. `go tool -n` builds the
// module's tool into Go's build cache and prints the cached executable's path: cold it compiles
// Prometheus and its service discovery SDKs (about 700 CPU seconds, 6 minutes on 2 idle cores), then
// takes about 1.5 s, where `go build -o` would link it again each run (about 10 s).
func prometheus3Binary(t *testing.T) string {
	t.Helper()
	prometheus3Once.Do(func() {
		start := time.Now()
		cmd := exec.Command("go", "tool", "-n", "prometheus")
		cmd.Dir = "prometheus"
		cmd.Env = append(os.Environ(), "GOWORK=off")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			prometheus3Err = fmt.Errorf("build Prometheus in integration/prometheus: %w\n%s", err, stderr.String())
			return
		}
		prometheus3Path = strings.TrimSpace(string(out))
		if _, err := os.Stat(prometheus3Path); err != nil {
			prometheus3Err = fmt.Errorf("go tool -n prometheus printed %q, not a built binary: %w", prometheus3Path, err)
			return
		}
		t.Logf("Prometheus built in %s: %s", time.Since(start).Round(100*time.Millisecond), prometheus3Path)
	})
	require.NoError(t, prometheus3Err)
	return prometheus3Path
}

// startPrometheus3 runs the current Prometheus with config (YAML) and an empty TSDB, and returns its URL
// once it is ready.
func startPrometheus3(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	return runPrometheus(t, prometheus3Binary(t),
		"--config.file="+writeFile(t, dir, "prometheus.yml", config),
		"--storage.tsdb.path="+dir+"/data",
	)
}
