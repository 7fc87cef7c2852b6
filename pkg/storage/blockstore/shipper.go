package blockstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thanos-io/objstore"
)

// ShipperStateFilename is the file, in the TSDB directory, recording which blocks were shipped and when.
const ShipperStateFilename = "strata-shipper.json"

const shipperStateVersion1 = 1

// ShipperMetrics are the shipper's metrics. Create them once per registerer and pass them to the shipper of
// every tenant: they carry no tenant label, so an ingester's shippers add up into one set of series.
type ShipperMetrics struct {
	uploads            prometheus.Counter
	uploadFailures     prometheus.Counter
	lastSuccessfulSync prometheus.Gauge
}

// NewShipperMetrics registers the shipper's metrics with reg (nil: not registered).
func NewShipperMetrics(reg prometheus.Registerer) *ShipperMetrics {
	f := promauto.With(reg)
	return &ShipperMetrics{
		uploads: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingester_shipper_uploads_total",
			Help: "Blocks uploaded to object storage by the shipper.",
		}),
		uploadFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingester_shipper_upload_failures_total",
			Help: "Failed block upload attempts, including attempts that a retry later fixed.",
		}),
		lastSuccessfulSync: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_ingester_shipper_last_successful_sync_timestamp_seconds",
			Help: "Unix time of the last sync of any tenant that shipped all its blocks without error.",
		}),
	}
}

// UploadBackoff bounds how a block upload is retried within one Sync.
type UploadBackoff struct {
	// MinBackoff is the wait before the first retry; it doubles for every further retry.
	MinBackoff time.Duration
	// MaxBackoff caps the wait between retries.
	MaxBackoff time.Duration
	// MaxRetries is how many times a failed upload is retried before Sync gives up on the block until the
	// next Sync.
	MaxRetries int
}

// DefaultUploadBackoff is the retry policy of a shipper built without WithUploadBackoff: short, because
// the next Sync retries anyway and a Sync should not hold up the ones of other tenants for long.
var DefaultUploadBackoff = UploadBackoff{MinBackoff: 500 * time.Millisecond, MaxBackoff: 5 * time.Second, MaxRetries: 3}

// ShipperOption changes a Shipper's defaults.
type ShipperOption func(*Shipper)

// WithUploadBackoff sets how failed uploads are retried within one Sync.
func WithUploadBackoff(b UploadBackoff) ShipperOption {
	return func(s *Shipper) { s.backoff = b }
}

// BeforeUpload adds to a block, in its local directory dir, what it carries beyond the TSDB's files (its
// exemplar file), and records that in meta, the meta.json about to be uploaded.
type BeforeUpload func(ctx context.Context, dir string, meta *Meta) error

// WithBeforeUpload has f called before each block's files are uploaded.
func WithBeforeUpload(f BeforeUpload) ShipperOption {
	return func(s *Shipper) { s.beforeUpload = f }
}

// Shipper uploads the blocks of one tenant's TSDB to the tenant's bucket, each block once.
type Shipper struct {
	dir        string
	bkt        objstore.Bucket
	tenant     string
	ingesterID string
	logger     *slog.Logger
	metrics    *ShipperMetrics
	backoff    UploadBackoff
	now        func() time.Time
	// beforeUpload is nil when blocks ship as the TSDB wrote them.
	beforeUpload BeforeUpload

	// syncMtx serializes Syncs: two at once would upload the same blocks twice.
	syncMtx sync.Mutex

	mtx     sync.Mutex
	shipped map[ulid.ULID]time.Time
}

// NewShipper returns a shipper of the TSDB in tsdbDir to bkt, the tenant's bucket (already prefixed with the
// tenant). ingesterID is written into every uploaded meta.json. metrics may be nil (not exported). The
// record of shipped blocks is read now, so Shipped is right after a restart; an unreadable record is
// logged and treated as empty, which is safe: blocks already complete in the bucket are not uploaded again.
func NewShipper(tsdbDir string, bkt objstore.Bucket, tenant, ingesterID string, logger *slog.Logger, metrics *ShipperMetrics, opts ...ShipperOption) *Shipper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewShipperMetrics(nil)
	}
	s := &Shipper{
		dir:        tsdbDir,
		bkt:        bkt,
		tenant:     tenant,
		ingesterID: ingesterID,
		logger:     logger.With("component", "shipper", "tenant", tenant),
		metrics:    metrics,
		backoff:    DefaultUploadBackoff,
		now:        time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	shipped, err := readShipperState(filepath.Join(tsdbDir, ShipperStateFilename))
	if err != nil {
		s.logger.Warn("ignored unreadable record of shipped blocks; blocks already in the bucket will be recognised", "err", err)
		shipped = map[ulid.ULID]time.Time{}
	}
	s.shipped = shipped
	return s
}

// Shipped returns when each block still present in the TSDB directory was shipped (a copy), so the caller
// can delete blocks shipped longer ago than it keeps them locally.
func (s *Shipper) Shipped() map[ulid.ULID]time.Time {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	return maps.Clone(s.shipped)
}

// Sync uploads every complete block of the TSDB not shipped yet, oldest first, and returns how many it
// uploaded (a block found already complete in the bucket is recorded as shipped but not counted). A block
// that fails after the retries is left for the next Sync, and the other blocks are still tried; the error
// names every block that failed. Sync returns early when ctx is done.
func (s *Shipper) Sync(ctx context.Context) (uploaded int, err error) {
	s.syncMtx.Lock()
	defer s.syncMtx.Unlock()

	blocks, present, errs := s.localBlocks()
	if present == nil {
		return 0, errors.Join(errs...)
	}
	if err := s.forgetDeleted(present); err != nil {
		errs = append(errs, err)
	}
	for _, m := range blocks {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("sync blocks: %w", ctx.Err()))
			break
		}
		if s.isShipped(m.ULID) {
			continue
		}
		didUpload, err := s.shipWithRetries(ctx, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if didUpload {
			uploaded++
		}
		if err := s.recordShipped(m.ULID); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return uploaded, errors.Join(errs...)
	}
	s.metrics.lastSuccessfulSync.Set(float64(s.now().UnixNano()) / 1e9)
	return uploaded, nil
}

// localBlocks returns the metas of the complete blocks in the TSDB directory, sorted by time, and the ULIDs
// of every block directory (nil when the directory cannot be listed).
func (s *Shipper) localBlocks() ([]*Meta, map[ulid.ULID]struct{}, []error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, []error{fmt.Errorf("list blocks of TSDB %s: %w", s.dir, err)}
	}
	var (
		blocks  []*Meta
		errs    []error
		present = map[ulid.ULID]struct{}{}
	)
	for _, e := range entries {
		// The TSDB builds a block in "<ULID>.tmp-for-creation" and renames it when complete, and deletes
		// through "<ULID>.tmp-for-deletion": only bare ULID directories are finished blocks.
		if !e.IsDir() || strings.Contains(e.Name(), ".tmp") {
			continue
		}
		id, err := ulid.ParseStrict(e.Name())
		if err != nil {
			continue // wal, chunks_head and other TSDB directories.
		}
		present[id] = struct{}{}
		m, err := ReadMetaFromDir(filepath.Join(s.dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			s.logger.Debug("skipped block without meta.json", "block", id)
			continue
		}
		if err != nil {
			// Reported rather than skipped: a block that is never shipped is data loss once it is deleted.
			errs = append(errs, err)
			continue
		}
		if m.Compaction.Deletable {
			continue // The TSDB will delete it; it holds nothing that is not in another block.
		}
		blocks = append(blocks, m)
	}
	slices.SortFunc(blocks, func(a, b *Meta) int {
		if c := cmp.Compare(a.MinTime, b.MinTime); c != 0 {
			return c
		}
		return a.ULID.Compare(b.ULID)
	})
	return blocks, present, errs
}

func (s *Shipper) isShipped(id ulid.ULID) bool {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	_, ok := s.shipped[id]
	return ok
}

// forgetDeleted drops the record of blocks no longer in the TSDB directory, so the record does not grow
// forever: a deleted block never comes back under the same ULID.
func (s *Shipper) forgetDeleted(present map[ulid.ULID]struct{}) error {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	changed := false
	for id := range s.shipped {
		if _, ok := present[id]; !ok {
			delete(s.shipped, id)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return s.writeStateLocked()
}

func (s *Shipper) recordShipped(id ulid.ULID) error {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	// Recorded in memory even if the file cannot be written: the block is in the bucket, and the next
	// successful write saves it; after a crash the bucket check keeps it from being uploaded twice.
	s.shipped[id] = s.now()
	return s.writeStateLocked()
}

func (s *Shipper) writeStateLocked() error {
	b, err := json.Marshal(shipperState{Version: shipperStateVersion1, Shipped: s.shipped})
	if err != nil {
		return fmt.Errorf("encode record of shipped blocks: %w", err)
	}
	return writeFileAtomic(filepath.Join(s.dir, ShipperStateFilename), b)
}

// shipWithRetries ships one block, retrying with exponential backoff. It reports whether it uploaded the
// block (false: it was already complete in the bucket).
func (s *Shipper) shipWithRetries(ctx context.Context, m *Meta) (bool, error) {
	wait := s.backoff.MinBackoff
	for attempt := 0; ; attempt++ {
		uploaded, err := s.ship(ctx, m)
		if err == nil {
			return uploaded, nil
		}
		if ctx.Err() != nil {
			return false, fmt.Errorf("ship block %s: %w", m.ULID, ctx.Err())
		}
		s.metrics.uploadFailures.Inc()
		if attempt >= s.backoff.MaxRetries {
			return false, fmt.Errorf("ship block %s (gave up after %d attempts, the next sync retries): %w", m.ULID, attempt+1, err)
		}
		s.logger.Warn("block upload failed, retrying", "block", m.ULID, "attempt", attempt+1, "backoff", wait, "err", err)
		if err := sleepCtx(ctx, wait); err != nil {
			return false, fmt.Errorf("ship block %s: %w", m.ULID, err)
		}
		wait = min(2*wait, s.backoff.MaxBackoff)
	}
}

// ship uploads one block: every file but meta.json, then meta.json, so that a block is only ever seen
// complete in the bucket once all its data is there.
func (s *Shipper) ship(ctx context.Context, m *Meta) (bool, error) {
	_, err := DownloadMeta(ctx, s.bkt, m.ULID)
	switch {
	case err == nil:
		// Uploaded by an earlier Sync that crashed before recording it.
		s.logger.Info("block already complete in the bucket, recording it as shipped", "block", m.ULID)
		return false, nil
	case errors.Is(err, ErrMetaNotFound), errors.Is(err, ErrMetaCorrupted):
		// Not uploaded, partially uploaded, or with a broken meta.json: (re)upload everything.
	default:
		return false, err
	}

	blockDir := filepath.Join(s.dir, m.ULID.String())
	meta := *m
	meta.Strata = StrataMeta{TenantID: s.tenant, IngesterID: s.ingesterID, Source: SourceIngester}
	if s.beforeUpload != nil {
		if err := s.beforeUpload(ctx, blockDir, &meta); err != nil {
			return false, fmt.Errorf("prepare block %s: %w", m.ULID, err)
		}
	}
	err = filepath.WalkDir(blockDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(blockDir, p)
		if err != nil {
			return err
		}
		// meta.json goes last; *.tmp files are the TSDB's half-written replacements of a file.
		if rel == MetaFilename || strings.HasSuffix(rel, ".tmp") {
			return nil
		}
		return s.uploadFile(ctx, p, path.Join(m.ULID.String(), filepath.ToSlash(rel)))
	})
	if err != nil {
		return false, fmt.Errorf("upload files of block %s: %w", m.ULID, err)
	}

	if err := UploadMeta(ctx, s.bkt, &meta); err != nil {
		return false, err
	}
	s.metrics.uploads.Inc()
	s.logger.Info("uploaded block", "block", m.ULID, "min_time", m.MinTime, "max_time", m.MaxTime)
	return true, nil
}

func (s *Shipper) uploadFile(ctx context.Context, src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := s.bkt.Upload(ctx, dst, f); err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	return nil
}

// sleepCtx waits for d or until ctx is done, whichever comes first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// shipperState is the content of ShipperStateFilename.
type shipperState struct {
	Version int                     `json:"version"`
	Shipped map[ulid.ULID]time.Time `json:"shipped"`
}

// readShipperState returns the recorded shipped blocks; a missing file means none.
func readShipperState(name string) (map[ulid.ULID]time.Time, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return map[ulid.ULID]time.Time{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var st shipperState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	if st.Version != shipperStateVersion1 {
		return nil, fmt.Errorf("%s has version %d, want %d", name, st.Version, shipperStateVersion1)
	}
	if st.Shipped == nil {
		st.Shipped = map[ulid.ULID]time.Time{}
	}
	return st.Shipped, nil
}
