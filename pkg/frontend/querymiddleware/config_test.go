package querymiddleware

import (
	"flag"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/cache"
)

func TestConfig_Defaults(t *testing.T) {
	cfg := testConfig(t)
	require.Equal(t, 24*time.Hour, cfg.SplitQueriesByInterval)
	require.True(t, cfg.CacheResults)
	require.Equal(t, cache.BackendInMemory, cfg.ResultsCache.Backend)
	require.Equal(t, 128<<20, cfg.ResultsCache.InMemory.MaxSizeBytes)
	require.Equal(t, 7*24*time.Hour, cfg.ResultsCacheTTL)
	require.NoError(t, cfg.Validate())

	f := flag.NewFlagSet("test", flag.ContinueOnError)
	(&Config{}).RegisterFlags(f)
	for _, name := range []string{
		"query-frontend.split-queries-by-interval", "query-frontend.cache-results", "query-frontend.results-cache-ttl",
		"query-frontend.results-cache.backend", "query-frontend.results-cache.inmemory.max-size-bytes",
		"query-frontend.results-cache.memcached.addresses", "query-frontend.results-cache.memcached.timeout",
		"query-frontend.results-cache.memcached.max-item-size", "query-frontend.results-cache.memcached.max-idle-connections",
	} {
		require.NotNil(t, f.Lookup(name), name)
	}
}

func TestConfig_ValidateNamesTheFlagToChange(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-query-frontend.split-queries-by-interval=-1h"}, "-query-frontend.split-queries-by-interval"},
		{[]string{"-query-frontend.split-queries-by-interval=1500us"}, "-query-frontend.split-queries-by-interval"},
		{[]string{"-query-frontend.split-queries-by-interval=0"}, "-query-frontend.cache-results needs -query-frontend.split-queries-by-interval > 0"},
		{[]string{"-query-frontend.results-cache-ttl=0"}, "-query-frontend.results-cache-ttl"},
		{[]string{"-query-frontend.results-cache.backend=memcached"}, "-query-frontend.results-cache.memcached.addresses"},
	} {
		cfg := testConfig(t, tc.args...)
		require.ErrorContains(t, cfg.Validate(), tc.wantErr, tc.args)
		_, err := New(cfg, testLimits(nil), nil, nil, slog.New(slog.DiscardHandler))
		require.ErrorContains(t, err, tc.wantErr, tc.args)
	}
	// Without caching, neither the interval's nor the cache's settings matter.
	cfg := testConfig(t, "-query-frontend.split-queries-by-interval=0", "-query-frontend.cache-results=false", "-query-frontend.results-cache.backend=memcached")
	require.NoError(t, cfg.Validate())
}

func TestNew_WithNeitherSplitNorCachePassesEverythingThrough(t *testing.T) {
	handler := querierHandler(t)
	d := &downstream{handler: handler}
	rt, _ := newTestMiddleware(t, testConfig(t, "-query-frontend.split-queries-by-interval=0", "-query-frontend.cache-results=false"), testLimits(nil), d, dataEnd)
	req := rangeRequest(t, `rate(http_requests_total[5m])`, dataStart, dataEnd, "1m")
	requireSameAnswer(t, directAnswer(t, handler, req), roundTrip(t, rt, req), "unsplit")
	require.Len(t, d.takeRequests(), 1)
}
