package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
)

// nameScheme is what the ruler's config API checks metric and label names with: the legacy scheme,
// as the distributor checks the series that recording rules write. Files are checked the same way, so
// that what passes `rules check` is accepted by `rules load`.
var nameScheme = model.LegacyValidation

// namespaceKey is the top-level key of mimirtool's rule file format: `namespace: X` beside `groups:`.
const namespaceKey = "namespace"

// ruleFile is a rule file: Prometheus' format (`groups:`), in a namespace given by the file or its name.
type ruleFile struct {
	path      string
	namespace string
	groups    []rulefmt.RuleGroup
}

// loadRuleFile reads and validates a rule file. Its namespace is its `namespace:` key, else
// defaultNamespace when not empty, else its name without extension. Every problem found is returned,
// each naming the file and, where rulefmt knows it, the line.
func loadRuleFile(path, defaultNamespace string, p parser.Parser) (*ruleFile, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{err}
	}
	rf := &ruleFile{path: path, namespace: defaultNamespace}
	if rf.namespace == "" {
		rf.namespace = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	content, namespace, hasNamespace, err := splitNamespace(data)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", path, err)}
	}
	if hasNamespace {
		rf.namespace = namespace
	}
	groups, errs := rulefmt.Parse(content, false, nameScheme, p, slog.New(slog.DiscardHandler))
	for i := range errs {
		errs[i] = fmt.Errorf("%s: %w", path, errs[i])
	}
	if err := rulestore.CheckName("namespace", rf.namespace); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	if groups != nil {
		rf.groups = groups.Groups
		for _, g := range groups.Groups {
			errs = append(errs, checkGroupForRuler(path, g)...)
		}
	}
	return rf, errs
}

// checkGroupForRuler returns what the ruler's config API would refuse in g that rulefmt accepts.
func checkGroupForRuler(path string, g rulefmt.RuleGroup) []error {
	var errs []error
	if g.Name != "" { // rulefmt reports an empty name
		if err := rulestore.CheckName("group", g.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s: group %q: %w", path, g.Name, err))
		}
	}
	if len(g.Rules) == 0 {
		errs = append(errs, fmt.Errorf("%s: group %q has no rules; the ruler refuses an empty group", path, g.Name))
	}
	if g.Limit < 0 {
		errs = append(errs, fmt.Errorf("%s: group %q: limit must not be negative, got %d", path, g.Name, g.Limit))
	}
	return errs
}

// splitNamespace takes the top-level `namespace:` key out of a rule file and returns the rest, which
// is in Prometheus' format. When the key and its value are on a line of their own the line is blanked
// rather than the document re-encoded, so that rulefmt's line numbers stay those of the file.
func splitNamespace(data []byte) (content []byte, namespace string, ok bool, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, "", false, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return data, "", false, nil
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, value := root.Content[i], root.Content[i+1]
		if key.Value != namespaceKey {
			continue
		}
		if value.Kind != yaml.ScalarNode || value.Tag != "!!str" && value.Tag != "!!int" && value.Tag != "!!float" {
			return nil, "", false, fmt.Errorf("%d:%d: namespace must be a string", value.Line, value.Column)
		}
		if blanked, ok := blankLine(data, key, value); ok && root.Style&yaml.FlowStyle == 0 {
			return blanked, value.Value, true, nil
		}
		root.Content = append(root.Content[:i:i], root.Content[i+2:]...)
		out, err := yaml.Marshal(&doc)
		return out, value.Value, true, err
	}
	return data, "", false, nil
}

// blankLine returns data with the line holding key and value replaced by a comment, when both are
// alone on that line.
func blankLine(data []byte, key, value *yaml.Node) ([]byte, bool) {
	if key.Line != value.Line || value.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return nil, false
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	i := key.Line - 1
	if i >= len(lines) || !bytes.HasPrefix(bytes.TrimLeft(lines[i], " "), []byte(namespaceKey)) {
		return nil, false
	}
	out := make([][]byte, len(lines))
	copy(out, lines)
	out[i] = []byte("#\n")
	return bytes.Join(out, nil), true
}

// loadRuleFiles loads files and checks across them that a namespace has no two groups of one name.
func loadRuleFiles(paths []string, defaultNamespace string, p parser.Parser) ([]*ruleFile, []error) {
	var (
		files []*ruleFile
		errs  []error
	)
	seen := map[[2]string]string{} // namespace and group → the file that has it
	for _, path := range paths {
		rf, ferrs := loadRuleFile(path, defaultNamespace, p)
		errs = append(errs, ferrs...)
		if rf == nil {
			continue
		}
		for _, g := range rf.groups {
			key := [2]string{rf.namespace, g.Name}
			if other, dup := seen[key]; dup && other != path {
				errs = append(errs, fmt.Errorf("%s: group %q of namespace %q is also in %s", path, g.Name, rf.namespace, other))
			}
			seen[key] = path
		}
		files = append(files, rf)
	}
	return files, errs
}

// groupsByNamespace merges the files' groups by namespace.
func groupsByNamespace(files []*ruleFile) map[string][]rulefmt.RuleGroup {
	out := map[string][]rulefmt.RuleGroup{}
	for _, rf := range files {
		out[rf.namespace] = append(out[rf.namespace], rf.groups...)
	}
	return out
}

// errorList formats errs one per line.
func errorList(errs []error) string {
	var b strings.Builder
	for _, err := range errs {
		b.WriteString("  " + strings.ReplaceAll(err.Error(), "\n", "\n    ") + "\n")
	}
	return b.String()
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
