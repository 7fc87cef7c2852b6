// Package ingester keeps one Prometheus TSDB (head + WAL) per tenant and serves the ingester gRPC API:
// distributors push samples to it and queriers read recent data from it.
package ingester

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/ingester/ingesterpb"
	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/storage/blockstore"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/util/promutil"
	"github.com/strata-metrics/strata/pkg/validation"
)

// Config configures an ingester.
type Config struct {
	// TSDBDir holds one TSDB directory per tenant; the app sets it to <-data.dir>/tsdb.
	TSDBDir string
	// InstanceID names this ingester in the meta.json of the blocks it ships; the app sets it.
	InstanceID           string
	ShipInterval         time.Duration
	RetentionPeriod      time.Duration
	CloseIdleTSDBTimeout time.Duration
	BlockRangesPeriod    time.Duration
	StripeSize           int
	MetadataRetainPeriod time.Duration
	InstanceLimits       InstanceLimits
	// ActiveSeries says which series are active; its flags are registered by the app.
	ActiveSeries ActiveSeriesConfig
}

// RegisterFlags registers the ingester's flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.BlockRangesPeriod, "blocks-storage.tsdb.block-ranges-period", 2*time.Hour, "Duration of the blocks the TSDB head is cut into.")
	c.ActiveSeries.RegisterFlags(f)
	f.DurationVar(&c.ShipInterval, "blocks-storage.tsdb.ship-interval", time.Minute, "How often new blocks are uploaded to object storage. 0 disables shipping.")
	f.DurationVar(&c.RetentionPeriod, "blocks-storage.tsdb.retention-period", 13*time.Hour, "How long a block stays on the ingester's disk after it has been shipped (measured from its newest sample); it should cover -querier.query-ingesters-within.")
	f.DurationVar(&c.CloseIdleTSDBTimeout, "blocks-storage.tsdb.close-idle-tsdb-timeout", 13*time.Hour, "A tenant that sent nothing for this long has its TSDB flushed, shipped and closed, and its local files removed. 0 keeps TSDBs open.")
	// The TSDB's default (16384) is tuned for lock contention on many cores; lookups in fewer, larger
	// maps stay in the CPU's caches and made appends to 200k series 35% faster (docs/benchmarks.md).
	f.IntVar(&c.StripeSize, "blocks-storage.tsdb.stripe-size", 512, "Number of stripes (a power of two; 0: the TSDB's default of 16384) of each tenant's head series map and its locks. More stripes mean less lock contention on many cores, fewer mean faster lookups.")
	f.DurationVar(&c.MetadataRetainPeriod, "ingester.metadata-retain-period", 10*time.Minute, "How long metric metadata is kept after it was last received.")
	c.InstanceLimits.RegisterFlags(f)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.BlockRangesPeriod < time.Minute {
		return fmt.Errorf("-blocks-storage.tsdb.block-ranges-period must be at least 1m, got %s", c.BlockRangesPeriod)
	}
	if c.StripeSize < 0 || c.StripeSize&(c.StripeSize-1) != 0 {
		return fmt.Errorf("-blocks-storage.tsdb.stripe-size must be a power of two, got %d", c.StripeSize)
	}
	if c.ShipInterval < 0 || c.RetentionPeriod < 0 || c.CloseIdleTSDBTimeout < 0 {
		return errors.New("-blocks-storage.tsdb.ship-interval, retention-period and close-idle-tsdb-timeout must not be negative")
	}
	return c.ActiveSeries.Validate()
}

// Lifecycler is the ingester's membership of the ring: registered as JOINING before the WAL replay,
// ACTIVE once the ingester can serve.
type Lifecycler interface {
	Start(ctx context.Context) error
	ChangeState(ctx context.Context, state ring.InstanceState) error
	Stop(ctx context.Context) error
}

// Ingester owns the per-tenant TSDBs. It implements ingesterpb.IngesterServer and services.Service.
type Ingester struct {
	ingesterpb.UnimplementedIngesterServer

	cfg            Config
	limits         *validation.Overrides
	instanceLimits *instanceLimiter
	share          RingShare
	// healthyIngesters counts share's healthy ingesters, which every push and new series reads.
	healthyIngesters *ring.HealthyCount
	lifecycler       Lifecycler
	bucket           objstore.Bucket
	logger           *slog.Logger
	reg              prometheus.Registerer
	metrics          *metrics
	shipperMetrics   *blockstore.ShipperMetrics
	shipperOpts      []blockstore.ShipperOption // tests shorten the upload backoff
	now              func() time.Time

	// deletionsInterval is how often the bucket's deletions are applied when shipping is off.
	deletionsInterval time.Duration
	shipLoopCancel    context.CancelFunc
	shipLoopDone      chan struct{}

	mtx     sync.RWMutex
	tenants map[string]*tenantDB

	// inflight counts requests being served; Stop waits for them before closing the TSDBs.
	inflightMtx sync.RWMutex
	stopping    bool
	inflight    sync.WaitGroup
}

// tenantDB is one tenant's TSDB, the metric metadata it received, and what ships its blocks.
type tenantDB struct {
	db       *tsdb.DB
	metadata *metadataStore
	shipper  *blockstore.Shipper // nil without a bucket
	tenantActivity
	// compactMtx serialises forced head compactions (flushes) of this tenant.
	compactMtx sync.Mutex
	// inflight counts requests using db, so closing an idle tenant waits for them.
	inflight sync.WaitGroup
	// registerer holds the TSDB's metrics, unregistered when the tenant is closed.
	registerer *promutil.TrackingRegisterer
	// series applies the series limits and counts the tenant's series.
	series *seriesLimiter
	// tombstones are the series deletions already applied to db.
	tombstones appliedTombstones
	// applied are the limit-driven settings the TSDB runs with; settingsMtx serialises their changes.
	settingsMtx sync.Mutex
	applied     tsdbSettings
}

// New builds an ingester. lifecycler and share may be nil (tests that need no ring); bkt may be nil, and
// then blocks stay on local disk only.
func New(cfg Config, limits *validation.Overrides, lifecycler Lifecycler, share RingShare, bkt objstore.Bucket, discarded *prometheus.CounterVec, reg prometheus.Registerer, logger *slog.Logger) (*Ingester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	i := &Ingester{
		cfg:               cfg,
		deletionsInterval: time.Minute,
		limits:            limits,
		instanceLimits:    newInstanceLimiter(cfg.InstanceLimits),
		share:             share,
		healthyIngesters:  ring.NewHealthyCount(share, ring.Write),
		lifecycler:        lifecycler,
		bucket:            bkt,
		logger:            logger,
		reg:               reg,
		metrics:           newMetrics(reg, discarded),
		shipperMetrics:    blockstore.NewShipperMetrics(reg),
		now:               time.Now,
		tenants:           map[string]*tenantDB{},
	}
	if reg != nil {
		reg.MustRegister(newActiveSeriesCollector(i))
	}
	return i, nil
}

// Start registers the ingester in the ring as JOINING, reopens every tenant's TSDB found on disk (replaying
// its WAL), and only then turns ACTIVE, so no distributor routes writes to a half-recovered ingester.
func (i *Ingester) Start(ctx context.Context) error {
	if err := os.MkdirAll(i.cfg.TSDBDir, 0o755); err != nil {
		return fmt.Errorf("create TSDB directory: %w", err)
	}
	if i.lifecycler != nil {
		if err := i.lifecycler.Start(ctx); err != nil {
			return fmt.Errorf("join the ring: %w", err)
		}
	}
	entries, err := os.ReadDir(i.cfg.TSDBDir)
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	start := time.Now()
	for _, e := range entries {
		if !e.IsDir() || tenant.ValidateID(e.Name()) != nil {
			continue
		}
		// One tenant's TSDB that cannot open (files damaged, descriptors exhausted) must not keep every
		// other tenant out: it stays on disk and is opened again when it is next written or read.
		if _, err := i.openTenant(e.Name(), true); err != nil {
			i.metrics.tsdbOpenFailures.Inc()
			i.logger.Error("cannot open a tenant's TSDB; retried when the tenant is next written or read", "tenant", e.Name(), "err", err)
		}
	}
	i.logger.Info("opened existing TSDBs", "tenants", len(i.tenants), "duration", time.Since(start))
	if i.bucket != nil {
		// Even with shipping off: deletions in the bucket apply to the heads.
		loopCtx, cancel := context.WithCancel(context.Background())
		i.shipLoopCancel, i.shipLoopDone = cancel, make(chan struct{})
		go i.shipLoop(loopCtx)
	}
	if i.lifecycler != nil {
		if err := i.lifecycler.ChangeState(ctx, ring.ACTIVE); err != nil {
			return fmt.Errorf("turn ACTIVE in the ring: %w", err)
		}
	}
	return nil
}

// Stop turns the instance LEAVING, lets in-flight requests finish, refuses new ones, closes every TSDB
// (the WAL stays on disk for the next start) and leaves the ring.
func (i *Ingester) Stop(ctx context.Context) error {
	if i.lifecycler != nil {
		if err := i.lifecycler.ChangeState(ctx, ring.LEAVING); err != nil {
			i.logger.Warn("failed to turn LEAVING", "err", err)
		}
	}
	i.inflightMtx.Lock()
	i.stopping = true
	i.inflightMtx.Unlock()
	i.inflight.Wait()
	if i.shipLoopCancel != nil {
		i.shipLoopCancel()
		<-i.shipLoopDone
	}

	i.mtx.Lock()
	var errs []error
	for id, t := range i.tenants {
		if err := t.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close TSDB of tenant %s: %w", id, err))
		}
		t.series.released()
	}
	i.tenants = map[string]*tenantDB{}
	i.mtx.Unlock()

	if i.lifecycler != nil {
		if err := i.lifecycler.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("leave the ring: %w", err))
		}
	}
	return errors.Join(errs...)
}

// begin registers an in-flight request; it fails once Stop has started.
func (i *Ingester) begin() error {
	i.inflightMtx.RLock()
	defer i.inflightMtx.RUnlock()
	if i.stopping {
		return errStopping
	}
	i.inflight.Add(1)
	return nil
}

func (i *Ingester) end() { i.inflight.Done() }

// tenantDB returns the tenant's open TSDB, or nil when the tenant has no data here.
func (i *Ingester) tenantDB(id string) *tenantDB {
	i.mtx.RLock()
	defer i.mtx.RUnlock()
	return i.tenants[id]
}

// acquireTenantDB returns the tenant's TSDB for one request, opening it first if create is set; release
// must be called when the request is done. It returns nil when the tenant has no TSDB and create is off.
func (i *Ingester) acquireTenantDB(id string, create bool) (t *tenantDB, release func(), err error) {
	i.mtx.RLock()
	t = i.tenants[id]
	if t != nil {
		t.inflight.Add(1) // under the lock, so an idle close (which removes under the write lock) waits for it
	}
	i.mtx.RUnlock()
	if t == nil {
		onDisk := i.onDisk(id)
		if !create && !onDisk {
			return nil, func() {}, nil
		}
		// A tenant on disk but not open failed to open at start: its data is here, so open it to read too.
		if _, err := i.openTenant(id, onDisk); err != nil {
			return nil, nil, err
		}
		return i.acquireTenantDB(id, false)
	}
	return t, t.inflight.Done, nil
}

// tenantIDs lists the tenants with an open TSDB.
func (i *Ingester) tenantIDs() []string {
	i.mtx.RLock()
	defer i.mtx.RUnlock()
	ids := make([]string, 0, len(i.tenants))
	for id := range i.tenants {
		ids = append(ids, id)
	}
	return ids
}

// onDisk reports whether the tenant has a TSDB directory.
func (i *Ingester) onDisk(id string) bool {
	_, err := os.Stat(filepath.Join(i.cfg.TSDBDir, id))
	return err == nil
}

// openTenant opens the tenant's TSDB. A tenant with data on disk always opens: its data was acknowledged;
// a new one only if the instance has room for it.
func (i *Ingester) openTenant(id string, onDisk bool) (*tenantDB, error) {
	i.mtx.Lock()
	defer i.mtx.Unlock()
	if t, ok := i.tenants[id]; ok {
		return t, nil
	}
	if !onDisk {
		if err := i.instanceLimits.allowNewTenant(len(i.tenants)); err != nil {
			return nil, err
		}
	}
	opts := tsdb.DefaultOptions()
	opts.MinBlockDuration = i.cfg.BlockRangesPeriod.Milliseconds()
	opts.MaxBlockDuration = i.cfg.BlockRangesPeriod.Milliseconds()
	// Retention is decided per block by blocksToDelete (shipped and old enough), not by the TSDB's clock.
	opts.RetentionDuration = 0
	if i.cfg.StripeSize > 0 {
		opts.StripeSize = i.cfg.StripeSize
	}
	t := &tenantDB{metadata: newMetadataStore(i.cfg.MetadataRetainPeriod), series: newSeriesLimiter(id, i), applied: i.tsdbSettings(id)}
	t.shipper = i.newShipper(id, t)
	// Both change live with the tenant's limits (applyLimits); exemplar storage exists even when empty
	// so that its size can be raised.
	opts.OutOfOrderTimeWindow = t.applied.outOfOrderWindow
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = t.applied.maxExemplars
	opts.SeriesLifecycleCallback = t.series
	t.touch(i.now())
	opts.BlocksToDelete = i.blocksToDelete(t)
	reg := newTenantRegisterer(i.reg, id)
	t.registerer = reg
	db, err := tsdb.Open(filepath.Join(i.cfg.TSDBDir, id), i.logger.With("tenant", id), reg, opts, nil)
	if err != nil {
		reg.UnregisterAll()
		t.series.released()
		return nil, status.Errorf(codes.Unavailable, "open TSDB of tenant %s: %v", id, err)
	}
	t.series.enforcing.Store(true)
	t.db = db
	i.tenants[id] = t
	i.metrics.tenants.Set(float64(len(i.tenants)))
	return t, nil
}

type metrics struct {
	discarded        *prometheus.CounterVec
	ingestedSamples  prometheus.Counter
	tenants          prometheus.Gauge
	tsdbOpenFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, discarded *prometheus.CounterVec) *metrics {
	return &metrics{
		discarded: discarded,
		ingestedSamples: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_ingester_ingested_samples_total",
			Help: "Samples, histograms included, appended to TSDB heads.",
		}),
		tenants: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "strata_ingester_tenants",
			Help: "Tenants with an open TSDB in this ingester.",
		}),
		tsdbOpenFailures: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_ingester_tsdb_open_failures_total",
			Help: "Tenant TSDBs that failed to open, at start or when a tenant was next written or read.",
		}),
	}
}
