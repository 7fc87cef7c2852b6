package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/services"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/storage/bucket"
	"github.com/strata-metrics/strata/pkg/validation"
)

const (
	// RingName names the compactors' ring in logs, metrics and the status page.
	RingName = "compactor"
	// RingKey is the KV key under which compactors register, with a replication factor of 1: each tenant
	// has exactly one owner.
	RingKey = "compactor-ring"
)

// Compactor compacts, applies retention to and cleans up the blocks of the tenants it owns, and writes
// their bucket indexes. It implements services.Service.
type Compactor struct {
	cfg        Config
	limits     *validation.Overrides // nil: no per-tenant retention
	bkt        objstore.Bucket
	ring       ring.ReadRing
	instanceID string
	logger     *slog.Logger
	metrics    *metrics

	// now is the clock; tests move it to pass deletion delays and retention periods.
	now func() time.Time
	// afterUpload, when set, runs after a compacted block is uploaded and before its sources are marked; a
	// non-nil error stops the pass there, as a crash would. Tests use it.
	afterUpload func(tenant string, id ulid.ULID) error

	// passMtx makes passes exclusive: the service loop and CompactAll callers never work on a tenant at once.
	passMtx sync.Mutex
	// metas caches meta.json per tenant and block: a block's meta.json never changes once uploaded.
	metas map[string]map[ulid.ULID]*blockstore.Meta
	// clean remembers the blocks found without samples of a pending series deletion.
	clean cleanBlocks

	// uploads runs the validations of uploaded blocks; indexUpdate asks the loop for a cleanup pass, which
	// writes bucket indexes, once an uploaded block is published.
	uploads     *blockUploads
	indexUpdate chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

var _ services.Service = (*Compactor)(nil)

// New returns a compactor over bkt (the whole bucket, not a tenant's). r is the compactors' ring: a tenant
// is compacted by the instance that owns its hash, and r nil makes this instance own every tenant.
// instanceID is this compactor's ID in r. limits give each tenant's retention; nil keeps blocks forever.
func New(cfg Config, limits *validation.Overrides, bkt objstore.Bucket, r ring.ReadRing, instanceID string, reg prometheus.Registerer, logger *slog.Logger) (*Compactor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, errors.New("compactor: -compactor.data-dir must be set")
	}
	if bkt == nil {
		return nil, errors.New("compactor: an object storage bucket is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.BlockRanges = cfg.BlockRanges.clone()
	return &Compactor{
		cfg:         cfg,
		limits:      limits,
		bkt:         bkt,
		ring:        r,
		instanceID:  instanceID,
		logger:      logger.With("component", "compactor"),
		metrics:     newMetrics(reg),
		now:         time.Now,
		metas:       map[string]map[ulid.ULID]*blockstore.Meta{},
		clean:       cleanBlocks{},
		uploads:     newBlockUploads(),
		indexUpdate: make(chan struct{}, 1),
	}, nil
}

// Start removes what a previous process left in the data directory when it died mid-compaction, and starts
// the loop that runs a compaction pass at once and then every compaction interval, and cleanup passes in
// between.
func (c *Compactor) Start(context.Context) error {
	if err := os.MkdirAll(c.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("compactor: create data directory: %w", err)
	}
	// Only the compactor's own working directories: the data directory is the operator's choice.
	leftovers, err := filepath.Glob(filepath.Join(c.cfg.DataDir, workDirPrefix+"*"))
	if err != nil {
		return fmt.Errorf("compactor: list data directory: %w", err)
	}
	for _, d := range leftovers {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("compactor: clean data directory: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.done = make(chan struct{})
	go c.loop(ctx)
	return nil
}

// Stop cancels the running pass (its partial work is redone by the next one) and waits for the loop to end.
func (c *Compactor) Stop(ctx context.Context) error {
	c.uploads.stop()
	if c.cancel == nil {
		return nil
	}
	c.cancel()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("compactor: stop: %w", ctx.Err())
	}
}

func (c *Compactor) loop(ctx context.Context) {
	defer close(c.done)
	compactTicker := time.NewTicker(c.cfg.CompactionInterval)
	defer compactTicker.Stop()
	cleanupTicker := time.NewTicker(c.cfg.CleanupInterval)
	defer cleanupTicker.Stop()
	// Errors are logged and counted by the passes; the loop just carries on.
	_ = c.CompactAll(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-compactTicker.C:
			_ = c.CompactAll(ctx)
		case <-cleanupTicker.C:
			_ = c.CleanupAll(ctx)
		case <-c.indexUpdate:
			_ = c.CleanupAll(ctx)
		}
	}
}

// CompactAll runs a compaction pass over every tenant this compactor owns: compaction, retention, deletion
// of blocks past their deletion delay and of abandoned partial uploads, and the bucket index. A tenant's
// failure does not stop the others; the returned error joins them.
func (c *Compactor) CompactAll(ctx context.Context) error {
	return c.runAll(ctx, true)
}

// CleanupAll is CompactAll without compaction: retention, deletions and bucket indexes only.
func (c *Compactor) CleanupAll(ctx context.Context) error {
	return c.runAll(ctx, false)
}

func (c *Compactor) runAll(ctx context.Context, compact bool) error {
	c.passMtx.Lock()
	defer c.passMtx.Unlock()
	kind := "cleanup"
	if compact {
		kind = "compaction"
	}
	c.metrics.runs.WithLabelValues(kind).Inc()
	err := c.runTenants(ctx, compact)
	if err != nil {
		c.metrics.runsFailed.WithLabelValues(kind).Inc()
		c.logger.Error("pass failed", "pass", kind, "err", err)
		return err
	}
	c.metrics.lastSuccess.WithLabelValues(kind).Set(float64(c.now().Unix()))
	return nil
}

func (c *Compactor) runTenants(ctx context.Context, compact bool) error {
	tenants, err := bucket.ListTenants(ctx, c.bkt)
	if err != nil {
		return err
	}
	var errs []error
	owned := map[string]bool{}
	for _, tenant := range tenants {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !c.ownsTenant(tenant) {
			continue
		}
		owned[tenant] = true
		run := c.cleanupTenant
		if compact {
			run = c.compactTenant
		}
		if err := run(ctx, tenant); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", tenant, err))
		}
	}
	// Another compactor now owns the others; their metas would only go stale here.
	for tenant := range c.metas {
		if !owned[tenant] {
			delete(c.metas, tenant)
			delete(c.clean, tenant)
		}
	}
	return errors.Join(errs...)
}

// ownsTenant reports whether this instance owns tenant in the ring. When the ring cannot answer (empty, or
// the owner unhealthy) nobody compacts the tenant: skipping a pass is harmless, two owners are not.
func (c *Compactor) ownsTenant(tenant string) bool {
	if c.ring == nil {
		return true
	}
	rs, err := c.ring.Get(ring.TenantToken(tenant), ring.Write, nil)
	if err != nil {
		c.logger.Warn("cannot find the owner of tenant in the ring, skipping it", "tenant", tenant, "err", err)
		return false
	}
	for _, inst := range rs.Instances {
		if inst.ID == c.instanceID {
			return true
		}
	}
	return false
}

type metrics struct {
	runs          *prometheus.CounterVec
	runsFailed    *prometheus.CounterVec
	lastSuccess   *prometheus.GaugeVec
	compactions   prometheus.Counter
	compacted     prometheus.Counter
	markedDeleted *prometheus.CounterVec
	deleted       prometheus.Counter
	uploads       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_compactor_runs_total",
			Help: "Passes over all owned tenants started, by pass (compaction or cleanup).",
		}, []string{"pass"}),
		runsFailed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_compactor_runs_failed_total",
			Help: "Passes in which at least one tenant failed, by pass.",
		}, []string{"pass"}),
		lastSuccess: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_compactor_last_successful_run_timestamp_seconds",
			Help: "Unix time at which the last pass without failures ended, by pass.",
		}, []string{"pass"}),
		compactions: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_compactor_compactions_total",
			Help: "Groups of blocks merged into one block.",
		}),
		compacted: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_compactor_blocks_compacted_total",
			Help: "Blocks merged into a compacted block.",
		}),
		markedDeleted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_compactor_blocks_marked_for_deletion_total",
			Help: "Blocks marked for deletion, by reason (compacted, retention).",
		}, []string{"reason"}),
		deleted: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_compactor_blocks_deleted_total",
			Help: "Blocks deleted from the bucket: marked ones past the deletion delay and abandoned partial uploads.",
		}),
		uploads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_compactor_block_uploads_total",
			Help: "Uploaded blocks whose validation ended, by result (complete or failed).",
		}, []string{"result"}),
	}
	// The series of each pass and reason exist from the start, at zero: a failure ratio (dashboards,
	// alerts) then has a value before the first failure, and an absent series means no compactor runs.
	for _, pass := range []string{"compaction", "cleanup"} {
		m.runs.WithLabelValues(pass)
		m.runsFailed.WithLabelValues(pass)
	}
	for _, reason := range []string{reasonCompacted, reasonRetention} {
		m.markedDeleted.WithLabelValues(reason)
	}
	return m
}
