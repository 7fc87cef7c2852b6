package cache

import (
	"container/list"
	"context"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// InMemoryConfig bounds the in-process backend.
type InMemoryConfig struct {
	// MaxSizeBytes bounds the keys, values and bookkeeping the cache holds together.
	MaxSizeBytes int
}

func (c *InMemoryConfig) registerFlags(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.MaxSizeBytes, prefix+"max-size-bytes", 128<<20,
		"Most memory, in bytes, the in-process cache holds (keys, values and about 100 bytes of bookkeeping per item); the least recently used items are evicted beyond it.")
}

func (c *InMemoryConfig) validate(prefix string) error {
	if c.MaxSizeBytes <= 0 {
		return fmt.Errorf("the in-memory cache's size must be positive, is %d (-%smax-size-bytes)", c.MaxSizeBytes, prefix)
	}
	return nil
}

// InMemoryEntryOverheadBytes is what one item of the in-memory backend costs beyond its key and value:
// the map slot, the list element and the entry. Counting it keeps the bound honest when items are small.
const InMemoryEntryOverheadBytes = 112

// InMemory is a least-recently-used cache bounded by bytes, in this process.
type InMemory struct {
	maxBytes int
	now      func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element
	recency *list.List // of *inMemoryEntry, most recently used first
	bytes   int

	items     prometheus.Gauge
	usedBytes prometheus.Gauge
	evictions prometheus.Counter
}

type inMemoryEntry struct {
	key     string
	value   []byte
	expires time.Time // zero: never
}

func (e *inMemoryEntry) size() int { return len(e.key) + len(e.value) + InMemoryEntryOverheadBytes }

// NewInMemory returns an empty cache.
func NewInMemory(cfg InMemoryConfig, reg prometheus.Registerer) *InMemory {
	return &InMemory{
		maxBytes: cfg.MaxSizeBytes,
		now:      time.Now,
		entries:  map[string]*list.Element{},
		recency:  list.New(),
		items: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "strata_cache_inmemory_items",
			Help: "Items in the in-process cache.",
		}),
		usedBytes: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "strata_cache_inmemory_bytes",
			Help: "Bytes the in-process cache holds: keys, values and per-item bookkeeping.",
		}),
		evictions: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_cache_inmemory_evictions_total",
			Help: "Items evicted from the in-process cache to stay within its size; a high rate asks for a larger cache.",
		}),
	}
}

// Fetch implements Cache.
func (c *InMemory) Fetch(_ context.Context, keys []string) map[string][]byte {
	now := c.now()
	found := make(map[string][]byte, len(keys))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, key := range keys {
		elem, ok := c.entries[key]
		if !ok {
			continue
		}
		entry := elem.Value.(*inMemoryEntry)
		if !entry.expires.IsZero() && !now.Before(entry.expires) {
			c.remove(elem)
			continue
		}
		c.recency.MoveToFront(elem)
		found[key] = entry.value
	}
	c.updateGauges()
	return found
}

// Store implements Cache. An item larger than the whole cache is not stored.
func (c *InMemory) Store(_ context.Context, items map[string][]byte, ttl time.Duration) {
	var expires time.Time
	if ttl > 0 {
		expires = c.now().Add(ttl)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, value := range items {
		entry := &inMemoryEntry{key: key, value: value, expires: expires}
		if old, ok := c.entries[key]; ok {
			c.remove(old)
		}
		if entry.size() > c.maxBytes {
			continue
		}
		c.entries[key] = c.recency.PushFront(entry)
		c.bytes += entry.size()
	}
	for c.bytes > c.maxBytes {
		c.remove(c.recency.Back())
		c.evictions.Inc()
	}
	c.updateGauges()
}

// Close implements Cache; the in-process cache holds nothing to release.
func (c *InMemory) Close() error { return nil }

// remove drops elem; c.mu is held.
func (c *InMemory) remove(elem *list.Element) {
	entry := c.recency.Remove(elem).(*inMemoryEntry)
	delete(c.entries, entry.key)
	c.bytes -= entry.size()
}

// updateGauges publishes the size; c.mu is held.
func (c *InMemory) updateGauges() {
	c.items.Set(float64(len(c.entries)))
	c.usedBytes.Set(float64(c.bytes))
}
