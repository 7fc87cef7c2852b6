// Command gen writes Strata's Grafana dashboards (production/dashboards/*.json) from the definitions in
// dashboards.go, built with the Grafana Foundation SDK. With -check it writes nothing and fails when a
// committed file differs from what it would write, so that the JSON and the code cannot drift apart.
//
// It is a module of its own so that the SDK stays out of Strata's go.mod.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	out := flag.String("out", "..", "directory the dashboard JSON files are written to")
	check := flag.Bool("check", false, "write nothing; exit 1 when a file in -out differs from what would be written, or is missing, or is not generated")
	flag.Parse()
	if err := run(*out, *check); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(dir string, check bool) error {
	files, err := render()
	if err != nil {
		return err
	}
	if !check {
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	var stale []string
	for name, data := range files {
		have, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(have, data) {
			stale = append(stale, name)
		}
	}
	existing, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	for _, path := range existing {
		if _, ok := files[filepath.Base(path)]; !ok {
			stale = append(stale, filepath.Base(path)+" (not generated: remove it)")
		}
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		return fmt.Errorf("dashboards differ from production/dashboards/gen's output: %s; run `make dashboards`", strings.Join(stale, ", "))
	}
	return nil
}

// render builds every dashboard and returns its JSON by file name.
func render() (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, d := range dashboards() {
		built, err := d.builder().Build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.uid, err)
		}
		data, err := json.MarshalIndent(built, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.uid, err)
		}
		files[d.uid+".json"] = append(data, '\n')
	}
	return files, nil
}
