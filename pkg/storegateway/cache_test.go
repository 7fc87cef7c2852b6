package storegateway

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestLRUCache_EvictsLeastRecentlyUsedBeyondItsSize(t *testing.T) {
	m, err := newMetrics(nil)
	require.NoError(t, err)
	sizeOf := func(_ string, v []byte) int64 { return int64(len(v)) }
	// Room for three 100-byte values with their overhead.
	c := newLRUCache("test", 3*(100+entryOverheadBytes), sizeOf, m)

	c.Add("a", make([]byte, 100))
	c.Add("b", make([]byte, 100))
	c.Add("c", make([]byte, 100))
	_, ok := c.Get("a") // a is now the most recently used
	require.True(t, ok)
	c.Add("d", make([]byte, 100))

	_, ok = c.Get("b")
	require.False(t, ok, "b was the least recently used")
	for _, k := range []string{"a", "c", "d"} {
		_, ok := c.Get(k)
		require.True(t, ok, k)
	}
	require.Equal(t, 3, c.Len())
	require.Equal(t, 1.0, testutil.ToFloat64(m.cacheEvictions.WithLabelValues("test")))
	require.Equal(t, float64(3*(100+entryOverheadBytes)), testutil.ToFloat64(m.cacheSizeBytes.WithLabelValues("test")))

	// Replacing a value does not count it twice; a value larger than the cache is not stored.
	c.Add("a", make([]byte, 50))
	require.Equal(t, 3, c.Len())
	c.Add("huge", make([]byte, 1000))
	_, ok = c.Get("huge")
	require.False(t, ok)
	require.Equal(t, float64(2*(100+entryOverheadBytes)+50+entryOverheadBytes), testutil.ToFloat64(m.cacheSizeBytes.WithLabelValues("test")))
}

func TestLRUCache_ZeroSizeDisables(t *testing.T) {
	m, err := newMetrics(nil)
	require.NoError(t, err)
	c := newLRUCache("test", 0, func(string, int) int64 { return 0 }, m)
	c.Add("a", 1)
	_, ok := c.Get("a")
	require.False(t, ok)
}
