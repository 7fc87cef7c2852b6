// Command configdocs prints docs/configuration.md, generated from Strata's flags.
package main

import (
	"fmt"
	"os"

	"github.com/strata-metrics/strata/pkg/app"
)

func main() {
	if err := app.WriteConfigReference(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
