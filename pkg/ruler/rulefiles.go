package ruler

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/prometheus/prometheus/model/rulefmt"
	"gopkg.in/yaml.v3"
)

// fileNameEncoding turns a namespace into a file name: URL-safe base64 has no '/' and never gives
// "." or "..", and a namespace of rulestore.MaxNameLength bytes encodes to 255, the longest file name
// filesystems take (so no extension). Temporary files start with '.', which it never gives.
var fileNameEncoding = base64.RawURLEncoding.Strict()

// ruleFileName is the file under a tenant's directory that holds the groups of namespace.
func ruleFileName(namespace string) string {
	return fileNameEncoding.EncodeToString([]byte(namespace))
}

// namespaceOfFile returns the namespace whose groups the rule file at path holds.
func namespaceOfFile(path string) string {
	ns, err := fileNameEncoding.DecodeString(filepath.Base(path))
	if err != nil {
		return filepath.Base(path) // not written by writeRuleFiles; cannot happen
	}
	return string(ns)
}

// writeRuleFiles makes dir hold one Prometheus rule file per namespace of groups, and nothing else.
// It returns the files, sorted, and whether any file was written or removed: unchanged files are not
// rewritten, so that an unchanged tenant need not be reloaded.
func writeRuleFiles(dir string, groups map[string][]rulefmt.RuleGroup) (files []string, changed bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, false, fmt.Errorf("create rule directory: %w", err)
	}
	keep := make(map[string]bool, len(groups))
	for ns, gs := range groups {
		name := ruleFileName(ns)
		keep[name] = true
		path := filepath.Join(dir, name)
		files = append(files, path)
		data, err := yaml.Marshal(rulefmt.RuleGroups{Groups: gs})
		if err != nil {
			return nil, false, fmt.Errorf("encode rule groups of namespace %q: %w", ns, err)
		}
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := writeFileAtomically(dir, path, data); err != nil {
			return nil, false, err
		}
		changed = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, fmt.Errorf("list rule directory: %w", err)
	}
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return nil, false, fmt.Errorf("remove old rule file: %w", err)
		}
		changed = true
	}
	slices.Sort(files)
	return files, changed, nil
}

// writeFileAtomically replaces path with data through a rename, so that a reload never reads a
// half-written file.
func writeFileAtomically(dir, path string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write rule file: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write rule file: %w", err)
	}
	return nil
}
