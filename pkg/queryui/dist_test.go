package queryui

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// sourceDir holds the page's sources and its build script.
const sourceDir = "../../web/query-ui"

const rebuildHint = "rebuild the page with scripts/build-query-ui.sh and commit pkg/queryui/dist"

type buildManifest struct {
	Sources map[string]string `json:"sources"`
	Outputs map[string]string `json:"outputs"`
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestDist_MatchesItsSources checks, without Node.js, that the committed build is the one its sources
// make: the build records the hash of every input and output in dist/manifest.json, so a source edited
// without a rebuild, or an output edited by hand, fails here. esbuild's output is deterministic for the
// inputs package-lock.json pins, so a rebuild from unchanged sources reproduces dist byte for byte.
func TestDist_MatchesItsSources(t *testing.T) {
	raw, err := os.ReadFile("dist/manifest.json")
	require.NoError(t, err)
	var m buildManifest
	require.NoError(t, json.Unmarshal(raw, &m))

	outputs := map[string]string{}
	require.NoError(t, fs.WalkDir(os.DirFS("dist"), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "manifest.json" {
			return err
		}
		outputs[name] = fileSHA256(t, filepath.Join("dist", name))
		return nil
	}))
	require.Equal(t, m.Outputs, outputs, "pkg/queryui/dist differs from what the build wrote; "+rebuildHint)

	sources := map[string]string{}
	for _, name := range []string{"build.mjs", "package.json", "package-lock.json"} {
		sources[name] = fileSHA256(t, filepath.Join(sourceDir, name))
	}
	entries, err := os.ReadDir(filepath.Join(sourceDir, "src"))
	require.NoError(t, err)
	for _, e := range entries {
		sources["src/"+e.Name()] = fileSHA256(t, filepath.Join(sourceDir, "src", e.Name()))
	}
	require.Equal(t, m.Sources, sources, "web/query-ui changed since pkg/queryui/dist was built; "+rebuildHint)
}
