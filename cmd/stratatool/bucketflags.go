package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// bucketFlags is a bucket named on the command line with Strata's own -blocks-storage.* flags (as
// --blocks-storage.*, kingpin's long-flag form), optionally behind a prefix ("to.", "from.") for a
// second bucket. A directory flag (--to DIR, --from DIR) can stand for a filesystem bucket instead.
type bucketFlags struct {
	prefix string
	cfg    bucket.Config
	set    bool // a flag of this bucket was given
}

// registerBucketFlags adds the bucket's flags to cmd. Strata's bucket.Config registers them on a Go
// FlagSet, and each is bridged to kingpin, so the names, defaults and help are Strata's.
func registerBucketFlags(cmd *kingpin.CmdClause, prefix, what string) *bucketFlags {
	b := &bucketFlags{prefix: prefix}
	fs := flag.NewFlagSet(prefix, flag.ContinueOnError)
	b.cfg.RegisterFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		help := what + ": " + f.Usage
		if f.DefValue != "" {
			help += " (default " + f.DefValue + ")"
		}
		// Boolean flags take a value (--blocks-storage.s3.insecure=true), as Strata's can, rather than
		// kingpin's --flag/--no-flag, so that flags copied from Strata's command line work here.
		placeholder := "VALUE"
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			placeholder = "true|false"
		}
		cmd.Flag(prefix+f.Name, help).PlaceHolder(placeholder).SetValue(&trackedValue{Value: f.Value, set: &b.set})
	})
	return b
}

// trackedValue records that a flag was given on the command line.
type trackedValue struct {
	flag.Value
	set *bool
}

func (v *trackedValue) Set(s string) error {
	*v.set = true
	return v.Value.Set(s)
}

// config returns the selected bucket: the filesystem bucket in dir when dir is given, else the one the
// flags describe. dirFlag names the directory flag in errors.
func (b *bucketFlags) config(dirFlag, dir string) (bucket.Config, error) {
	if dir != "" {
		if b.set {
			return bucket.Config{}, fmt.Errorf("--%s and --%sblocks-storage.* both name a bucket: give one of them", dirFlag, b.prefix)
		}
		cfg := b.cfg
		cfg.Backend, cfg.Filesystem.Dir = bucket.BackendFilesystem, dir
		return cfg, nil
	}
	if err := b.cfg.Validate(); err != nil {
		if b.prefix != "" && !b.set {
			return bucket.Config{}, fmt.Errorf("no bucket: give --%s DIR or --%sblocks-storage.* flags", dirFlag, b.prefix)
		}
		return bucket.Config{}, fmt.Errorf("%s (flags given as --%sblocks-storage.*)", err, b.prefix)
	}
	return b.cfg, nil
}

// openBucket connects to the bucket of cfg; component names it in errors and logs.
func openBucket(ctx context.Context, cfg bucket.Config, component string) (objstore.Bucket, error) {
	// The metrics of this short-lived process go nowhere: the bucket client only needs a registry.
	return bucket.NewClient(ctx, cfg, component, prometheus.NewRegistry(), nil)
}

// requireExistingDir fails for a filesystem bucket whose directory does not exist: the filesystem
// backend would create it, and a mistyped path would read as an empty bucket.
func requireExistingDir(cfg bucket.Config) error {
	if cfg.Backend != bucket.BackendFilesystem {
		return nil
	}
	if st, err := os.Stat(cfg.Filesystem.Dir); err != nil || !st.IsDir() {
		return fmt.Errorf("bucket directory %s does not exist", cfg.Filesystem.Dir)
	}
	return nil
}
