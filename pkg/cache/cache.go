// Package cache keeps byte values by string key for components that can recompute them, such as the
// query-frontend's results cache. A miss, an eviction or an unreachable backend costs time, never a
// failed request: backends answer a failure as a miss and count it in their metrics.
package cache

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Cache stores byte values by key. Implementations are safe for concurrent use.
type Cache interface {
	// Fetch returns the values found for keys; missing, expired and unreachable keys are left out.
	// Callers must not modify the returned slices: a backend may share them with later fetches.
	Fetch(ctx context.Context, keys []string) map[string][]byte
	// Store keeps items for at most ttl (no expiry when ttl <= 0). Any item may be dropped (too large,
	// backend down), so callers treat it as a hint. The cache may keep the slices: callers must not
	// modify them afterwards.
	Store(ctx context.Context, items map[string][]byte, ttl time.Duration)
	// Close releases the backend's connections.
	Close() error
}

// Backends.
const (
	BackendInMemory  = "inmemory"
	BackendMemcached = "memcached"
)

// Config selects and configures a backend. One Config can be registered under several prefixes, one per
// cache a process uses.
type Config struct {
	// Backend is BackendInMemory or BackendMemcached.
	Backend   string
	InMemory  InMemoryConfig
	Memcached MemcachedConfig

	// flagPrefix is what RegisterFlagsWithPrefix was given, so Validate can name the flag to change.
	flagPrefix string
}

// RegisterFlagsWithPrefix registers the flags under prefix, e.g. -query-frontend.results-cache.backend for
// the prefix "query-frontend.results-cache.".
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	c.flagPrefix = prefix
	f.StringVar(&c.Backend, prefix+"backend", BackendInMemory,
		"Cache backend: inmemory (in this process, lost on restart, not shared between replicas) or memcached.")
	c.InMemory.registerFlags(prefix+"inmemory.", f)
	c.Memcached.registerFlags(prefix+"memcached.", f)
}

// Validate reports a configuration the cache cannot work with.
func (c *Config) Validate() error {
	switch c.Backend {
	case BackendInMemory:
		return c.InMemory.validate(c.flagPrefix + "inmemory.")
	case BackendMemcached:
		return c.Memcached.validate(c.flagPrefix + "memcached.")
	}
	return fmt.Errorf("unknown cache backend %q (-%sbackend): use %s or %s", c.Backend, c.flagPrefix, BackendInMemory, BackendMemcached)
}

// New returns the configured backend. Its metrics are registered with reg; a process with several caches
// tells them apart by wrapping reg with a label (prometheus.WrapRegistererWith).
func New(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var (
		backend Cache
		err     error
	)
	switch cfg.Backend {
	case BackendInMemory:
		backend = NewInMemory(cfg.InMemory, reg)
	case BackendMemcached:
		backend, err = NewMemcached(cfg.Memcached, reg, logger)
	default:
		err = errors.New("unreachable: Validate accepted an unknown backend")
	}
	if err != nil {
		return nil, err
	}
	return newInstrumented(backend, reg), nil
}

// instrumented counts the lookups and hits of any backend, so hit ratios read the same whichever is used.
type instrumented struct {
	Cache
	fetchedKeys prometheus.Counter
	hits        prometheus.Counter
}

func newInstrumented(c Cache, reg prometheus.Registerer) *instrumented {
	return &instrumented{
		Cache: c,
		fetchedKeys: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_cache_fetched_keys_total",
			Help: "Keys looked up in the cache.",
		}),
		hits: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_cache_hits_total",
			Help: "Keys looked up in the cache and found.",
		}),
	}
}

func (c *instrumented) Fetch(ctx context.Context, keys []string) map[string][]byte {
	found := c.Cache.Fetch(ctx, keys)
	c.fetchedKeys.Add(float64(len(keys)))
	c.hits.Add(float64(len(found)))
	return found
}
