package app

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/validation"
)

// The YAML config file mirrors the flags: a flag's name split at its dots, with dashes written as
// underscores, is the key path of the same setting (-distributor.replication-factor is
// distributor: {replication_factor: ...}). The flag set is therefore the single description of the
// configuration, and a key that names no flag is an error.

// limitsSection holds the per-tenant limits' defaults under the keys the runtime overrides use (Mimir's
// names), rather than under their flags' names, which spread over several sections.
const limitsSection = "limits"

// fileKey returns the YAML key path of a flag.
func fileKey(flagName string) []string {
	if key, ok := validation.KeyOfFlag(flagName); ok {
		return []string{limitsSection, key}
	}
	return strings.Split(strings.ReplaceAll(flagName, "-", "_"), ".")
}

// flagsNotInFile are the flags that make no sense inside the file itself.
var flagsNotInFile = map[string]bool{"config.file": true, "config.expand-env": true, "version": true, "config.verify": true}

// applyConfigFile sets every flag named by the YAML document in data.
func applyConfigFile(f *flag.FlagSet, data []byte, name string) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("parse %s: %w", name, err)
	}
	if len(root.Content) == 0 {
		return nil // empty file
	}
	return applyNode(f, root.Content[0], nil, name)
}

func applyNode(f *flag.FlagSet, node *yaml.Node, path []string, file string) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: %s must be a mapping", file, node.Line, keyOrRoot(path))
	}
	var errs []error // every bad key is reported, not only the first
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := node.Content[i], node.Content[i+1]
		keyPath := append(slices.Clone(path), key.Value)
		flagName := strings.ReplaceAll(strings.Join(keyPath, "."), "_", "-")
		if len(path) == 1 && path[0] == limitsSection {
			flagName = validation.FlagOf(key.Value)
		}
		fl := f.Lookup(flagName)
		if value.Kind == yaml.MappingNode && fl == nil {
			if err := applyNode(f, value, keyPath, file); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if fl == nil && value.Tag == "!!null" && (isSection(f, flagName) || flagName == limitsSection) {
			continue // a section whose keys are all commented out, such as "ingester:" alone
		}
		if fl == nil || flagsNotInFile[flagName] {
			errs = append(errs, fmt.Errorf("%s:%d: unknown configuration key %q", file, key.Line, strings.Join(keyPath, ".")))
			continue
		}
		text, err := scalarText(value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %w", file, value.Line, strings.Join(keyPath, "."), err))
			continue
		}
		if err := f.Set(flagName, text); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: invalid value %q for %s: %w", file, value.Line, text, strings.Join(keyPath, "."), err))
		}
	}
	return errors.Join(errs...)
}

// scalarText renders a YAML value as flag text; a list becomes comma-separated, as list flags take it.
func scalarText(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		items := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("list items must be plain values")
			}
			items = append(items, c.Value)
		}
		return strings.Join(items, ","), nil
	}
	return "", fmt.Errorf("expected a value, got a mapping")
}

// isSection reports whether some flag's name starts with prefix followed by a dot.
func isSection(f *flag.FlagSet, prefix string) bool {
	found := false
	f.VisitAll(func(fl *flag.Flag) {
		if strings.HasPrefix(fl.Name, prefix+".") && !flagsNotInFile[fl.Name] {
			found = true
		}
	})
	return found
}

func keyOrRoot(path []string) string {
	if len(path) == 0 {
		return "the document"
	}
	return strings.Join(path, ".")
}

// expandEnv replaces ${VAR} and ${VAR:default} with the environment's values.
func expandEnv(data []byte) []byte {
	return []byte(os.Expand(string(data), func(key string) string {
		name, def, hasDefault := strings.Cut(key, ":")
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		if hasDefault {
			return def
		}
		return ""
	}))
}

// secretValue is implemented by flag values that /config must mask.
type secretValue interface{ IsSecret() bool }

// effectiveConfig renders every flag's current value as the nested YAML the file takes, masking secrets.
func effectiveConfig(f *flag.FlagSet) ([]byte, error) {
	root := map[string]any{}
	f.VisitAll(func(fl *flag.Flag) {
		if flagsNotInFile[fl.Name] {
			return
		}
		parts := fileKey(fl.Name)
		m := root
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = displayValue(fl)
	})
	return yaml.Marshal(root)
}

func displayValue(fl *flag.Flag) any {
	if s, ok := fl.Value.(secretValue); ok && s.IsSecret() {
		if fl.Value.String() == "" {
			return ""
		}
		return "********"
	}
	getter, ok := fl.Value.(flag.Getter)
	if !ok {
		return fl.Value.String()
	}
	switch v := getter.Get().(type) {
	case time.Duration:
		return v.String()
	case bool, int, int64, uint, uint64, float64:
		return v
	}
	return fl.Value.String()
}
