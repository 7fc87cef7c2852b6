package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// fakeClock is a time that tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestInMemory(t *testing.T, maxBytes int) (*InMemory, *fakeClock) {
	t.Helper()
	c := NewInMemory(InMemoryConfig{MaxSizeBytes: maxBytes}, prometheus.NewRegistry())
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	c.now = clock.now
	return c, clock
}

func value(n int, fill byte) []byte { return []byte(strings.Repeat(string(fill), n)) }

func TestInMemory_StoresAndFetches(t *testing.T) {
	c, _ := newTestInMemory(t, 1<<20)
	ctx := context.Background()
	c.Store(ctx, map[string][]byte{"a": []byte("1"), "b": []byte("22")}, time.Hour)

	require.Equal(t, map[string][]byte{"a": []byte("1"), "b": []byte("22")}, c.Fetch(ctx, []string{"a", "b", "missing"}))
	require.Empty(t, c.Fetch(ctx, []string{"missing"}))

	c.Store(ctx, map[string][]byte{"a": []byte("333")}, time.Hour)
	require.Equal(t, map[string][]byte{"a": []byte("333")}, c.Fetch(ctx, []string{"a"}))
	require.Equal(t, 2.0, testutil.ToFloat64(c.items))
	require.Equal(t, float64(len("a")+3+len("b")+2+2*InMemoryEntryOverheadBytes), testutil.ToFloat64(c.usedBytes),
		"replacing a value must account for the new size only")
}

func TestInMemory_EvictsLeastRecentlyUsedBeyondMaxBytes(t *testing.T) {
	itemSize := 1 + 100 + InMemoryEntryOverheadBytes
	c, _ := newTestInMemory(t, 3*itemSize)
	ctx := context.Background()
	c.Store(ctx, map[string][]byte{"a": value(100, 'a')}, 0)
	c.Store(ctx, map[string][]byte{"b": value(100, 'b')}, 0)
	c.Store(ctx, map[string][]byte{"c": value(100, 'c')}, 0)
	require.Len(t, c.Fetch(ctx, []string{"a"}), 1) // a is now the most recently used; b the least

	c.Store(ctx, map[string][]byte{"d": value(100, 'd')}, 0)

	found := c.Fetch(ctx, []string{"a", "b", "c", "d"})
	require.ElementsMatch(t, []string{"a", "c", "d"}, keysOf(found))
	require.Equal(t, 1.0, testutil.ToFloat64(c.evictions))
	require.Equal(t, 3.0, testutil.ToFloat64(c.items))
	require.Equal(t, float64(3*itemSize), testutil.ToFloat64(c.usedBytes))
}

func TestInMemory_DoesNotStoreItemLargerThanTheCache(t *testing.T) {
	c, _ := newTestInMemory(t, 1000)
	ctx := context.Background()
	c.Store(ctx, map[string][]byte{"small": value(10, 's')}, 0)
	c.Store(ctx, map[string][]byte{"huge": value(1000, 'h')}, 0)

	require.ElementsMatch(t, []string{"small"}, keysOf(c.Fetch(ctx, []string{"small", "huge"})),
		"an item that cannot fit must not evict everything else")
	require.Equal(t, 0.0, testutil.ToFloat64(c.evictions))
}

func TestInMemory_ExpiresItemsAfterTTL(t *testing.T) {
	c, clock := newTestInMemory(t, 1<<20)
	ctx := context.Background()
	c.Store(ctx, map[string][]byte{"short": []byte("x")}, time.Minute)
	c.Store(ctx, map[string][]byte{"forever": []byte("y")}, 0)

	clock.t = clock.t.Add(time.Minute - time.Millisecond)
	require.Len(t, c.Fetch(ctx, []string{"short", "forever"}), 2)

	clock.t = clock.t.Add(time.Millisecond)
	require.ElementsMatch(t, []string{"forever"}, keysOf(c.Fetch(ctx, []string{"short", "forever"})))
	require.Equal(t, 1.0, testutil.ToFloat64(c.items), "an expired item found by a fetch is dropped")
}

func TestNew_CountsFetchedKeysAndHits(t *testing.T) {
	reg := prometheus.NewRegistry()
	var cfg Config
	require.NoError(t, registerTestFlags(&cfg, "test.cache."))
	c, err := New(cfg, reg, nil)
	require.NoError(t, err)
	ctx := context.Background()
	c.Store(ctx, map[string][]byte{"a": []byte("1")}, time.Hour)
	c.Fetch(ctx, []string{"a", "b", "c"})

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP strata_cache_fetched_keys_total Keys looked up in the cache.
# TYPE strata_cache_fetched_keys_total counter
strata_cache_fetched_keys_total 3
# HELP strata_cache_hits_total Keys looked up in the cache and found.
# TYPE strata_cache_hits_total counter
strata_cache_hits_total 1
`), "strata_cache_fetched_keys_total", "strata_cache_hits_total"))
}

func keysOf(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
