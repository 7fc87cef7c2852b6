// Command configdocs prints docs/configuration.md, generated from Strata's flags. With -o it writes the
// file instead, and only once the whole reference is generated, so a failed run leaves the old file.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/strata-metrics/strata/pkg/app"
)

func main() {
	out := flag.String("o", "", "File to write the reference to; standard output if empty.")
	flag.Parse()
	var b bytes.Buffer
	if err := app.WriteConfigReference(&b); err != nil {
		fmt.Fprintln(os.Stderr, "configdocs:", err)
		os.Exit(1)
	}
	var err error
	if *out == "" {
		_, err = os.Stdout.Write(b.Bytes())
	} else {
		err = os.WriteFile(*out, b.Bytes(), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "configdocs:", err)
		os.Exit(1)
	}
}
