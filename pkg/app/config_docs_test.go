package app

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigReference_DocsAreUpToDate(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteConfigReference(&b))
	current, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	require.Equal(t, b.String(), string(current), "docs/configuration.md is stale: run go run ./tools/configdocs > docs/configuration.md")
}
