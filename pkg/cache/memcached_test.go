package cache

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/cache/cachetest"
)

func newTestMemcached(t *testing.T, addr string, maxItemSize int) *Memcached {
	t.Helper()
	c, err := NewMemcached(MemcachedConfig{Addresses: addr, Timeout: time.Second, MaxItemSize: maxItemSize, MaxIdleConnections: 4},
		prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestMemcached_StoresAndFetches(t *testing.T) {
	server := cachetest.StartMemcached(t)
	c := newTestMemcached(t, server.Addr, 1<<20)
	ctx := context.Background()
	// Keys memcached cannot hold as they are: too long, with a space, with a control character.
	long, spaced, control := strings.Repeat("k", 300), "tenant a:query sum(x)", "a\nb"
	c.Store(ctx, map[string][]byte{"plain": []byte("1"), long: []byte("2"), spaced: []byte("3"), control: []byte("4")}, time.Hour)

	found := c.Fetch(ctx, []string{"plain", long, spaced, control, "missing"})
	require.Equal(t, map[string][]byte{"plain": []byte("1"), long: []byte("2"), spaced: []byte("3"), control: []byte("4")}, found)
	require.Equal(t, 0.0, testutil.ToFloat64(c.errors.WithLabelValues("fetch")))
	require.Equal(t, 0.0, testutil.ToFloat64(c.errors.WithLabelValues("store")))
}

func TestMemcached_SkipsItemsLargerThanMaxItemSize(t *testing.T) {
	server := cachetest.StartMemcached(t)
	c := newTestMemcached(t, server.Addr, 100)
	ctx := context.Background()
	c.Store(ctx, map[string][]byte{"fits": value(100, 'f'), "large": value(101, 'l')}, time.Hour)

	require.ElementsMatch(t, []string{"fits"}, keysOf(c.Fetch(ctx, []string{"fits", "large"})))
	require.Equal(t, 1.0, testutil.ToFloat64(c.skipped))
}

func TestMemcached_ServerDownIsAMissNotAFailure(t *testing.T) {
	server := cachetest.StartMemcached(t)
	c := newTestMemcached(t, server.Addr, 1<<20)
	ctx := context.Background()
	c.Store(ctx, map[string][]byte{"a": []byte("1")}, time.Hour)
	require.Len(t, c.Fetch(ctx, []string{"a"}), 1)

	server.Stop(t)

	require.Empty(t, c.Fetch(ctx, []string{"a", "b"}))
	c.Store(ctx, map[string][]byte{"a": []byte("2"), "b": []byte("3")}, time.Hour)
	require.Equal(t, 1.0, testutil.ToFloat64(c.errors.WithLabelValues("fetch")))
	require.Equal(t, 1.0, testutil.ToFloat64(c.errors.WithLabelValues("store")), "a store stops at its first failure")
}

func TestMemcached_ExpirationFollowsMemcachedRules(t *testing.T) {
	c := &Memcached{now: func() time.Time { return time.Unix(1_700_000_000, 0) }}
	for _, tc := range []struct {
		ttl  time.Duration
		want int32
	}{
		{0, 0},
		{-time.Second, 0},
		{time.Millisecond, 1}, // not 0, which memcached reads as "never"
		{7 * 24 * time.Hour, 7 * 24 * 3600},
		{30 * 24 * time.Hour, 30 * 24 * 3600},
		{31 * 24 * time.Hour, 1_700_000_000 + 31*24*3600}, // past 30 days memcached wants a Unix time
	} {
		require.Equal(t, tc.want, c.expiration(tc.ttl), "ttl %s", tc.ttl)
	}
}

func TestMemcachedKey_HashesOnlyKeysMemcachedCannotHold(t *testing.T) {
	require.Equal(t, "abc:def", memcachedKey("abc:def"))
	require.Equal(t, strings.Repeat("k", 250), memcachedKey(strings.Repeat("k", 250)))
	for _, bad := range []string{strings.Repeat("k", 251), "a b", "a\x00", "a\x7f"} {
		k := memcachedKey(bad)
		require.Len(t, k, 64)
		require.Equal(t, k, memcachedKey(bad), "the same key must map to the same server key")
	}
	require.NotEqual(t, memcachedKey("a b"), memcachedKey("a  b"))
}

func TestNewMemcached_RefusesUnresolvableAddress(t *testing.T) {
	_, err := NewMemcached(MemcachedConfig{Addresses: "no-port-here", Timeout: time.Second, MaxItemSize: 1}, nil, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "no-port-here")
}
