package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"
)

// MemcachedConfig is how to reach a memcached cluster.
type MemcachedConfig struct {
	// Addresses are the servers' host:port, comma-separated. Keys are spread over them by hash.
	Addresses string
	// Timeout bounds each network operation, so a slow or unreachable server costs a query at most that.
	Timeout time.Duration
	// MaxItemSize is the largest value stored; larger ones are dropped. It must not exceed memcached's
	// own item size limit (its -I flag, 1 MiB by default), which would refuse them anyway.
	MaxItemSize int
	// MaxIdleConnections is how many idle connections are kept open per server.
	MaxIdleConnections int
}

func (c *MemcachedConfig) registerFlags(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.Addresses, prefix+"addresses", "",
		"Comma-separated memcached servers (host:port). Host names are resolved once, at start.")
	f.DurationVar(&c.Timeout, prefix+"timeout", 200*time.Millisecond,
		"Timeout of each memcached operation. An operation that fails or times out is a cache miss, never a failed request.")
	f.IntVar(&c.MaxItemSize, prefix+"max-item-size", 1<<20,
		"Largest value, in bytes, stored in memcached; larger ones are not stored. Keep it at most memcached's -I (1 MiB by default).")
	f.IntVar(&c.MaxIdleConnections, prefix+"max-idle-connections", 100,
		"Idle connections kept open to each memcached server; set it above the number of concurrent cache operations.")
}

func (c *MemcachedConfig) validate(prefix string) error {
	var errs []error
	if len(c.addresses()) == 0 {
		errs = append(errs, fmt.Errorf("memcached backend without servers: set -%saddresses", prefix))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("memcached timeout must be positive, is %s (-%stimeout)", c.Timeout, prefix))
	}
	if c.MaxItemSize <= 0 {
		errs = append(errs, fmt.Errorf("memcached max item size must be positive, is %d (-%smax-item-size)", c.MaxItemSize, prefix))
	}
	if c.MaxIdleConnections < 0 {
		errs = append(errs, fmt.Errorf("memcached max idle connections must not be negative, is %d (-%smax-idle-connections)", c.MaxIdleConnections, prefix))
	}
	return errors.Join(errs...)
}

func (c *MemcachedConfig) addresses() []string {
	var out []string
	for _, a := range strings.Split(c.Addresses, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Memcached is a cache in memcached servers, shared by every process that uses them.
type Memcached struct {
	client      *memcache.Client
	maxItemSize int
	now         func() time.Time

	logger      *slog.Logger
	failureLogs *rate.Limiter

	errors   *prometheus.CounterVec
	skipped  prometheus.Counter
	duration *prometheus.HistogramVec
}

// NewMemcached returns a client of the servers in cfg; it fails only when an address cannot be resolved.
// No connection is made until the first operation.
func NewMemcached(cfg MemcachedConfig, reg prometheus.Registerer, logger *slog.Logger) (*Memcached, error) {
	servers := new(memcache.ServerList)
	if err := servers.SetServers(cfg.addresses()...); err != nil {
		return nil, fmt.Errorf("memcached addresses %q: %w", cfg.Addresses, err)
	}
	client := memcache.NewFromSelector(servers)
	client.Timeout = cfg.Timeout
	client.MaxIdleConns = cfg.MaxIdleConnections
	return &Memcached{
		client:      client,
		maxItemSize: cfg.MaxItemSize,
		now:         time.Now,
		logger:      logger,
		failureLogs: rate.NewLimiter(rate.Every(10*time.Second), 1),
		errors: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_cache_memcached_errors_total",
			Help: "Memcached operations that failed (server down, timeout, protocol error); each fetch that failed was answered as a miss.",
		}, []string{"operation"}),
		skipped: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_cache_memcached_skipped_items_total",
			Help: "Items not stored in memcached because they are larger than the max item size.",
		}),
		duration: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_cache_memcached_request_duration_seconds",
			Help:    "Time memcached operations took, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
		}, []string{"operation"}),
	}, nil
}

// Fetch implements Cache. A failure is a miss for the keys it concerns.
func (c *Memcached) Fetch(ctx context.Context, keys []string) map[string][]byte {
	found := map[string][]byte{}
	if len(keys) == 0 || ctx.Err() != nil {
		return found
	}
	byServerKey := make(map[string]string, len(keys))
	serverKeys := make([]string, 0, len(keys))
	for _, key := range keys {
		sk := memcachedKey(key)
		if _, dup := byServerKey[sk]; !dup {
			serverKeys = append(serverKeys, sk)
		}
		byServerKey[sk] = key
	}
	start := time.Now()
	items, err := c.client.GetMulti(serverKeys)
	c.duration.WithLabelValues("fetch").Observe(time.Since(start).Seconds())
	if err != nil {
		c.failed("fetch", err) // items still holds what the servers that answered had
	}
	for sk, item := range items {
		if key, ok := byServerKey[sk]; ok {
			found[key] = item.Value
		}
	}
	return found
}

// Store implements Cache. It stops at the first failure: a server that is down would make each further
// item wait for the timeout too.
func (c *Memcached) Store(ctx context.Context, items map[string][]byte, ttl time.Duration) {
	expiration := c.expiration(ttl)
	for key, value := range items {
		if ctx.Err() != nil {
			return
		}
		if len(value) > c.maxItemSize {
			c.skipped.Inc()
			continue
		}
		start := time.Now()
		err := c.client.Set(&memcache.Item{Key: memcachedKey(key), Value: value, Expiration: expiration})
		c.duration.WithLabelValues("store").Observe(time.Since(start).Seconds())
		if err != nil {
			c.failed("store", err)
			return
		}
	}
}

// Close implements Cache.
func (c *Memcached) Close() error { return c.client.Close() }

func (c *Memcached) failed(operation string, err error) {
	c.errors.WithLabelValues(operation).Inc()
	// A memcached that is down fails every query's lookups; one line now and then says so.
	if c.failureLogs.Allow() {
		c.logger.Warn("memcached operation failed; answered as a cache miss (at most one such line per 10s)",
			"component", "cache", "operation", operation, "err", err)
	}
}

// maxRelativeExpiration is the longest expiration memcached reads as seconds from now; it reads larger
// numbers as a Unix time.
const maxRelativeExpiration = 30 * 24 * time.Hour

// expiration converts ttl to memcached's expiration: 0 (never) for no ttl, seconds (rounded up, so a ttl
// under a second does not become "never") up to 30 days, a Unix time beyond.
func (c *Memcached) expiration(ttl time.Duration) int32 {
	switch {
	case ttl <= 0:
		return 0
	case ttl <= maxRelativeExpiration:
		return int32((ttl + time.Second - 1) / time.Second)
	}
	return int32(c.now().Add(ttl).Unix())
}

// maxKeyLength is memcached's limit on key length.
const maxKeyLength = 250

// memcachedKey returns key if memcached can hold it (at most 250 bytes, no spaces or control
// characters), its SHA-256 in hex otherwise. Callers that cannot afford a collision keep the original key
// inside the value and check it.
func memcachedKey(key string) string {
	valid := len(key) <= maxKeyLength
	for i := 0; valid && i < len(key); i++ {
		valid = key[i] > ' ' && key[i] != 0x7f
	}
	if valid {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
