package storegateway

import (
	"container/list"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// entryOverheadBytes approximates what an entry costs beyond its key and value (list element, map slot),
// so that many tiny entries cannot exceed the byte bound by much.
const entryOverheadBytes = 96

// lruCache is a size-bounded, least-recently-used cache safe for concurrent use. Values are immutable once
// added: callers share them.
type lruCache[K comparable, V any] struct {
	maxBytes int64
	sizeOf   func(K, V) int64

	mu    sync.Mutex
	bytes int64
	order *list.List // front: most recently used; elements hold *lruEntry
	items map[K]*list.Element

	requests, hits, evictions prometheus.Counter
	sizeBytes, itemsGauge     prometheus.Gauge
}

type lruEntry[K comparable, V any] struct {
	key   K
	value V
	size  int64
}

// newLRUCache returns a cache of at most maxBytes (0 disables it) whose entries weigh sizeOf, reporting to
// m under the cache label name.
func newLRUCache[K comparable, V any](name string, maxBytes int64, sizeOf func(K, V) int64, m *metrics) *lruCache[K, V] {
	return &lruCache[K, V]{
		maxBytes:   maxBytes,
		sizeOf:     sizeOf,
		order:      list.New(),
		items:      map[K]*list.Element{},
		requests:   m.cacheRequests.WithLabelValues(name),
		hits:       m.cacheHits.WithLabelValues(name),
		evictions:  m.cacheEvictions.WithLabelValues(name),
		sizeBytes:  m.cacheSizeBytes.WithLabelValues(name),
		itemsGauge: m.cacheItems.WithLabelValues(name),
	}
}

// Enabled reports whether the cache can hold anything, so that callers can skip preparing keys.
func (c *lruCache[K, V]) Enabled() bool { return c.maxBytes > 0 }

// Get returns the value of k and marks it recently used.
func (c *lruCache[K, V]) Get(k K) (V, bool) {
	c.requests.Inc()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.hits.Inc()
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry[K, V]).value, true
}

// GetMany looks up keys[i] into values[i] under one lock, for callers that look up many keys at once
// (a query's chunks), and reports which were found.
func (c *lruCache[K, V]) GetMany(keys []K, values []V) (found []bool) {
	found = make([]bool, len(keys))
	hits := 0
	c.mu.Lock()
	for i, k := range keys {
		if e, ok := c.items[k]; ok {
			c.order.MoveToFront(e)
			values[i], found[i] = e.Value.(*lruEntry[K, V]).value, true
			hits++
		}
	}
	c.mu.Unlock()
	c.requests.Add(float64(len(keys)))
	c.hits.Add(float64(hits))
	return found
}

// Add stores v under k, evicting the least recently used entries to stay within the bound. A value larger
// than the whole cache is not stored.
func (c *lruCache[K, V]) Add(k K, v V) {
	size := c.sizeOf(k, v) + entryOverheadBytes
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(k, v, size)
}

// AddMany stores values[i] under keys[i] under one lock, as Add does.
func (c *lruCache[K, V]) AddMany(keys []K, values []V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		if size := c.sizeOf(k, values[i]) + entryOverheadBytes; size <= c.maxBytes {
			c.addLocked(k, values[i], size)
		}
	}
}

func (c *lruCache[K, V]) addLocked(k K, v V, size int64) {
	if e, ok := c.items[k]; ok {
		c.removeLocked(e)
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, value: v, size: size})
	c.bytes += size
	c.sizeBytes.Add(float64(size))
	c.itemsGauge.Inc()
	for c.bytes > c.maxBytes {
		c.removeLocked(c.order.Back())
		c.evictions.Inc()
	}
}

// removeLocked drops e; the gauges move by deltas because several caches may share them.
func (c *lruCache[K, V]) removeLocked(e *list.Element) {
	ent := c.order.Remove(e).(*lruEntry[K, V])
	delete(c.items, ent.key)
	c.bytes -= ent.size
	c.sizeBytes.Sub(float64(ent.size))
	c.itemsGauge.Dec()
}

// Len returns the number of entries.
func (c *lruCache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
