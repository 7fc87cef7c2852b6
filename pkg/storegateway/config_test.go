package storegateway

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfig_DefaultsAndValidation(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	require.Equal(t, Config{
		SyncInterval:            15 * time.Minute,
		IndexCacheMaxSizeBytes:  1 << 30,
		ChunksCacheMaxSizeBytes: 0,
		ReplicationFactor:       3,
	}, cfg)
	require.NoError(t, cfg.Validate())

	for name, tc := range map[string]struct {
		mutate func(*Config)
		flag   string
	}{
		"sync interval": {func(c *Config) { c.SyncInterval = 0 }, "-blocks-storage.bucket-store.sync-interval"},
		"index cache":   {func(c *Config) { c.IndexCacheMaxSizeBytes = -1 }, "-blocks-storage.bucket-store.index-cache.max-size-bytes"},
		"chunks cache":  {func(c *Config) { c.ChunksCacheMaxSizeBytes = -1 }, "-blocks-storage.bucket-store.chunks-cache.max-size-bytes"},
		"replication":   {func(c *Config) { c.ReplicationFactor = 0 }, "-store-gateway.sharding-ring.replication-factor"},
	} {
		t.Run(name, func(t *testing.T) {
			bad := cfg
			tc.mutate(&bad)
			require.ErrorContains(t, bad.Validate(), tc.flag)
		})
	}
}
