package main

import (
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/alecthomas/kingpin/v2"

	"github.com/strata-metrics/strata/pkg/ruletest"
)

func registerRulesCommands(app *kingpin.Application, client *clientConfig, commands map[string]command) {
	rules := app.Command("rules", "Test, check and format rule files; view and change a tenant's rule groups.")
	registerRulesTest(rules, commands)
	registerRulesCheck(rules, commands)
	registerRulesLint(rules, commands)
	registerRulesAPICommands(rules, client, commands)
	registerRulesSyncCommands(rules, client, commands)
}

func registerRulesTest(rules *kingpin.CmdClause, commands map[string]command) {
	cmd := rules.Command("test", "Run rule unit tests, in the test file format of `promtool test rules`. Exits 1 when a test fails.")
	files := cmd.Arg("test-file", "Unit test files.").Required().Strings()
	run := cmd.Flag("run", "Run only the test groups whose name matches this regular expression; may be repeated.").Strings()
	ignoreUnknown := cmd.Flag("ignore-unknown-fields", "Accept fields Prometheus does not know in the rule files (the test files stay strict).").Bool()
	junitPath := cmd.Flag("junit", "Also write the results to this file as JUnit XML.").String()
	commands[cmd.FullCommand()] = func(stdout, stderr io.Writer) int {
		opts := ruletest.Options{IgnoreUnknownFields: *ignoreUnknown}
		for _, expr := range *run {
			re, err := regexp.Compile(expr)
			if err != nil {
				_, _ = fmt.Fprintf(stderr, "stratatool: --run %q: %v\n", expr, err)
				return 1
			}
			opts.Run = append(opts.Run, re)
		}
		results, status := ruletest.Run(stdout, opts, *files...)
		if *junitPath != "" {
			if err := writeJUnitFile(*junitPath, results); err != nil {
				_, _ = fmt.Fprintf(stderr, "stratatool: --junit: %v\n", err)
				return 1
			}
		}
		return status
	}
}

func writeJUnitFile(path string, results []*ruletest.FileResult) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := ruletest.WriteJUnit(f, results); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
