package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// VerifyRequested reports whether args ask for -config.verify. It reads that flag alone, so that the
// caller knows it even when the rest of the command line is wrong.
func VerifyRequested(args []string) bool {
	pre := flag.NewFlagSet("strata", flag.ContinueOnError)
	pre.SetOutput(io.Discard)
	verify := pre.Bool("config.verify", false, "")
	if err := pre.Parse(onlyFlags(args, "config.verify")); err != nil {
		return false
	}
	return *verify
}

// parseAllFlags parses args into f as f.Parse does, but goes on after a bad flag so that every bad flag
// is reported, each once (the flag package would print the whole usage after each). -h still prints the
// usage to stderr and returns flag.ErrHelp.
func parseAllFlags(f *flag.FlagSet, args []string, stderr io.Writer) error {
	f.SetOutput(io.Discard)
	defer f.SetOutput(stderr)
	var errs []error
	for {
		err := f.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			f.SetOutput(stderr)
			_, _ = fmt.Fprintln(stderr, "Usage of strata:")
			f.PrintDefaults()
			return err
		}
		if err == nil {
			break
		}
		errs = append(errs, err)
		args = f.Args()
		// An unknown flag's value, when given as the next word ("-no-such-flag 5"), is not an argument.
		if strings.HasPrefix(err.Error(), "flag provided but not defined") && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			args = args[1:]
		}
	}
	if f.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %s", strings.Join(f.Args(), " ")))
	}
	return errors.Join(errs...)
}
