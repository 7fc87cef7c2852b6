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

// Tools of the nested module in integration/prometheus, built from the versions Strata's go.mod
// requires so that their dependencies stay out of it: a current Prometheus, for tests that need what
// Debian's 2.42 cannot do (send X-Scope-OrgID with remote write and remote read), its promtool and
// Alertmanager's amtool.
var (
	toolsMtx sync.Mutex
	tools    = map[string]*builtTool{}
)

type builtTool struct {
	once sync.Once
	path string
	err  error
}

// moduleTool builds a tool of integration/prometheus once per test run and returns its path. `go tool
// -n` builds it into Go's build cache and prints the cached executable's path: cold, Prometheus and its
// service discovery SDKs take about 700 CPU seconds (6 minutes on 2 idle cores), then a second or two,
// where `go build -o` would link it again each run (about 10 s).
func moduleTool(t *testing.T, name string) string {
	t.Helper()
	toolsMtx.Lock()
	bt, ok := tools[name]
	if !ok {
		bt = &builtTool{}
		tools[name] = bt
	}
	toolsMtx.Unlock()
	bt.once.Do(func() {
		start := time.Now()
		cmd := exec.Command("go", "tool", "-n", name)
		cmd.Dir = "prometheus"
		cmd.Env = append(os.Environ(), "GOWORK=off")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			bt.err = fmt.Errorf("build %s in integration/prometheus: %w\n%s", name, err, stderr.String())
			return
		}
		bt.path = strings.TrimSpace(string(out))
		if _, err := os.Stat(bt.path); err != nil {
			bt.err = fmt.Errorf("go tool -n %s printed %q, not a built binary: %w", name, bt.path, err)
			return
		}
		t.Logf("%s built in %s: %s", name, time.Since(start).Round(100*time.Millisecond), bt.path)
	})
	require.NoError(t, bt.err)
	return bt.path
}

func prometheus3Binary(t *testing.T) string { return moduleTool(t, "prometheus") }

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
