package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/strata-metrics/strata/pkg/app"
)

// verifyConfig is -config.verify: it loads and validates the configuration exactly as a start does,
// without building any component (no listener, disk or bucket is opened), prints every problem to
// stderr and returns the exit status: 0 when the configuration is valid, 1 otherwise.
func verifyConfig(args []string, stdout, stderr io.Writer) int {
	_, _, err := app.LoadConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		problems := flatten(err)
		_, _ = fmt.Fprintf(stderr, "strata: invalid configuration, %d problem(s):\n", len(problems))
		for _, p := range problems {
			_, _ = fmt.Fprintln(stderr, "  "+p.Error())
		}
		return 1
	}
	_, _ = fmt.Fprintln(stdout, "config OK")
	return 0
}

// flatten lists the errors that errors.Join put together, at every depth.
func flatten(err error) []error {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range joined.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}
