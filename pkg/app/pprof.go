package app

import (
	"flag"
	"io"
	"net/http"
	"strings"
)

// maskedCmdline serves what net/http/pprof's Cmdline does, the process' command line, with the values
// of secret flags masked: pprof's own prints account keys and passwords as given.
func maskedCmdline(flags *flag.FlagSet, args []string) http.Handler {
	body := strings.Join(maskSecretArgs(secretFlags(flags), args), "\x00")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What pprof's own handler answers, so `go tool pprof` and scripts read it the same way.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, body)
	})
}

// secretFlags is the set of the names of flags whose values /config masks.
func secretFlags(flags *flag.FlagSet) map[string]bool {
	secret := map[string]bool{}
	flags.VisitAll(func(fl *flag.Flag) {
		if s, ok := fl.Value.(secretValue); ok && s.IsSecret() {
			secret[fl.Name] = true
		}
	})
	return secret
}

// maskSecretArgs returns a copy of a command line (program name first) in which the value of every
// secret flag is masked, given as -flag=value or as -flag value, with one dash or two. Every argument
// is looked at, even after one the flag package would stop at: masking too much costs nothing here.
func maskSecretArgs(secret map[string]bool, args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 1; i < len(out); i++ {
		name, ok := strings.CutPrefix(out[i], "-")
		if !ok {
			continue
		}
		name = strings.TrimPrefix(name, "-")
		name, value, hasValue := strings.Cut(name, "=")
		if !secret[name] {
			continue
		}
		switch {
		case hasValue && value != "":
			out[i] = strings.TrimSuffix(out[i], value) + maskedSecret
		case !hasValue && i+1 < len(out):
			// Secret flags take a value, so the next argument is it whatever it looks like.
			i++
			if out[i] != "" {
				out[i] = maskedSecret
			}
		}
	}
	return out
}

// maskedSecret replaces a secret's value, as /config shows it.
const maskedSecret = "********"
