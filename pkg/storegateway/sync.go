package storegateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
)

// blockLoadConcurrency is how many blocks a sync downloads and opens at a time.
const blockLoadConcurrency = 4

// partialSyncError says a sync updated some tenants but failed for others (or for some blocks); what it
// could do is done, and the next sync retries the rest.
type partialSyncError struct{ errs []error }

func (e *partialSyncError) Error() string   { return errors.Join(e.errs...).Error() }
func (e *partialSyncError) Unwrap() []error { return e.errs }

func isPartialSync(err error) bool {
	var p *partialSyncError
	return errors.As(err, &p)
}

// sync brings the loaded blocks in line with the bucket indexes and the ring: it loads the owned blocks
// not loaded yet and drops the loaded ones that are gone, marked for deletion, or no longer owned. A
// failure to list tenants changes nothing; a tenant whose index cannot be read keeps its blocks.
func (s *StoreGateway) sync(ctx context.Context) (err error) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	start := time.Now()
	s.metrics.syncs.Inc()
	defer func() {
		s.metrics.syncDuration.Observe(time.Since(start).Seconds())
		if err != nil {
			s.metrics.syncFailures.Inc()
		} else {
			s.metrics.lastSyncSuccess.Set(float64(time.Now().Unix()))
		}
	}()

	tenants, err := bucket.ListTenants(ctx, s.bkt)
	if err != nil {
		return err
	}
	var errs []error
	seen := make(map[string]bool, len(tenants))
	for _, t := range tenants {
		seen[t] = true
		if err := s.syncTenant(ctx, t); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.logger.Warn("blocks sync of tenant failed", "tenant", t, "err", err)
			errs = append(errs, fmt.Errorf("tenant %s: %w", t, err))
		}
	}
	// Tenants gone from the bucket lose their blocks.
	s.mu.RLock()
	var gone []string
	for t := range s.blocks {
		if !seen[t] {
			gone = append(gone, t)
		}
	}
	s.mu.RUnlock()
	for _, t := range gone {
		s.dropBlocks(t, func(ulid.ULID) bool { return true })
	}
	if err := s.removeStaleFiles(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return &partialSyncError{errs: errs}
	}
	return nil
}

// syncTenant loads and drops one tenant's blocks.
func (s *StoreGateway) syncTenant(ctx context.Context, tenantID string) error {
	tbkt := bucket.NewTenantBucket(s.bkt, tenantID)
	idx, err := blockstore.ReadIndex(ctx, tbkt)
	if errors.Is(err, blockstore.ErrIndexNotFound) {
		idx = &blockstore.Index{} // no index yet: the tenant has no blocks to serve
	} else if err != nil {
		return err
	}

	var (
		errs    []error
		keep    = map[ulid.ULID]bool{}
		toLoad  []ulid.ULID
		ringBuf []ring.InstanceDesc
	)
	s.mu.RLock()
	loaded := s.blocks[tenantID]
	s.mu.RUnlock()
	for _, e := range idx.Blocks {
		if idx.IsMarkedForDeletion(e.ID) {
			continue
		}
		owned, err := s.owns(tenantID, e.ID, &ringBuf)
		if err != nil {
			// Without an answer from the ring keep what is loaded: dropping a block nobody else has
			// yet would fail queries.
			errs = append(errs, fmt.Errorf("ring lookup for block %s: %w", e.ID, err))
			keep[e.ID] = loaded[e.ID] != nil
			continue
		}
		if !owned {
			continue
		}
		keep[e.ID] = true
		if loaded[e.ID] == nil {
			toLoad = append(toLoad, e.ID)
		}
	}
	s.dropBlocks(tenantID, func(id ulid.ULID) bool { return !keep[id] })
	errs = append(errs, s.loadBlocks(ctx, tenantID, tbkt, toLoad)...)
	return errors.Join(errs...)
}

// owns reports whether this instance is in the replication set of a block.
func (s *StoreGateway) owns(tenantID string, id ulid.ULID, buf *[]ring.InstanceDesc) (bool, error) {
	if s.ring == nil {
		return true, nil
	}
	set, err := s.ring.Get(ring.BlockToken(tenantID, id), ring.BlocksSync, *buf)
	if err != nil {
		return false, err
	}
	*buf = set.Instances
	for _, inst := range set.Instances {
		if inst.Addr == s.instanceAddr {
			return true, nil
		}
	}
	return false, nil
}

// loadBlocks loads ids concurrently and adds each to the served blocks as soon as it is open.
func (s *StoreGateway) loadBlocks(ctx context.Context, tenantID string, tbkt objstore.Bucket, ids []ulid.ULID) []error {
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, blockLoadConcurrency)
		mu   sync.Mutex
		errs []error
	)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b, err := s.loadBlock(ctx, tenantID, tbkt, id)
			if err != nil {
				s.metrics.blockLoadFails.Inc()
				s.logger.Warn("failed to load block", "tenant", tenantID, "block", id, "err", err)
				mu.Lock()
				errs = append(errs, fmt.Errorf("load block %s: %w", id, err))
				mu.Unlock()
				return
			}
			s.mu.Lock()
			if s.blocks[tenantID] == nil {
				s.blocks[tenantID] = map[ulid.ULID]*block{}
			}
			s.blocks[tenantID][id] = b
			s.mu.Unlock()
			s.metrics.blockLoads.Inc()
			s.metrics.blocksLoaded.Inc()
		}()
	}
	wg.Wait()
	return errs
}

// loadBlock opens a block's index from the sync directory, downloading it first unless an earlier run did.
// meta.json is written last, so its presence marks a complete download.
func (s *StoreGateway) loadBlock(ctx context.Context, tenantID string, tbkt objstore.Bucket, id ulid.ULID) (*block, error) {
	dir := filepath.Join(s.cfg.SyncDir, tenantID, id.String())
	indexPath := filepath.Join(dir, blockstore.BlockIndexFilename)
	meta, err := blockstore.ReadMetaFromDir(dir)
	if err == nil {
		if _, statErr := os.Stat(indexPath); statErr != nil {
			err = statErr
		}
	}
	if err != nil {
		if meta, err = s.downloadBlock(ctx, tbkt, id, dir); err != nil {
			return nil, err
		}
	}
	ir, err := index.NewFileReader(indexPath, index.DecodePostingsRaw)
	if err != nil {
		// A corrupt file must not survive to the next attempt.
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("open index: %w", err)
	}
	return &block{tenant: tenantID, meta: meta, dir: dir, index: ir, bkt: tbkt}, nil
}

// downloadBlock writes a block's index and then its meta.json into dir, replacing whatever was there.
func (s *StoreGateway) downloadBlock(ctx context.Context, tbkt objstore.Bucket, id ulid.ULID, dir string) (*blockstore.Meta, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	meta, err := blockstore.DownloadMeta(ctx, tbkt, id)
	if err != nil {
		return nil, err
	}
	if err := downloadFile(ctx, tbkt, id.String()+"/"+blockstore.BlockIndexFilename, filepath.Join(dir, blockstore.BlockIndexFilename)); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := meta.WriteToDir(dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return meta, nil
}

// downloadFile copies an object to a local file through a temporary name, so that a crash never leaves a
// truncated file under the final name.
func downloadFile(ctx context.Context, bkt objstore.BucketReader, name, dst string) error {
	rc, err := bkt.Get(ctx, name)
	if err != nil {
		return fmt.Errorf("get %s: %w", name, err)
	}
	defer rc.Close()
	tmp := dst + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("download %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// dropBlocks stops serving the tenant's blocks for which drop is true, then closes them (after their
// requests finish) and deletes their local files.
func (s *StoreGateway) dropBlocks(tenantID string, drop func(ulid.ULID) bool) {
	var dropped []*block
	s.mu.Lock()
	for id, b := range s.blocks[tenantID] {
		if drop(id) {
			delete(s.blocks[tenantID], id)
			dropped = append(dropped, b)
		}
	}
	if len(s.blocks[tenantID]) == 0 {
		delete(s.blocks, tenantID)
	}
	s.mu.Unlock()
	for _, b := range dropped {
		if err := b.close(); err != nil {
			s.logger.Warn("failed to close dropped block", "tenant", tenantID, "block", b.id(), "err", err)
		}
		if err := os.RemoveAll(b.dir); err != nil {
			s.logger.Warn("failed to delete files of dropped block", "tenant", tenantID, "block", b.id(), "err", err)
		}
		s.metrics.blockDrops.Inc()
		s.metrics.blocksLoaded.Dec()
		s.logger.Info("dropped block", "tenant", tenantID, "block", b.id())
	}
}

// removeStaleFiles deletes the directories in the sync directory that belong to no loaded block: blocks of
// an earlier run that this one does not own, and failed downloads.
func (s *StoreGateway) removeStaleFiles() error {
	tenantDirs, err := os.ReadDir(s.cfg.SyncDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list sync directory: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var errs []error
	for _, td := range tenantDirs {
		tdir := filepath.Join(s.cfg.SyncDir, td.Name())
		blockDirs, err := os.ReadDir(tdir)
		if err != nil {
			continue // not a directory
		}
		kept := 0
		for _, bd := range blockDirs {
			id, err := ulid.ParseStrict(bd.Name())
			if err == nil && s.blocks[td.Name()][id] != nil {
				kept++
				continue
			}
			errs = append(errs, os.RemoveAll(filepath.Join(tdir, bd.Name())))
		}
		if kept == 0 {
			errs = append(errs, os.Remove(tdir))
		}
	}
	return errors.Join(errs...)
}
