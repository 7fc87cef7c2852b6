package compactor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/validation"
)

// checkUploadMeta decodes and checks the meta.json a client starts the upload of block id with: it must
// describe that block, a sane time range that is neither past the tenant's retention (the compactor would
// delete it at once) nor later than the creation grace period allows samples to be, and no other tenant.
func checkUploadMeta(raw []byte, id ulid.ULID, tenantID string, limits *validation.Limits, now time.Time) (*blockstore.Meta, error) {
	var meta blockstore.Meta
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, errorf(http.StatusBadRequest, "meta.json is not valid JSON: %v", err)
	}
	// Thanos' section is not part of Meta; a downsampled block's chunks are not Prometheus chunks.
	var thanos struct {
		Thanos struct {
			Downsample struct {
				Resolution int64 `json:"resolution"`
			} `json:"downsample"`
		} `json:"thanos"`
	}
	_ = json.Unmarshal(raw, &thanos)
	switch {
	case meta.Version != blockstore.MetaVersion1:
		return nil, errorf(http.StatusBadRequest, "meta.json version %d is not supported, want %d", meta.Version, blockstore.MetaVersion1)
	case meta.ULID != id:
		return nil, errorf(http.StatusBadRequest, "meta.json describes block %s, not %s", meta.ULID, id)
	case meta.MinTime >= meta.MaxTime:
		return nil, errorf(http.StatusBadRequest, "block time range [%d, %d) is empty: minTime must be below maxTime", meta.MinTime, meta.MaxTime)
	case thanos.Thanos.Downsample.Resolution > 0:
		return nil, errorf(http.StatusBadRequest, "block is downsampled (resolution %dms): only raw Prometheus blocks can be uploaded", thanos.Thanos.Downsample.Resolution)
	case meta.Strata.TenantID != "" && meta.Strata.TenantID != tenantID:
		return nil, errorf(http.StatusBadRequest, "block belongs to tenant %q (its meta.json's strata section says so), not to %q", meta.Strata.TenantID, tenantID)
	}
	grace := time.Duration(limits.CreationGracePeriod)
	if newest := meta.MaxTime - 1; newest > now.Add(grace).UnixMilli() {
		return nil, errorf(http.StatusBadRequest, "block ends at %s, later than now plus the creation grace period %s (-%s)",
			time.UnixMilli(newest).UTC().Format(time.RFC3339), grace, validation.FlagOf("creation_grace_period"))
	}
	if retention := time.Duration(limits.CompactorBlocksRetentionPeriod); retention > 0 && meta.MaxTime <= now.Add(-retention).UnixMilli() {
		return nil, errorf(http.StatusBadRequest, "block ends at %s, before the tenant's retention period of %s (-%s): it would be deleted at once",
			time.UnixMilli(meta.MaxTime).UTC().Format(time.RFC3339), retention, validation.FlagOf("compactor_blocks_retention_period"))
	}
	if meta.Compaction.Level < 1 {
		meta.Compaction.Level = 1
	}
	// Sources say which blocks a block replaces, and the compactor deletes and queriers skip those: an
	// uploaded block replaces none, whatever its meta.json says.
	meta.Compaction.Sources = []ulid.ULID{id}
	meta.Strata = blockstore.StrataMeta{TenantID: tenantID, Source: blockstore.SourceUpload}
	return &meta, nil
}

// validateAndPublish validates an uploaded block and, when it is sound, writes its meta.json, which makes
// it visible to the bucket index and so to store-gateways, queriers and compaction. A failure is recorded
// in the state file for /check. It runs in the background, one at a time.
func (c *Compactor) validateAndPublish(bkt objstore.Bucket, tenantID string, id ulid.ULID, meta *blockstore.Meta) {
	ctx := c.uploads.ctx
	logger := c.logger.With("tenant", tenantID, "block", id)
	heartbeat := func() {
		st := &uploadState{State: UploadStateValidating, Meta: meta}
		if err := c.writeUploadState(ctx, bkt, id, st); err != nil {
			logger.Warn("cannot refresh the state of a block being validated", "err", err)
		}
	}
	select {
	case c.uploads.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-c.uploads.sem }()
	heartbeat() // the wait for the semaphore may have been long

	hbCtx, stopHB := context.WithCancel(ctx)
	var hbDone sync.WaitGroup
	hbDone.Go(func() {
		t := time.NewTicker(validationHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				heartbeat()
			}
		}
	})
	// After this, no heartbeat overwrites the state written next.
	stopHeartbeat := func() { stopHB(); hbDone.Wait() }

	start := c.now()
	err := c.validateUploadedBlock(ctx, bkt, tenantID, id, meta)
	if err == nil {
		err = blockstore.UploadMeta(ctx, bkt, meta)
	}
	stopHeartbeat()
	if ctx.Err() != nil {
		return // stopping: the state stays "validating" until it is stale, then the client starts again
	}
	if err != nil {
		var ve *validationError
		msg := err.Error()
		if !errors.As(err, &ve) {
			msg = "validation could not run: " + msg + "; start the upload again"
		}
		logger.Warn("uploaded block refused", "err", err)
		if werr := c.writeUploadState(ctx, bkt, id, &uploadState{State: UploadStateFailed, Error: msg, Meta: meta}); werr != nil {
			logger.Error("cannot record the failed validation of an uploaded block", "err", werr)
		}
		c.metrics.uploads.WithLabelValues(UploadStateFailed).Inc()
		return
	}
	// The block is complete with its meta.json; the state file is only left-over.
	if err := bkt.Delete(ctx, uploadStatePath(id)); err != nil && !bkt.IsObjNotFoundErr(err) {
		logger.Warn("cannot delete the upload state of a published block", "err", err)
	}
	c.metrics.uploads.WithLabelValues(UploadStateComplete).Inc()
	logger.Info("uploaded block published", "min_time", meta.MinTime, "max_time", meta.MaxTime,
		"samples", meta.Stats.NumSamples, "duration", c.now().Sub(start))
	// Make it queryable without waiting for the next cleanup interval.
	select {
	case c.indexUpdate <- struct{}{}:
	default:
	}
}

// validationError is a block refused for its content, as opposed to a failure to validate it.
type validationError struct{ msg string }

func (e *validationError) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return &validationError{msg: fmt.Sprintf(format, args...)}
}

// validateUploadedBlock downloads the block and reads all of it when the tenant's validation is on;
// meta's stats are set from what was read.
func (c *Compactor) validateUploadedBlock(ctx context.Context, bkt objstore.Bucket, tenantID string, id ulid.ULID, meta *blockstore.Meta) error {
	limits := c.tenantLimits(tenantID)
	if !limits.CompactorBlockUploadValidationEnabled {
		return nil
	}
	if err := os.MkdirAll(c.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	// Named like compaction's directories, so a restarted compactor removes what a crash left.
	dir, err := os.MkdirTemp(c.cfg.DataDir, workDirPrefix+"upload-")
	if err != nil {
		return fmt.Errorf("create validation directory: %w", err)
	}
	defer os.RemoveAll(dir)
	bdir := filepath.Join(dir, id.String())
	if err := downloadBlock(ctx, bkt, id, bdir); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(bdir, UploadStateFilename))
	if err := meta.WriteToDir(bdir); err != nil {
		return err
	}
	stats, err := validateBlockDir(ctx, bdir, meta, limits)
	if err != nil {
		return err
	}
	meta.Stats = stats
	return nil
}

// validateBlockDir opens the block in dir with Prometheus' TSDB and reads every series and sample: the
// index and chunks must be readable, the series sorted with valid labels, and every sample inside the
// block's [minTime, maxTime) in increasing time order.
func validateBlockDir(ctx context.Context, dir string, meta *blockstore.Meta, limits *validation.Limits) (promtsdb.BlockStats, error) {
	var stats promtsdb.BlockStats
	b, err := promtsdb.OpenBlock(nil, dir, nil, nil)
	if err != nil {
		return stats, invalidf("block cannot be opened: %v", err)
	}
	defer b.Close()
	ir, err := b.Index()
	if err != nil {
		return stats, invalidf("index cannot be read: %v", err)
	}
	defer ir.Close()
	cr, err := b.Chunks()
	if err != nil {
		return stats, invalidf("chunks cannot be read: %v", err)
	}
	defer cr.Close()

	name, value := index.AllPostingsKey()
	postings, err := ir.Postings(ctx, name, value)
	if err != nil {
		return stats, invalidf("index postings cannot be read: %v", err)
	}
	var (
		builder labels.ScratchBuilder
		metas   []chunks.Meta
		prev    labels.Labels
		pls     []prompb.Label
		it      chunkenc.Iterator
	)
	for postings.Next() {
		if stats.NumSeries%1024 == 0 && ctx.Err() != nil {
			return stats, ctx.Err()
		}
		if err := ir.Series(postings.At(), &builder, &metas); err != nil {
			return stats, invalidf("series %d of the index cannot be read: %v", stats.NumSeries, err)
		}
		lset := builder.Labels()
		if stats.NumSeries > 0 && labels.Compare(prev, lset) >= 0 {
			return stats, invalidf("series %s comes after %s in the index: series must be sorted and unique", lset, prev)
		}
		prev = lset
		pls = pls[:0]
		lset.Range(func(l labels.Label) { pls = append(pls, prompb.Label{Name: l.Name, Value: l.Value}) })
		if err := validation.ValidateLabels(limits, pls); err != nil {
			return stats, invalidf("invalid series: %v", err)
		}
		stats.NumSeries++
		lastT := int64(0)
		for i, chk := range metas {
			if chk.MinTime < meta.MinTime || chk.MaxTime >= meta.MaxTime || chk.MinTime > chk.MaxTime {
				return stats, invalidf("series %s: chunk [%d, %d] is outside the block's range [%d, %d)", lset, chk.MinTime, chk.MaxTime, meta.MinTime, meta.MaxTime)
			}
			c, iterable, err := cr.ChunkOrIterable(chk)
			if err != nil {
				return stats, invalidf("series %s: chunk %d cannot be read: %v", lset, i, err)
			}
			if c != nil {
				it = c.Iterator(it)
			} else {
				it = iterable.Iterator(it)
			}
			n := 0
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				t := it.AtT()
				if t < chk.MinTime || t > chk.MaxTime {
					return stats, invalidf("series %s: sample at %d is outside its chunk's range [%d, %d]", lset, t, chk.MinTime, chk.MaxTime)
				}
				if (n > 0 || i > 0) && t <= lastT {
					return stats, invalidf("series %s: sample at %d is not after the previous one at %d", lset, t, lastT)
				}
				lastT = t
				n++
				switch vt {
				case chunkenc.ValHistogram, chunkenc.ValFloatHistogram:
					stats.NumHistogramSamples++
				default:
					stats.NumFloatSamples++
				}
			}
			if err := it.Err(); err != nil {
				return stats, invalidf("series %s: chunk %d cannot be decoded: %v", lset, i, err)
			}
			if n == 0 {
				return stats, invalidf("series %s: chunk %d holds no sample", lset, i)
			}
			stats.NumSamples += uint64(n)
			stats.NumChunks++
		}
	}
	if err := postings.Err(); err != nil {
		return stats, invalidf("index postings cannot be read: %v", err)
	}
	return stats, nil
}
