package alertstore

import (
	"flag"

	"github.com/strata-metrics/strata/pkg/storage/bucket"
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

// Validate checks the prefix: see bucket.ValidateOwnPrefix.
func (c *Config) Validate() error {
	return bucket.ValidateOwnPrefix("alertmanager-storage.prefix", c.Prefix)
}
