package storegateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-metrics/strata/pkg/util/promutil"
)

// metrics are the store-gateway's own metrics; the bucket client reports its operations separately.
type metrics struct {
	blocksLoaded     prometheus.Gauge
	blockLoads       prometheus.Counter
	blockLoadFails   prometheus.Counter
	blockDrops       prometheus.Counter
	syncs            prometheus.Counter
	syncFailures     prometheus.Counter
	syncDuration     prometheus.Histogram
	lastSyncSuccess  prometheus.Gauge
	bucketRangeReads prometheus.Counter
	bucketRangeBytes prometheus.Counter
	cacheRequests    *prometheus.CounterVec
	cacheHits        *prometheus.CounterVec
	cacheEvictions   *prometheus.CounterVec
	cacheSizeBytes   *prometheus.GaugeVec
	cacheItems       *prometheus.GaugeVec
	requestDuration  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		blocksLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_storegateway_blocks_loaded",
			Help: "Number of blocks whose index is loaded and served.",
		}),
		blockLoads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_storegateway_block_loads_total",
			Help: "Blocks loaded (index downloaded or found on disk, and opened).",
		}),
		blockLoadFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_storegateway_block_load_failures_total",
			Help: "Blocks that failed to load; the next sync tries again.",
		}),
		blockDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_storegateway_block_drops_total",
			Help: "Blocks dropped because they were deleted, marked for deletion or are no longer owned.",
		}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_storegateway_blocks_syncs_total",
			Help: "Syncs of the loaded blocks with the bucket indexes.",
		}),
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_storegateway_blocks_sync_failures_total",
			Help: "Syncs that failed for at least one tenant.",
		}),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_storegateway_blocks_sync_duration_seconds",
			Help:    "Duration of a sync of the loaded blocks with the bucket indexes.",
			Buckets: []float64{0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600},
		}),
		lastSyncSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_storegateway_blocks_last_successful_sync_timestamp_seconds",
			Help: "Unix time of the last sync that succeeded for every tenant.",
		}),
		bucketRangeReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_storegateway_bucket_range_reads_total",
			Help: "Range reads of chunk files in the bucket.",
		}),
		bucketRangeBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_storegateway_bucket_range_read_bytes_total",
			Help: "Bytes read by range reads of chunk files in the bucket.",
		}),
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_storegateway_cache_requests_total",
			Help: "Lookups in the in-memory caches, by cache (postings or chunks).",
		}, []string{"cache"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_storegateway_cache_hits_total",
			Help: "Lookups in the in-memory caches that found the entry, by cache.",
		}, []string{"cache"}),
		cacheEvictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_storegateway_cache_evictions_total",
			Help: "Entries evicted from the in-memory caches to stay within their size, by cache.",
		}, []string{"cache"}),
		cacheSizeBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_storegateway_cache_size_bytes",
			Help: "Approximate size of the in-memory caches, by cache.",
		}, []string{"cache"}),
		cacheItems: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_storegateway_cache_items",
			Help: "Entries in the in-memory caches, by cache.",
		}, []string{"cache"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_storegateway_request_duration_seconds",
			Help:    "Duration of store-gateway gRPC requests, by method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
	}
	// Two store-gateways in one process (tests) share their metrics rather than failing to register, which
	// is why gauges are only ever changed by deltas.
	var err error
	m.blocksLoaded = reuse(reg, m.blocksLoaded, &err)
	m.blockLoads = reuse(reg, m.blockLoads, &err)
	m.blockLoadFails = reuse(reg, m.blockLoadFails, &err)
	m.blockDrops = reuse(reg, m.blockDrops, &err)
	m.syncs = reuse(reg, m.syncs, &err)
	m.syncFailures = reuse(reg, m.syncFailures, &err)
	m.syncDuration = reuse(reg, m.syncDuration, &err)
	m.lastSyncSuccess = reuse(reg, m.lastSyncSuccess, &err)
	m.bucketRangeReads = reuse(reg, m.bucketRangeReads, &err)
	m.bucketRangeBytes = reuse(reg, m.bucketRangeBytes, &err)
	m.cacheRequests = reuse(reg, m.cacheRequests, &err)
	m.cacheHits = reuse(reg, m.cacheHits, &err)
	m.cacheEvictions = reuse(reg, m.cacheEvictions, &err)
	m.cacheSizeBytes = reuse(reg, m.cacheSizeBytes, &err)
	m.cacheItems = reuse(reg, m.cacheItems, &err)
	m.requestDuration = reuse(reg, m.requestDuration, &err)
	return m, err
}

// reuse registers c with reg, or returns the equal collector registered before; the first error sticks.
func reuse[T prometheus.Collector](reg prometheus.Registerer, c T, err *error) T {
	if *err != nil {
		return c
	}
	got, e := promutil.RegisterOrReuse(reg, c)
	if e != nil {
		*err = e
		return c
	}
	return got
}
