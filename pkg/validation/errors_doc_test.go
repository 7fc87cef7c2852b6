package validation_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
)

// Every error ID the code can produce has its section in docs/errors.md, so a user who gets one finds
// what happened and what to do.
func TestErrorIDs_EachHasASectionInTheDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/errors.md")
	require.NoError(t, err)
	producers := []struct {
		re *regexp.Regexp
		id func(string) string
	}{
		{regexp.MustCompile(`Reason\w+\s*=\s*"(\w+)"`), validation.ErrorID},
		{regexp.MustCompile(`NewLimitError\(\s*"(\w+)"`), validation.ErrorID},
		{regexp.MustCompile(`instanceLimitError\(\s*"([\w-]+)"`), func(s string) string { return "err-strata-ingester-" + s }},
		// Literal IDs; one followed by a dash is a prefix the code completes, covered by the patterns above.
		{regexp.MustCompile(`(err-strata-[a-z][a-z-]*[a-z])(?:[^a-z-]|$)`), func(s string) string { return s }},
	}
	found := 0
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, p := range producers {
			for _, m := range p.re.FindAllStringSubmatch(string(src), -1) {
				found++
				id := p.id(m[1])
				require.True(t, strings.Contains(string(doc), "\n### "+id+"\n"), "%s produces %s, which docs/errors.md does not explain", path, id)
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, found, 20, "the patterns still find the error IDs")
}
