package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// storagePrefixes are the bucket directories of the ruler and the Alertmanager, with the flags that set
// them in Strata.
type storagePrefixes struct {
	rules, alertmanager string
}

func registerStoragePrefixFlags(cmd *kingpin.CmdClause) *storagePrefixes {
	p := &storagePrefixes{}
	cmd.Flag("ruler-storage.prefix", "Directory of the bucket holding the rule groups, as Strata's -ruler-storage.prefix.").
		Default("rules").StringVar(&p.rules)
	cmd.Flag("alertmanager-storage.prefix", "Directory of the bucket holding the Alertmanager configurations and state, as Strata's -alertmanager-storage.prefix.").
		Default("alertmanager").StringVar(&p.alertmanager)
	return p
}

func (p *storagePrefixes) validate() error {
	if err := bucket.ValidateOwnPrefix("-ruler-storage.prefix", p.rules); err != nil {
		return err
	}
	return bucket.ValidateOwnPrefix("-alertmanager-storage.prefix", p.alertmanager)
}

func registerBucketCommands(app *kingpin.Application, commands map[string]command) {
	cmd := app.Command("bucket", "Back up a Strata bucket and restore it.")
	registerBucketBackup(cmd, commands)
	registerBucketRestore(cmd, commands)
}

func registerBucketBackup(parent *kingpin.CmdClause, commands map[string]command) {
	cmd := parent.Command("backup", "Copy the tenants' blocks (with their deletion marks), rule groups and Alertmanager "+
		"configuration and state from Strata's bucket (--blocks-storage.* flags, as Strata's) to a directory or another "+
		"bucket, and write each tenant's bucket index there. Safe while Strata runs: blocks the compactor deletes during "+
		"the copy are skipped and the blocks replacing them are copied. Blocks already copied are skipped, so a backup "+
		"into the same destination copies only what is new; what the source no longer has is removed from it. "+
		"Exits 1 when a block could not be copied.")
	src := registerBucketFlags(cmd, "", "Source bucket")
	toDir := cmd.Flag("to", "Directory to back up into (a filesystem bucket), instead of --to.blocks-storage.* flags.").String()
	dst := registerBucketFlags(cmd, "to.", "Destination bucket")
	opts := registerCopyFlags(cmd)
	commands[cmd.FullCommand()] = func(stdout, stderr io.Writer) int {
		srcCfg, err := src.config("", "")
		if err == nil {
			err = requireExistingDir(srcCfg)
		}
		if err != nil {
			return fail(stderr, "source bucket: %v", err)
		}
		dstCfg, err := dst.config("to", *toDir)
		if err != nil {
			return fail(stderr, "destination bucket: %v", err)
		}
		return runCopy(stdout, stderr, "backup", srcCfg, dstCfg, opts, true)
	}
}

func registerBucketRestore(parent *kingpin.CmdClause, commands map[string]command) {
	cmd := parent.Command("restore", "Copy a backup made by `bucket backup` (a directory or a bucket) into Strata's bucket "+
		"(--blocks-storage.* flags, as Strata's) and write each restored tenant's bucket index. Nothing is removed from "+
		"Strata's bucket; a block that is there already with another meta.json is refused. Run it again to resume. "+
		"Exits 1 when a block could not be restored.")
	srcDir := cmd.Flag("from", "Backup directory to restore from, instead of --from.blocks-storage.* flags.").String()
	src := registerBucketFlags(cmd, "from.", "Backup bucket")
	dst := registerBucketFlags(cmd, "", "Strata's bucket")
	opts := registerCopyFlags(cmd)
	commands[cmd.FullCommand()] = func(stdout, stderr io.Writer) int {
		srcCfg, err := src.config("from", *srcDir)
		if err == nil {
			err = requireExistingDir(srcCfg)
		}
		if err != nil {
			return fail(stderr, "backup bucket: %v", err)
		}
		dstCfg, err := dst.config("", "")
		if err != nil {
			return fail(stderr, "Strata's bucket: %v", err)
		}
		return runCopy(stdout, stderr, "restore", srcCfg, dstCfg, opts, false)
	}
}

// copyFlags are the flags backup and restore share.
type copyFlags struct {
	tenants     []string
	concurrency int
	prefixes    *storagePrefixes
}

func registerCopyFlags(cmd *kingpin.CmdClause) *copyFlags {
	f := &copyFlags{}
	cmd.Flag("tenant", "Copy only this tenant; may be repeated. Default: every tenant.").StringsVar(&f.tenants)
	cmd.Flag("concurrency", "How many blocks are copied at once.").Default("4").IntVar(&f.concurrency)
	f.prefixes = registerStoragePrefixFlags(cmd)
	return f
}

func runCopy(stdout, stderr io.Writer, verb string, srcCfg, dstCfg bucket.Config, f *copyFlags, mirror bool) int {
	if err := f.prefixes.validate(); err != nil {
		return fail(stderr, "%v", err)
	}
	if f.concurrency < 1 {
		return fail(stderr, "--concurrency must be at least 1")
	}
	if sameBucket(srcCfg, dstCfg) {
		return fail(stderr, "the source and the destination are the same bucket")
	}
	if nestedDirs(srcCfg, dstCfg) {
		return fail(stderr, "the source and the destination directories are inside one another: the copy would copy itself")
	}
	if dstCfg.Backend == bucket.BackendFilesystem {
		if err := os.MkdirAll(dstCfg.Filesystem.Dir, 0o755); err != nil {
			return fail(stderr, "%v", err)
		}
	}
	ctx := context.Background()
	src, err := openBucket(ctx, srcCfg, "stratatool-"+verb+"-source")
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer src.Close()
	dst, err := openBucket(ctx, dstCfg, "stratatool-"+verb+"-destination")
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer dst.Close()

	began := time.Now()
	c := newBucketCopier(src, dst, copyOptions{
		tenants:            f.tenants,
		rulesPrefix:        f.prefixes.rules,
		alertmanagerPrefix: f.prefixes.alertmanager,
		mirror:             mirror,
		markRestored:       !mirror,
		concurrency:        f.concurrency,
	}, stdout)
	err = c.run(ctx)
	r := &c.res
	_, _ = fmt.Fprintf(stdout, "%s: %d tenants, %d blocks copied, %d already there, %d deleted from the source during the copy, %d failed, %d removed; %d other objects; %s in %.1fs\n",
		verb, r.tenants, r.copied.Load(), r.skipped.Load(), r.vanished.Load(), r.failed.Load(), r.pruned.Load(), r.objects.Load(),
		formatBytes(r.bytes.Load()), time.Since(began).Seconds())
	if err != nil {
		return fail(stderr, "%s: %v", verb, err)
	}
	if r.failed.Load() > 0 {
		return 1
	}
	return 0
}

// sameBucket catches a backup into the bucket it reads.
func sameBucket(a, b bucket.Config) bool {
	if a.Backend != b.Backend {
		return false
	}
	switch a.Backend {
	case bucket.BackendFilesystem:
		pa, errA := filepath.Abs(a.Filesystem.Dir)
		pb, errB := filepath.Abs(b.Filesystem.Dir)
		return errA == nil && errB == nil && pa == pb
	case bucket.BackendS3:
		return a.S3.Endpoint == b.S3.Endpoint && a.S3.BucketName == b.S3.BucketName
	case bucket.BackendGCS:
		return a.GCS.BucketName == b.GCS.BucketName
	case bucket.BackendAzure:
		return a.Azure.AccountName == b.Azure.AccountName && a.Azure.ContainerName == b.Azure.ContainerName
	}
	return false
}

// nestedDirs catches filesystem buckets one of which is inside the other: the inner one would look like
// a tenant of the outer one.
func nestedDirs(a, b bucket.Config) bool {
	if a.Backend != bucket.BackendFilesystem || b.Backend != bucket.BackendFilesystem {
		return false
	}
	pa, errA := filepath.Abs(a.Filesystem.Dir)
	pb, errB := filepath.Abs(b.Filesystem.Dir)
	if errA != nil || errB != nil {
		return false
	}
	inside := func(dir, parent string) bool {
		rel, err := filepath.Rel(parent, dir)
		return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
	}
	return inside(pa, pb) || inside(pb, pa)
}

func fail(stderr io.Writer, format string, args ...any) int {
	_, _ = fmt.Fprintf(stderr, "stratatool: "+format+"\n", args...)
	return 1
}
