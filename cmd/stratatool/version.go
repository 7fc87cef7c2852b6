package main

import (
	"io"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/strata-metrics/strata/pkg/version"
)

func registerVersionCommand(app *kingpin.Application, commands map[string]command) {
	cmd := app.Command("version", "Print the version of stratatool.")
	commands[cmd.FullCommand()] = func(stdout, _ io.Writer) int {
		// The same build information as `strata -version`, under this binary's name.
		_, _ = io.WriteString(stdout, strings.Replace(version.Get().String(), "strata,", "stratatool,", 1))
		return 0
	}
}
