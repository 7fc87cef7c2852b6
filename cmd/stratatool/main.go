// Command stratatool is the command-line client for users of a Strata cluster: it tests, checks and
// formats rule files offline, manages a tenant's rule groups and Alertmanager configuration through
// the cluster's config APIs, and validates Alertmanager configurations. Its commands and flags follow
// Grafana Mimir's mimirtool, so that scripts and habits carry over.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kingpin/v2"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is a parsed subcommand, ready to run; it returns the exit status.
type command func(stdout, stderr io.Writer) int

// exitRequest is what kingpin's terminate function panics with: after --help or a usage error kingpin
// wants to exit the process, which run must not do (tests call it), so it unwinds to run instead.
type exitRequest struct{ status int }

// run parses args and runs the command they select, returning the process' exit status.
func run(args []string, stdout, stderr io.Writer) (status int) {
	app := kingpin.New("stratatool", "A command-line client for users of a Strata cluster: rule unit tests, rule file checks, the rules and Alertmanager configuration of a tenant, backfill of TSDB blocks, and backups and block maintenance of the bucket.")
	app.ErrorWriter(stderr)
	app.UsageWriter(stdout)
	app.HelpFlag.Short('h')
	app.Terminate(func(status int) { panic(exitRequest{status}) })
	defer func() {
		if r := recover(); r != nil {
			req, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			status = req.status
		}
	}()

	client := &clientConfig{}
	client.registerFlags(app)
	commands := map[string]command{}
	registerRulesCommands(app, client, commands)
	registerAlertmanagerCommands(app, client, commands)
	registerBackfillCommand(app, client, commands)
	registerBucketCommands(app, commands)
	registerBlocksCommands(app, commands)
	registerIngesterCommands(app, client, commands)
	registerVersionCommand(app, commands)

	selected, err := app.Parse(args)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "stratatool: error: %v, try --help\n", err)
		return 1
	}
	cmd, ok := commands[selected]
	if !ok { // kingpin shows the usage when no command is given
		return 0
	}
	return cmd(stdout, stderr)
}
