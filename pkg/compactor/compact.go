package compactor

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
)

// workDirPrefix starts the name of the data directory's subdirectory in which a group is compacted.
const workDirPrefix = "compact-"

// runGroup merges a group's blocks into one: download, compact with Prometheus' leveled compactor (its
// compacting merger drops the samples replica copies share), upload the result with meta.json last, then
// mark the inputs for deletion. A crash before meta.json is uploaded leaves a partial block that cleanup
// deletes; a crash after it leaves a complete block whose sources the next pass marks (markReplaced).
func (c *Compactor) runGroup(ctx context.Context, p *tenantPass, g Group) error {
	dir, err := os.MkdirTemp(c.cfg.DataDir, workDirPrefix)
	if err != nil {
		return fmt.Errorf("create compaction directory: %w", err)
	}
	defer os.RemoveAll(dir)

	dirs := make([]string, 0, len(g.Blocks))
	var tombstones []*blockstore.Tombstone
	// Overlapping inputs are replica copies being merged; a merge of de-duplicated blocks is de-duplicated too.
	dedup, uploaded := true, false
	for _, b := range g.Blocks {
		d := filepath.Join(dir, b.ID.String())
		if err := downloadBlock(ctx, p.bkt, b.ID, d); err != nil {
			return err
		}
		// Deleted series are left out of the result, which then needs no rewrite.
		if ts := p.tombstonesOverlapping(b); len(ts) > 0 {
			if _, err := applyTombstonesToDir(ctx, p, d, ts); err != nil {
				return fmt.Errorf("apply series deletions to block %s: %w", b.ID, err)
			}
			tombstones = append(tombstones, ts...)
		}
		dirs = append(dirs, d)
		dedup = dedup && p.metas[b.ID].Strata.ReplicasDeduplicated
		uploaded = uploaded || p.metas[b.ID].Strata.UploadedData()
	}
	dedup = dedup || g.Vertical

	comp, err := promtsdb.NewLeveledCompactorWithOptions(ctx, nil, p.logger, c.cfg.rangesMillis(), nil, promtsdb.LeveledCompactorOptions{
		MergeFunc:                   storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge),
		EnableOverlappingCompaction: true,
		// Metrics of Prometheus' own compactor are left unregistered: Strata's count groups and blocks.
		Metrics: promtsdb.NewCompactorMetrics(nil),
	})
	if err != nil {
		return fmt.Errorf("create TSDB compactor: %w", err)
	}
	outDir := filepath.Join(dir, "out")
	ids, err := comp.Compact(outDir, dirs, nil)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}

	if len(ids) == 0 {
		// The inputs hold no sample: there is nothing to upload, and nothing lost by deleting them.
		p.logger.Info("compacted blocks were empty", "blocks", len(g.Blocks))
	} else {
		id := ids[0]
		bdir := filepath.Join(outDir, id.String())
		meta, err := blockstore.ReadMetaFromDir(bdir)
		if err != nil {
			return err
		}
		exemplars, err := blockstore.MergeExemplarFiles(bdir, dirs, exemplarsNotDeleted(tombstones))
		if err != nil {
			return fmt.Errorf("merge exemplars: %w", err)
		}
		meta.Strata = blockstore.StrataMeta{TenantID: p.tenant, Source: blockstore.SourceCompactor, ReplicasDeduplicated: dedup,
			HoldsUploadedData: uploaded, Exemplars: exemplars}
		if err := meta.WriteToDir(bdir); err != nil {
			return err
		}
		if err := uploadBlock(ctx, p.bkt, meta, bdir); err != nil {
			return err
		}
		c.clean.add(p.tenant, id, p.tombstones)
		p.logger.Info("uploaded compacted block", "block", id, "sources", len(g.Blocks), "vertical", g.Vertical,
			"min_time", meta.MinTime, "max_time", meta.MaxTime, "samples", meta.Stats.NumSamples)
	}
	// Counted once the result is in the bucket: the next pass only marks the inputs, it does not redo this.
	c.metrics.compactions.Inc()
	c.metrics.compacted.Add(float64(len(g.Blocks)))
	if c.afterUpload != nil && len(ids) > 0 {
		if err := c.afterUpload(p.tenant, ids[0]); err != nil {
			return err
		}
	}

	for _, b := range g.Blocks {
		if err := c.markForDeletion(ctx, p, b.ID, reasonCompacted); err != nil {
			return err
		}
	}
	return nil
}

// downloadBlock copies block id from bkt into dir, leaving out its deletion mark.
func downloadBlock(ctx context.Context, bkt objstore.Bucket, id ulid.ULID, dir string) error {
	var names []string
	err := bkt.Iter(ctx, id.String()+"/", func(name string) error {
		if name != blockstore.BlockDeletionMarkPath(id) {
			names = append(names, name)
		}
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return fmt.Errorf("list files of block %s: %w", id, err)
	}
	for _, name := range names {
		rel, err := filepath.Rel(id.String(), filepath.FromSlash(name))
		if err != nil {
			return fmt.Errorf("block %s: file %s: %w", id, name, err)
		}
		if err := downloadFile(ctx, bkt, name, filepath.Join(dir, rel)); err != nil {
			return fmt.Errorf("download block %s: %w", id, err)
		}
	}
	return nil
}

func downloadFile(ctx context.Context, bkt objstore.Bucket, name, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	r, err := bkt.Get(ctx, name)
	if err != nil {
		return fmt.Errorf("get %s: %w", name, err)
	}
	defer r.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}

// uploadBlock uploads the block in dir, meta.json last: until it is there, readers treat the block as partial.
func uploadBlock(ctx context.Context, bkt objstore.Bucket, meta *blockstore.Meta, dir string) error {
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, name)
		if err != nil {
			return err
		}
		if rel == blockstore.MetaFilename {
			return nil
		}
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		dst := path.Join(meta.ULID.String(), filepath.ToSlash(rel))
		if err := bkt.Upload(ctx, dst, f); err != nil {
			return fmt.Errorf("upload %s: %w", dst, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("upload block %s: %w", meta.ULID, err)
	}
	return blockstore.UploadMeta(ctx, bkt, meta)
}
