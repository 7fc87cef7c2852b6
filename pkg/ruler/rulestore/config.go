package rulestore

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// Backends of the rule store.
const (
	BackendBucket = "bucket"
	BackendLocal  = "local"
)

// Config selects where rule groups are kept.
type Config struct {
	// Backend is BackendBucket (the blocks bucket, under Prefix) or BackendLocal (read-only files).
	Backend string
	// Prefix is the bucket directory that holds every tenant's rule groups.
	Prefix string
	// LocalDirectory holds the rule files of BackendLocal, "<tenant>/<namespace>.yaml".
	LocalDirectory string
}

// RegisterFlags registers the -ruler-storage.* flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Backend, "ruler-storage.backend", BackendBucket,
		"Where rule groups are kept: "+BackendBucket+" (the blocks storage bucket, under -ruler-storage.prefix; the config API can change them) or "+
			BackendLocal+" (rule files under -ruler-storage.local.directory; read-only).")
	f.StringVar(&c.Prefix, "ruler-storage.prefix", "rules",
		"Directory of the blocks storage bucket under which the bucket backend keeps rule groups, one object per group. Its first segment must be one no tenant can have: rules (or alertmanager).")
	f.StringVar(&c.LocalDirectory, "ruler-storage.local.directory", "",
		"Directory of the local backend's rule files: <tenant>/<namespace>.yaml, each a Prometheus rule file.")
}

// Validate reports a backend without what it needs, or settings of the other backend.
func (c *Config) Validate() error {
	switch c.Backend {
	case BackendBucket:
		if c.LocalDirectory != "" {
			return fmt.Errorf("-ruler-storage.local.directory is set but -ruler-storage.backend is %s: set the backend to %s or unset the directory", c.Backend, BackendLocal)
		}
		return bucket.ValidateOwnPrefix("ruler-storage.prefix", c.Prefix)
	case BackendLocal:
		if c.LocalDirectory == "" {
			return errors.New("-ruler-storage.backend=local needs -ruler-storage.local.directory")
		}
		return nil
	default:
		return fmt.Errorf("unsupported rule store backend %q (-ruler-storage.backend): use %s or %s", c.Backend, BackendBucket, BackendLocal)
	}
}

// New returns the store cfg selects. bkt is the blocks bucket; the local backend does not use it.
func New(cfg Config, bkt objstore.Bucket, logger *slog.Logger) (Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Backend == BackendLocal {
		return NewLocalStore(cfg.LocalDirectory, logger), nil
	}
	if bkt == nil {
		return nil, errors.New("the bucket rule store needs a bucket")
	}
	return NewBucketStore(bkt, cfg.Prefix, logger), nil
}
