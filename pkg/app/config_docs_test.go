package app

import (
	"bytes"
	"os"
	"strings"
	"testing"
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
