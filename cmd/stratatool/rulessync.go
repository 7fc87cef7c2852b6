package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/pmezard/go-difflib/difflib"
	"github.com/prometheus/prometheus/model/rulefmt"
	"gopkg.in/yaml.v3"
)

// changeKind is what sync does to a group.
type changeKind int

const (
	groupCreated changeKind = iota // in the files, not in the cluster
	groupUpdated                   // in both, different
	groupDeleted                   // in the cluster, in a namespace of the files, not in them
)

// groupChange is one group that differs between the files and the cluster.
type groupChange struct {
	kind      changeKind
	namespace string
	local     rulefmt.RuleGroup // what the files have (created, updated)
	remote    rulefmt.RuleGroup // what the cluster has (updated, deleted)
}

func (ch groupChange) name() string {
	if ch.kind == groupDeleted {
		return ch.remote.Name
	}
	return ch.local.Name
}

// planSync returns what makes the cluster's namespaces that the files name equal to the files, by
// namespace and then group name. Groups are compared as the ruler stores them: as YAML.
func planSync(local, remote map[string][]rulefmt.RuleGroup) ([]groupChange, error) {
	var changes []groupChange
	for _, ns := range sortedKeys(local) {
		remoteByName := map[string]rulefmt.RuleGroup{}
		for _, g := range remote[ns] {
			remoteByName[g.Name] = g
		}
		for _, g := range local[ns] {
			r, exists := remoteByName[g.Name]
			delete(remoteByName, g.Name)
			if !exists {
				changes = append(changes, groupChange{kind: groupCreated, namespace: ns, local: g})
				continue
			}
			same, err := sameGroup(g, r)
			if err != nil {
				return nil, err
			}
			if !same {
				changes = append(changes, groupChange{kind: groupUpdated, namespace: ns, local: g, remote: r})
			}
		}
		for _, name := range sortedKeys(remoteByName) {
			changes = append(changes, groupChange{kind: groupDeleted, namespace: ns, remote: remoteByName[name]})
		}
	}
	slices.SortStableFunc(changes, func(a, b groupChange) int {
		if c := strings.Compare(a.namespace, b.namespace); c != 0 {
			return c
		}
		return strings.Compare(a.name(), b.name())
	})
	return changes, nil
}

func sameGroup(a, b rulefmt.RuleGroup) (bool, error) {
	ya, err := yaml.Marshal(a)
	if err != nil {
		return false, err
	}
	yb, err := yaml.Marshal(b)
	if err != nil {
		return false, err
	}
	return string(ya) == string(yb), nil
}

// remoteGroups fetches the cluster's groups of the namespaces the files name.
func remoteGroups(ctx context.Context, c *client, local map[string][]rulefmt.RuleGroup) (map[string][]rulefmt.RuleGroup, error) {
	remote := map[string][]rulefmt.RuleGroup{}
	for _, ns := range sortedKeys(local) {
		groups, err := c.listRuleGroups(ctx, ns)
		if err != nil {
			return nil, err
		}
		remote[ns] = groups[ns]
	}
	return remote, nil
}

// writeChanges prints the plan: a line per group, with the YAML diff of each updated one.
func writeChanges(w io.Writer, changes []groupChange) error {
	if len(changes) == 0 {
		_, _ = fmt.Fprintln(w, "no differences: the cluster has the groups of the files")
		return nil
	}
	counts := map[changeKind]int{}
	for _, ch := range changes {
		counts[ch.kind]++
		switch ch.kind {
		case groupCreated:
			_, _ = fmt.Fprintf(w, "+ namespace %q, group %q: in the files only, %s\n", ch.namespace, ch.local.Name, plural(len(ch.local.Rules), "rule"))
		case groupDeleted:
			_, _ = fmt.Fprintf(w, "- namespace %q, group %q: in the cluster only, %s\n", ch.namespace, ch.remote.Name, plural(len(ch.remote.Rules), "rule"))
		case groupUpdated:
			_, _ = fmt.Fprintf(w, "~ namespace %q, group %q: differs\n", ch.namespace, ch.local.Name)
			remote, err := yaml.Marshal(ch.remote)
			if err != nil {
				return err
			}
			local, err := yaml.Marshal(ch.local)
			if err != nil {
				return err
			}
			diff, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
				A: lines(remote), B: lines(local), FromFile: "cluster", ToFile: "files", Context: 2,
			})
			if err != nil {
				return err
			}
			_, _ = fmt.Fprint(w, "    "+strings.ReplaceAll(strings.TrimSuffix(diff, "\n"), "\n", "\n    ")+"\n")
		}
	}
	_, _ = fmt.Fprintf(w, "%d to create, %d to update, %d to delete\n", counts[groupCreated], counts[groupUpdated], counts[groupDeleted])
	return nil
}

// applyChanges makes the changes, deletions first: they free room under the tenant's group limit.
func applyChanges(ctx context.Context, c *client, w io.Writer, changes []groupChange) error {
	for _, ch := range changes {
		if ch.kind != groupDeleted {
			continue
		}
		if err := c.deleteRuleGroup(ctx, ch.namespace, ch.remote.Name); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(w, "deleted group %q of namespace %q\n", ch.remote.Name, ch.namespace)
	}
	for _, ch := range changes {
		if ch.kind == groupDeleted {
			continue
		}
		if err := c.setRuleGroup(ctx, ch.namespace, ch.local); err != nil {
			return err
		}
		verb := "created"
		if ch.kind == groupUpdated {
			verb = "updated"
		}
		_, _ = fmt.Fprintf(w, "%s group %q of namespace %q\n", verb, ch.local.Name, ch.namespace)
	}
	return nil
}

func registerRulesSyncCommands(rules *kingpin.CmdClause, cfg *clientConfig, commands map[string]command) {
	diff := rules.Command("diff", "Show how the cluster's rule groups differ from the files', in the namespaces the files name. Exits 0 whether or not they differ.")
	diffFiles := diff.Arg("rule-file", "Rule files, in Prometheus' format (groups:) or mimirtool's (namespace: and groups:).").Required().Strings()
	diffNamespace := diff.Flag("namespace", "Namespace of the files that name none (default: the file's name without extension).").String()
	commands[diff.FullCommand()] = withClient(cfg, func(ctx context.Context, c *client, stdout io.Writer) error {
		changes, err := syncPlan(ctx, c, *diffFiles, *diffNamespace)
		if err != nil {
			return err
		}
		return writeChanges(stdout, changes)
	})

	sync := rules.Command("sync", "Make the cluster's namespaces named in the files hold exactly the files' groups: create, update and delete groups.")
	syncFiles := sync.Arg("rule-file", "Rule files, in Prometheus' format (groups:) or mimirtool's (namespace: and groups:).").Required().Strings()
	syncNamespace := sync.Flag("namespace", "Namespace of the files that name none (default: the file's name without extension).").String()
	dryRun := sync.Flag("dry-run", "Show what would change without changing it.").Bool()
	commands[sync.FullCommand()] = withClient(cfg, func(ctx context.Context, c *client, stdout io.Writer) error {
		changes, err := syncPlan(ctx, c, *syncFiles, *syncNamespace)
		if err != nil {
			return err
		}
		if *dryRun {
			if err := writeChanges(stdout, changes); err != nil {
				return err
			}
			_, _ = fmt.Fprintln(stdout, "dry run: nothing was changed")
			return nil
		}
		if len(changes) == 0 {
			_, _ = fmt.Fprintln(stdout, "no differences: nothing to change")
			return nil
		}
		return applyChanges(ctx, c, stdout, changes)
	})
}

func syncPlan(ctx context.Context, c *client, paths []string, defaultNamespace string) ([]groupChange, error) {
	files, err := loadValidRuleFiles(paths, defaultNamespace)
	if err != nil {
		return nil, err
	}
	local := groupsByNamespace(files)
	remote, err := remoteGroups(ctx, c, local)
	if err != nil {
		return nil, err
	}
	return planSync(local, remote)
}
