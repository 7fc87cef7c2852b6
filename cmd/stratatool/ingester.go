package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/alecthomas/kingpin/v2"
)

// registerIngesterCommands adds the operator commands of one ingester process, addressed by --address
// (as a Kubernetes preStop hook does with its own pod: --address=http://localhost:8080).
func registerIngesterCommands(app *kingpin.Application, cfg *clientConfig, commands map[string]command) {
	ingester := app.Command("ingester", "Operate one ingester process (--address is that process).")
	cmd := ingester.Command("prepare-shutdown", "Make the ingester leave the ring when it next stops, before a scale-down, so its series move to the remaining ingesters (POST /ingester/prepare-shutdown). Needs the admin role when authentication is on.")
	undo := cmd.Flag("undo", "Undo it: the ingester keeps its place in the ring when it stops, as configured (DELETE).").Bool()
	commands[cmd.FullCommand()] = func(stdout, stderr io.Writer) int {
		c, err := cfg.newClientFor(false)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "stratatool: %v\n", err)
			return 1
		}
		method, done := http.MethodPost, "the ingester will leave the ring when it stops"
		if *undo {
			method, done = http.MethodDelete, "the ingester will keep its place in the ring when it stops, as configured"
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		if _, err := c.do(ctx, method, "/ingester/prepare-shutdown", nil, http.StatusNoContent); err != nil {
			_, _ = fmt.Fprintf(stderr, "stratatool: %v\n", err)
			return 1
		}
		_, _ = fmt.Fprintln(stdout, done)
		return 0
	}
}
