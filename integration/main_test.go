// Package integration runs real Strata processes (the binary built from this tree) on 127.0.0.1 and
// drives them over HTTP like a user or a Prometheus server would.
package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// strataBinary is built once per test run by TestMain.
var strataBinary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("STRATA_NOISY_CLIENT") != "" {
		return m.Run() // a helper process: it runs no strata
	}
	dir, err := os.MkdirTemp("", "strata-integration-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	strataBinary = filepath.Join(dir, "strata")
	build := exec.Command("go", "build", "-o", strataBinary, "../cmd/strata")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build strata:", err)
		return 1
	}
	return m.Run()
}
