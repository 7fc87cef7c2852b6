package app

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// derivedDefaults are the defaults, as the configuration reference shows them, of the flags whose value
// LoadConfig works out from other settings when they are not set. For these the registered default is
// only where an unset flag starts, and showing it would mislead.
var derivedDefaults = map[string]string{
	"ingester.ring.unregister-on-shutdown": "`true` with a replication factor of 1, else `false`",
}

func init() {
	// Every ring's heartbeat period: see Config.deriveHeartbeatPeriods.
	for _, prefix := range []string{"ingester.ring.", "distributor.ring.", "compactor.ring.", "store-gateway.sharding-ring.", "ruler.ring.", "alertmanager.sharding-ring."} {
		derivedDefaults[prefix+"heartbeat-period"] = "`15s`, or a quarter of `-ring.heartbeat-timeout` when that is 15s or less"
	}
}

// WriteConfigReference writes the Markdown configuration reference, generated from the flags so that
// the help text is the single source. docs/configuration.md is this output.
func WriteConfigReference(w io.Writer) error {
	cfg := &Config{}
	f := flag.NewFlagSet("strata", flag.ContinueOnError)
	cfg.RegisterFlags(f)

	groups := map[string][]*flag.Flag{}
	f.VisitAll(func(fl *flag.Flag) {
		section, _, _ := strings.Cut(fl.Name, ".")
		groups[section] = append(groups[section], fl)
	})
	sections := make([]string, 0, len(groups))
	for s := range groups {
		sections = append(sections, s)
	}
	sort.Strings(sections)

	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("<!-- Generated from the flags by `make docs` (go run ./tools/configdocs); do not edit. -->\n\n")
	b.WriteString("Every setting is a command-line flag and a key of the YAML file given with `-config.file`. The key\n")
	b.WriteString("path is the flag name split at its dots, with dashes written as underscores:\n")
	b.WriteString("`-distributor.replication-factor=3` is\n\n```yaml\ndistributor:\n  replication_factor: 3\n```\n\n")
	b.WriteString("Flags given on the command line override the file. With `-config.expand-env`, `${VAR}` and\n")
	b.WriteString("`${VAR:default}` in the file are replaced from the environment. A key that names no flag is an error.\n")
	b.WriteString("`GET /config` shows the effective configuration in the same YAML form, secrets masked.\n\n")
	b.WriteString("The per-tenant limits are the exception: their defaults are kept under `limits:`, with the keys\n")
	b.WriteString("that a tenant's entry in the runtime configuration file (`-runtime-config.file`) uses to override\n")
	b.WriteString("them, as in Mimir. See docs/limits.md.\n")
	for _, s := range sections {
		fmt.Fprintf(&b, "\n## %s\n\n| flag | YAML key | default | description |\n|---|---|---|---|\n", s)
		for _, fl := range groups[s] {
			key := strings.Join(fileKey(fl.Name), ".")
			if flagsNotInFile[fl.Name] {
				key = "(command line only)"
			}
			def := "`" + fl.DefValue + "`"
			if strings.HasSuffix(fl.Name, ".instance-id") || strings.HasSuffix(fl.Name, ".instance-addr") {
				def = "`(this machine's)`"
			}
			if d, ok := derivedDefaults[fl.Name]; ok {
				def = d
			}
			fmt.Fprintf(&b, "| `-%s` | `%s` | %s | %s |\n", fl.Name, key, def, strings.ReplaceAll(fl.Usage, "|", "\\|"))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
