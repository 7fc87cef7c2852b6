package alertstore

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/thanos-io/objstore"
)

// Config says where in the bucket the store lives.
type Config struct {
	// Prefix is the bucket directory under which every tenant's configuration and state are kept.
	Prefix string
}

// RegisterFlags registers the -alertmanager-storage.* flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Prefix, "alertmanager-storage.prefix", "alertmanager",
		"Directory of the blocks storage bucket under which the Alertmanager keeps each tenant's configuration and state (silences, notification log).")
}

// Validate accepts a relative bucket path of plain segments. An empty prefix would put the store's
// directories among the tenants' blocks, and ".." would leave the intended directory.
func (c *Config) Validate() error {
	if c.Prefix == "" {
		return errors.New("-alertmanager-storage.prefix must not be empty: Alertmanager objects would be mixed with the tenants' blocks")
	}
	for _, seg := range strings.Split(c.Prefix, objstore.DirDelim) {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("-alertmanager-storage.prefix %q must be a relative path without empty, \".\" or \"..\" segments", c.Prefix)
		}
	}
	return nil
}
