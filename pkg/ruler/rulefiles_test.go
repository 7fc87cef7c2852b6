package ruler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
)

func TestWriteRuleFiles_OneFilePerNamespaceThatPrometheusParses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tenant")
	longName := strings.Repeat("n", rulestore.MaxNameLength)
	groups := map[string][]rulefmt.RuleGroup{
		"../escape": {recordingGroup("g1", 0, recordRule("a", "vector(1)"))},
		"a/b":       {recordingGroup("g2", 0, recordRule("b", "vector(2)")), recordingGroup("g3", 0, recordRule("c", "vector(3)"))},
		".":         {recordingGroup("g4", 0, recordRule("d", "vector(4)"))},
		longName:    {recordingGroup("g5", 0, recordRule("e", "vector(5)"))},
	}
	files, changed, err := writeRuleFiles(dir, groups)
	require.NoError(t, err)
	require.True(t, changed)
	require.Len(t, files, 4)
	p := parser.NewParser(parser.Options{})
	for _, f := range files {
		require.Equal(t, dir, filepath.Dir(f), "every file stays in the tenant's directory")
		ns := namespaceOfFile(f)
		parsed, errs := rulefmt.ParseFile(f, false, model.LegacyValidation, p, nil)
		require.Empty(t, errs)
		require.Equal(t, groups[ns], parsed.Groups)
	}

	// Unchanged groups rewrite nothing; a namespace gone removes its file.
	_, changed, err = writeRuleFiles(dir, groups)
	require.NoError(t, err)
	require.False(t, changed)
	delete(groups, "a/b")
	files, changed, err = writeRuleFiles(dir, groups)
	require.NoError(t, err)
	require.True(t, changed)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, len(files))
}
