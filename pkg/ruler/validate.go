package ruler

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
)

// maxRuleGroupBytes bounds the body of a posted rule group, and the text it may hold once its YAML
// aliases are expanded. Mimir has no such flag; a constant keeps the API safe to expose. A group at
// the default limit of 20 rules fits in a few KiB.
const maxRuleGroupBytes = 1 << 20

// nameScheme is the scheme rule, label and annotation names are checked against: the legacy one, as
// the distributor checks the series that recording rules will write.
var nameScheme = model.LegacyValidation

// decodeRuleGroup decodes a posted body: exactly one YAML document holding one rule group, without
// fields rulefmt.RuleGroup does not have.
func decodeRuleGroup(body []byte) (rulefmt.RuleGroup, error) {
	var g rulefmt.RuleGroup
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	// yaml.v3 fails a document whose aliases expand far beyond its size ("excessive aliasing"), so a
	// billion-laughs body stops here; what milder expansion gets through, groupTextBytes bounds.
	switch err := dec.Decode(&g); {
	case errors.Is(err, io.EOF):
		return g, errors.New("the body is empty: send one rule group as YAML (name:, rules:)")
	case err != nil:
		return g, fmt.Errorf("the body is not a rule group in YAML: %w", err)
	}
	// A second document is not read into anything, so its aliases are not expanded.
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return g, errors.New("the body holds more than one YAML document: send one rule group per request")
	}
	if n := groupTextBytes(g); n > maxRuleGroupBytes {
		return g, fmt.Errorf("the rule group holds %d bytes of text once its YAML aliases are expanded, more than the %d allowed", n, maxRuleGroupBytes)
	}
	return g, nil
}

// groupTextBytes is the length of all the text of g. Strings that YAML aliases repeat are shared in
// memory, but validating, storing and evaluating the group would handle every copy.
func groupTextBytes(g rulefmt.RuleGroup) int {
	n := len(g.Name) + mapBytes(g.Labels)
	for _, r := range g.Rules {
		n += len(r.Record) + len(r.Alert) + len(r.Expr) + mapBytes(r.Labels) + mapBytes(r.Annotations)
	}
	return n
}

func mapBytes(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

// validateRuleGroup checks g as Prometheus checks a rule file's group (rulefmt), and returns every
// problem found, each naming the rule it is about. Durations (interval, query_offset, for,
// keep_firing_for) cannot be negative: model.Duration does not parse a sign.
func validateRuleGroup(g rulefmt.RuleGroup, p parser.Parser) error {
	if err := rulestore.CheckName("group", g.Name); err != nil {
		return err
	}
	var errs []error
	if len(g.Rules) == 0 {
		// As in Mimir: a group without rules does nothing, so it is more likely a mistake.
		errs = append(errs, fmt.Errorf("rule group %q has no rules", g.Name))
	}
	if g.Limit < 0 {
		errs = append(errs, fmt.Errorf("rule group %q: limit must not be negative, got %d", g.Name, g.Limit))
	}
	for k, v := range g.Labels {
		if !nameScheme.IsValidLabelName(k) || k == model.MetricNameLabel {
			errs = append(errs, fmt.Errorf("rule group %q: invalid label name %q", g.Name, k))
		}
		if !model.LabelValue(v).IsValid() {
			errs = append(errs, fmt.Errorf("rule group %q: label %q: value is not valid UTF-8", g.Name, k))
		}
	}
	for i, r := range g.Rules {
		kind, name := "recording rule", r.Record
		if r.Alert != "" {
			kind, name = "alerting rule", r.Alert
		}
		// Without the YAML nodes of a rule file, rulefmt's errors would carry line 0, column 0:
		// unwrapped, they are just the problem.
		for _, werr := range r.Validate(rulefmt.RuleNode{}, nameScheme, p) {
			errs = append(errs, fmt.Errorf("rule %d (%s %q): %w", i+1, kind, name, errors.Unwrap(&werr)))
		}
	}
	return errors.Join(errs...)
}
