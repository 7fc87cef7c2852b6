package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/pmezard/go-difflib/difflib"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// foldWidth is the column past which the YAML encoder folds a long plain or quoted string onto
// several lines; lint writes such strings as literal blocks instead, which it never folds.
const foldWidth = 80

func registerRulesCheck(rules *kingpin.CmdClause, commands map[string]command) {
	cmd := rules.Command("check", "Validate rule files offline, as the ruler would on load: YAML, PromQL, templates, names, unique groups per namespace. Exits 1 on a problem.")
	files := cmd.Arg("rule-file", "Rule files, in Prometheus' format (groups:) or mimirtool's (namespace: and groups:).").Required().Strings()
	namespace := cmd.Flag("namespace", "Namespace of the files that name none (default: the file's name without extension).").String()
	commands[cmd.FullCommand()] = func(stdout, stderr io.Writer) int {
		p := parser.NewParser(parser.Options{})
		loaded, errs := loadRuleFiles(*files, *namespace, p)
		if len(errs) > 0 {
			_, _ = fmt.Fprintf(stderr, "%s found:\n%s", plural(len(errs), "problem"), errorList(errs))
			return 1
		}
		for _, rf := range loaded {
			rules := 0
			for _, g := range rf.groups {
				rules += len(g.Rules)
			}
			_, _ = fmt.Fprintf(stdout, "OK  %s: namespace %q, %d groups, %d rules\n", rf.path, rf.namespace, len(rf.groups), rules)
		}
		return 0
	}
}

func registerRulesLint(rules *kingpin.CmdClause, commands map[string]command) {
	cmd := rules.Command("lint", "Format rule files in place: PromQL expressions in their canonical form, YAML indented by 2. Comments are kept.")
	files := cmd.Arg("rule-file", "Rule files to format.").Required().Strings()
	dryRun := cmd.Flag("dry-run", "Show what would change, as a diff, without writing the files.").Bool()
	commands[cmd.FullCommand()] = func(stdout, stderr io.Writer) int {
		p := parser.NewParser(parser.Options{})
		status := 0
		for _, path := range *files {
			if err := lintFile(path, *dryRun, p, stdout); err != nil {
				_, _ = fmt.Fprintf(stderr, "%s: %v\n", path, err)
				status = 1
			}
		}
		return status
	}
}

// lintFile formats the rule file at path, or with dryRun prints the diff of what formatting changes.
func lintFile(path string, dryRun bool, p parser.Parser, stdout io.Writer) error {
	before, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	after, err := formatRuleFile(before, p)
	if err != nil {
		return err
	}
	if bytes.Equal(before, after) {
		_, _ = fmt.Fprintf(stdout, "unchanged %s\n", path)
		return nil
	}
	if dryRun {
		diff, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: lines(before), B: lines(after),
			FromFile: path, ToFile: path + " (formatted)", Context: 3,
		})
		if err != nil {
			return err
		}
		_, _ = fmt.Fprint(stdout, diff)
		return nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, after, info.Mode().Perm()); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(stdout, "formatted %s\n", path)
	return nil
}

// formatRuleFile rewrites each rule's expr in PromQL's canonical form and re-encodes the document, comments and key order kept.
func formatRuleFile(data []byte, p parser.Parser) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return data, nil
	}
	var errs []string
	for gi, group := range sequence(mappingValue(doc.Content[0], "groups")) {
		for ri, rule := range sequence(mappingValue(group, "rules")) {
			expr := mappingValue(rule, "expr")
			if expr == nil || expr.Kind != yaml.ScalarNode {
				continue
			}
			parsed, err := p.ParseExpr(expr.Value)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%d:%d: groups[%d].rules[%d].expr: %v", expr.Line, expr.Column, gi, ri, err))
				continue
			}
			// One line, as mimirtool writes it: Prettify's layout indents by operator precedence,
			// which a YAML block can only hold with an explicit indentation indicator.
			expr.Value = parsed.String()
			expr.Style = 0 // chosen by avoidFolding, or by the encoder
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("not formatted, its expressions do not parse:\n%s", strings.Join(errs, "\n"))
	}
	avoidFolding(&doc, 0)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// avoidFolding gives multi-line strings, and those long enough for the encoder to fold, the literal
// block style: folded, a PromQL expression or a template is hard to read.
func avoidFolding(n *yaml.Node, depth int) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		long := 2*depth+len(n.Value) > foldWidth-20 // 20: room for the key
		if (strings.Contains(n.Value, "\n") || long) && n.Value == strings.TrimSpace(n.Value) {
			n.Style = yaml.LiteralStyle
		}
	}
	for _, c := range n.Content {
		avoidFolding(c, depth+1)
	}
}

// lines splits data after each newline.
func lines(data []byte) []string {
	out := strings.SplitAfter(string(data), "\n")
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// mappingValue returns the value of key in mapping node n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// sequence returns the items of sequence node n, or nil.
func sequence(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}
