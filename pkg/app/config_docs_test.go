package app

import (
	"bytes"
	"flag"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigReference_DocsAreUpToDate(t *testing.T) {
	var b bytes.Buffer
	if err := WriteConfigReference(&b); err != nil {
		t.Fatal(err)
	}
	current, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	want, got := strings.Split(b.String(), "\n"), strings.Split(string(current), "\n")
	for i := range max(len(want), len(got)) {
		if i >= len(want) || i >= len(got) || want[i] != got[i] {
			t.Fatalf("docs/configuration.md is stale from line %d on: run `make docs`", i+1)
		}
	}
}

func TestConfigReference_ShowsDerivedDefaults(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteConfigReference(&b))
	doc := b.String()
	require.Contains(t, doc, "| `-ingester.ring.unregister-on-shutdown` | `ingester.ring.unregister_on_shutdown` | `true` with a replication factor of 1, else `false` |")
	// The other rings do not derive it: their default is the flag's.
	require.Contains(t, doc, "| `-distributor.ring.unregister-on-shutdown` | `distributor.ring.unregister_on_shutdown` | `true` |")

	f := flag.NewFlagSet("strata", flag.ContinueOnError)
	(&Config{}).RegisterFlags(f)
	for name := range derivedDefaults {
		require.NotNil(t, f.Lookup(name), "derivedDefaults names a flag that does not exist: %s", name)
	}
}

// The derivation the reference describes is the one LoadConfig makes.
func TestLoadConfig_IngesterUnregisterOnShutdownFollowsReplicationFactor(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want bool
	}{
		{"single process: replication factor 1", []string{"-target=all"}, true},
		{"cluster: replication factor 3", []string{"-target=ingester"}, false},
		{"cluster with replication factor 1", []string{"-target=ingester", "-distributor.replication-factor=1"}, true},
		{"explicit true wins", []string{"-target=ingester", "-ingester.ring.unregister-on-shutdown=true"}, true},
		{"explicit false wins", []string{"-target=all", "-ingester.ring.unregister-on-shutdown=false"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := LoadConfig(append(tt.args, "-data.dir="+t.TempDir()), io.Discard)
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.Lifecycler.UnregisterOnShutdown)
			require.True(t, cfg.DistributorLifecycler.UnregisterOnShutdown, "other rings keep the flag's default")
		})
	}
}
