package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/strata-metrics/strata/pkg/ruler"
)

// listRuleGroups returns the tenant's groups by namespace: all of them, or namespace's when not "".
func (c *client) listRuleGroups(ctx context.Context, namespace string) (map[string][]rulefmt.RuleGroup, error) {
	path := ruler.ConfigRulesPath
	if namespace != "" {
		path += "/" + pathSegment(namespace)
	}
	body, err := c.do(ctx, http.MethodGet, path, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	groups := map[string][]rulefmt.RuleGroup{}
	if err := yaml.Unmarshal(body, &groups); err != nil {
		return nil, fmt.Errorf("GET %s: the answer is not rule groups by namespace: %w", path, err)
	}
	return groups, nil
}

func (c *client) getRuleGroup(ctx context.Context, namespace, group string) (rulefmt.RuleGroup, error) {
	path := ruler.ConfigRulesPath + "/" + pathSegment(namespace) + "/" + pathSegment(group)
	var g rulefmt.RuleGroup
	body, err := c.do(ctx, http.MethodGet, path, nil, http.StatusOK)
	if err != nil {
		return g, err
	}
	if err := yaml.Unmarshal(body, &g); err != nil {
		return g, fmt.Errorf("GET %s: the answer is not a rule group: %w", path, err)
	}
	return g, nil
}

func (c *client) setRuleGroup(ctx context.Context, namespace string, g rulefmt.RuleGroup) error {
	body, err := yaml.Marshal(g)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, ruler.ConfigRulesPath+"/"+pathSegment(namespace), body, http.StatusAccepted)
	return err
}

func (c *client) deleteRuleGroup(ctx context.Context, namespace, group string) error {
	_, err := c.do(ctx, http.MethodDelete, ruler.ConfigRulesPath+"/"+pathSegment(namespace)+"/"+pathSegment(group), nil, http.StatusAccepted)
	return err
}

func (c *client) deleteNamespace(ctx context.Context, namespace string) error {
	_, err := c.do(ctx, http.MethodDelete, ruler.ConfigRulesPath+"/"+pathSegment(namespace), nil, http.StatusAccepted)
	return err
}

// withClient makes a command of fn, which gets a client of the global flags; an error fn returns is
// printed and exits 1.
func withClient(cfg *clientConfig, fn func(ctx context.Context, c *client, stdout io.Writer) error) command {
	return func(stdout, stderr io.Writer) int {
		c, err := cfg.newClient()
		if err == nil {
			err = fn(context.Background(), c, stdout)
		}
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "stratatool: %v\n", err)
			return 1
		}
		return 0
	}
}

func registerRulesAPICommands(rules *kingpin.CmdClause, cfg *clientConfig, commands map[string]command) {
	list := rules.Command("list", "List the tenant's rule groups, by namespace.")
	commands[list.FullCommand()] = withClient(cfg, func(ctx context.Context, c *client, stdout io.Writer) error {
		groups, err := c.listRuleGroups(ctx, "")
		if err != nil {
			return err
		}
		if len(groups) == 0 {
			_, _ = fmt.Fprintln(stdout, "no rule groups")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
		_, _ = fmt.Fprintln(tw, "NAMESPACE\tGROUP\tRULES")
		for _, ns := range sortedKeys(groups) {
			for _, g := range groups[ns] {
				_, _ = fmt.Fprintf(tw, "%s\t%s\t%d\n", ns, g.Name, len(g.Rules))
			}
		}
		return tw.Flush()
	})

	get := rules.Command("get", "Print one rule group as YAML.")
	getNamespace := get.Arg("namespace", "The group's namespace.").Required().String()
	getGroup := get.Arg("group", "The group's name.").Required().String()
	commands[get.FullCommand()] = withClient(cfg, func(ctx context.Context, c *client, stdout io.Writer) error {
		g, err := c.getRuleGroup(ctx, *getNamespace, *getGroup)
		if err != nil {
			return err
		}
		out, err := yaml.Marshal(g)
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	})

	load := rules.Command("load", "Create or replace the groups of rule files in the cluster. Other groups are left alone (see sync).")
	loadFiles := load.Arg("rule-file", "Rule files, in Prometheus' format (groups:) or mimirtool's (namespace: and groups:).").Required().Strings()
	loadNamespace := load.Flag("namespace", "Namespace of the files that name none (default: the file's name without extension).").String()
	commands[load.FullCommand()] = withClient(cfg, func(ctx context.Context, c *client, stdout io.Writer) error {
		files, err := loadValidRuleFiles(*loadFiles, *loadNamespace)
		if err != nil {
			return err
		}
		for _, rf := range files {
			for _, g := range rf.groups {
				if err := c.setRuleGroup(ctx, rf.namespace, g); err != nil {
					return err
				}
				_, _ = fmt.Fprintf(stdout, "loaded group %q in namespace %q\n", g.Name, rf.namespace)
			}
		}
		return nil
	})

	del := rules.Command("delete", "Delete one rule group, or every group of a namespace.")
	delNamespace := del.Arg("namespace", "The namespace.").Required().String()
	delGroup := del.Arg("group", "The group; without it, every group of the namespace.").String()
	commands[del.FullCommand()] = withClient(cfg, func(ctx context.Context, c *client, stdout io.Writer) error {
		if *delGroup == "" {
			if err := c.deleteNamespace(ctx, *delNamespace); err != nil {
				return err
			}
			_, _ = fmt.Fprintf(stdout, "deleted namespace %q\n", *delNamespace)
			return nil
		}
		if err := c.deleteRuleGroup(ctx, *delNamespace, *delGroup); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(stdout, "deleted group %q of namespace %q\n", *delGroup, *delNamespace)
		return nil
	})
}

// loadValidRuleFiles loads rule files as `rules check` does, and fails on any problem: nothing is sent
// to the cluster from files with one.
func loadValidRuleFiles(paths []string, defaultNamespace string) ([]*ruleFile, error) {
	files, errs := loadRuleFiles(paths, defaultNamespace, parser.NewParser(parser.Options{}))
	if len(errs) > 0 {
		return nil, fmt.Errorf("the rule files have %s, nothing was sent:\n%s", plural(len(errs), "problem"), strings.TrimSuffix(errorList(errs), "\n"))
	}
	return files, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
