package cache

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func registerTestFlags(cfg *Config, prefix string, args ...string) error {
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlagsWithPrefix(prefix, f)
	return f.Parse(args)
}

func TestConfig_FlagsUnderPrefixWithDefaults(t *testing.T) {
	var cfg Config
	require.NoError(t, registerTestFlags(&cfg, "query-frontend.results-cache.",
		"-query-frontend.results-cache.backend=memcached",
		"-query-frontend.results-cache.memcached.addresses=127.0.0.1:11211, 127.0.0.1:11212",
		"-query-frontend.results-cache.memcached.timeout=1s",
	))
	require.Equal(t, BackendMemcached, cfg.Backend)
	require.Equal(t, []string{"127.0.0.1:11211", "127.0.0.1:11212"}, cfg.Memcached.addresses())
	require.Equal(t, time.Second, cfg.Memcached.Timeout)
	require.Equal(t, 1<<20, cfg.Memcached.MaxItemSize)
	require.Equal(t, 100, cfg.Memcached.MaxIdleConnections)
	require.Equal(t, 128<<20, cfg.InMemory.MaxSizeBytes)
	require.NoError(t, cfg.Validate())

	var defaults Config
	require.NoError(t, registerTestFlags(&defaults, "query-frontend.results-cache."))
	require.Equal(t, BackendInMemory, defaults.Backend, "the default needs no other service")
	require.NoError(t, defaults.Validate())
}

func TestConfig_ValidateNamesTheFlagToChange(t *testing.T) {
	for name, tc := range map[string]struct {
		args    []string
		wantErr string
	}{
		"unknown backend":       {[]string{"-c.backend=redis"}, `unknown cache backend "redis" (-c.backend)`},
		"in-memory size zero":   {[]string{"-c.inmemory.max-size-bytes=0"}, "-c.inmemory.max-size-bytes"},
		"memcached no servers":  {[]string{"-c.backend=memcached", "-c.memcached.addresses= , "}, "-c.memcached.addresses"},
		"memcached timeout 0":   {[]string{"-c.backend=memcached", "-c.memcached.addresses=a:1", "-c.memcached.timeout=0"}, "-c.memcached.timeout"},
		"memcached item size 0": {[]string{"-c.backend=memcached", "-c.memcached.addresses=a:1", "-c.memcached.max-item-size=0"}, "-c.memcached.max-item-size"},
		"memcached idle < 0":    {[]string{"-c.backend=memcached", "-c.memcached.addresses=a:1", "-c.memcached.max-idle-connections=-1"}, "-c.memcached.max-idle-connections"},
	} {
		t.Run(name, func(t *testing.T) {
			var cfg Config
			require.NoError(t, registerTestFlags(&cfg, "c.", tc.args...))
			require.ErrorContains(t, cfg.Validate(), tc.wantErr)
			_, err := New(cfg, nil, nil)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
