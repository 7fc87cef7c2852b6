package storegateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/services"
	"github.com/strata-metrics/strata/pkg/storegateway/storegatewaypb"
)

// ringCheckPeriod is how often the ring is checked for membership changes, which move block ownership and
// so trigger a sync before the next sync interval.
const ringCheckPeriod = 5 * time.Second

// StoreGateway loads the blocks it owns and serves the StoreGateway gRPC service over them.
type StoreGateway struct {
	storegatewaypb.UnimplementedStoreGatewayServer

	cfg          Config
	bkt          objstore.Bucket
	ring         ring.ReadRing // nil: this instance owns every block
	instanceAddr string
	logger       *slog.Logger
	metrics      *metrics

	postingsCache *lruCache[postingsKey, []storage.SeriesRef]
	chunksCache   *lruCache[chunkKey, chunkData]

	// syncMu serialises syncs: the first one in Start, the loop's, and tests'.
	syncMu sync.Mutex
	// mu guards blocks; requests hold it only to look blocks up.
	mu     sync.RWMutex
	blocks map[string]map[ulid.ULID]*block // by tenant, then block ID

	ready  atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
}

var (
	_ services.Service                  = (*StoreGateway)(nil)
	_ storegatewaypb.StoreGatewayServer = (*StoreGateway)(nil)
)

// New returns a store-gateway reading blocks from bkt (the whole bucket, all tenants). With a ring it loads
// only the blocks whose replication set (for BlockToken, ring.BlocksSync) holds the instance with address
// instanceAddr; with a nil ring it loads every block. It loads nothing until Start.
func New(cfg Config, bkt objstore.Bucket, r ring.ReadRing, instanceAddr string, reg prometheus.Registerer, logger *slog.Logger) (*StoreGateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SyncDir == "" {
		return nil, errors.New("store-gateway: no sync directory (-blocks-storage.bucket-store.sync-dir)")
	}
	if bkt == nil {
		return nil, errors.New("store-gateway: nil bucket")
	}
	if r != nil && instanceAddr == "" {
		return nil, errors.New("store-gateway: the instance address is needed to find its blocks in the ring")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("store-gateway: register metrics: %w", err)
	}
	return &StoreGateway{
		cfg:           cfg,
		bkt:           bkt,
		ring:          r,
		instanceAddr:  instanceAddr,
		logger:        logger.With("component", "store-gateway"),
		metrics:       m,
		postingsCache: newLRUCache("postings", cfg.IndexCacheMaxSizeBytes, postingsSize, m),
		chunksCache:   newLRUCache("chunks", cfg.ChunksCacheMaxSizeBytes, chunkSize, m),
		blocks:        map[string]map[ulid.ULID]*block{},
	}, nil
}

// Start runs the first sync, so that the store-gateway is ready (serves its blocks) when Start returns,
// then syncs every sync interval, and sooner when the ring's membership changes. A first sync that cannot
// list the tenants fails Start; other failures are logged and retried by the next sync.
func (s *StoreGateway) Start(ctx context.Context) error {
	if err := s.sync(ctx); err != nil && !isPartialSync(err) {
		return fmt.Errorf("store-gateway: first sync: %w", err)
	}
	s.ready.Store(true)
	loopCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	go s.loop(loopCtx)
	return nil
}

// Stop ends the sync loop and closes the loaded blocks once their requests finish. The downloaded index
// files stay in the sync directory, so a restart loads them without downloading.
func (s *StoreGateway) Stop(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
		select {
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.ready.Store(false)
	s.mu.Lock()
	all := s.blocks
	s.blocks = map[string]map[ulid.ULID]*block{}
	s.mu.Unlock()
	var errs []error
	for _, blocks := range all {
		for _, b := range blocks {
			errs = append(errs, b.close())
			s.metrics.blocksLoaded.Dec()
		}
	}
	return errors.Join(errs...)
}

// Ready reports whether the first sync has finished: before, the store-gateway answers for no block.
func (s *StoreGateway) Ready() bool { return s.ready.Load() }

func (s *StoreGateway) loop(ctx context.Context) {
	defer close(s.done)
	syncTicker := time.NewTicker(s.cfg.SyncInterval)
	defer syncTicker.Stop()
	var ringCheck <-chan time.Time
	if s.ring != nil {
		t := time.NewTicker(ringCheckPeriod)
		defer t.Stop()
		ringCheck = t.C
	}
	lastRing := s.ringState()
	for {
		select {
		case <-ctx.Done():
			return
		case <-syncTicker.C:
		case <-ringCheck:
			if state := s.ringState(); state != lastRing {
				lastRing = state
				s.logger.Info("ring membership changed, syncing blocks")
			} else {
				continue
			}
		}
		if err := s.sync(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("blocks sync failed", "err", err)
		}
	}
}

// ringState is a cheap fingerprint of the ring's membership: an instance joining, leaving, becoming ACTIVE
// or unhealthy changes it.
func (s *StoreGateway) ringState() [2]int {
	if s.ring == nil {
		return [2]int{}
	}
	return [2]int{s.ring.InstancesCount(), s.ring.HealthyInstancesCount(ring.BlocksSync)}
}
