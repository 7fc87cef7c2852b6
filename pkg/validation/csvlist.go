package validation

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// CSVList is a list limit written as comma-separated text, in a flag and in YAML (Mimir's shape for
// promote_otel_resource_attributes); YAML also takes a list. Items are trimmed and empty ones dropped.
type CSVList []string

// String renders the list as its flag takes it.
func (l CSVList) String() string { return strings.Join(l, ",") }

// Set parses comma-separated text.
func (l *CSVList) Set(s string) error {
	var items CSVList
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	*l = items
	return nil
}

// UnmarshalYAML takes comma-separated text or a list of plain values.
func (l *CSVList) UnmarshalYAML(node *yaml.Node) error {
	switch node.Kind {
	case yaml.ScalarNode:
		return l.Set(node.Value)
	case yaml.SequenceNode:
		items := make([]string, 0, len(node.Content))
		for _, c := range node.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: list items must be plain values", c.Line)
			}
			items = append(items, c.Value)
		}
		return l.Set(strings.Join(items, ","))
	}
	return fmt.Errorf("line %d: expected comma-separated text or a list", node.Line)
}

// MarshalYAML writes the comma-separated text.
func (l CSVList) MarshalYAML() (any, error) { return l.String(), nil }
