package compactor

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfig_FlagsAndDefaults(t *testing.T) {
	var cfg Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(f)
	require.Equal(t, DurationList{2 * time.Hour, 12 * time.Hour, 24 * time.Hour}, cfg.BlockRanges)
	require.Equal(t, time.Hour, cfg.CompactionInterval)
	require.Equal(t, 12*time.Hour, cfg.DeletionDelay)
	require.Equal(t, 15*time.Minute, cfg.CleanupInterval)
	require.NoError(t, cfg.Validate())

	require.NoError(t, f.Parse([]string{"-compactor.block-ranges=1h, 4h"}))
	require.Equal(t, DurationList{time.Hour, 4 * time.Hour}, cfg.BlockRanges)
	require.Equal(t, "1h0m0s,4h0m0s", cfg.BlockRanges.String())
	require.Error(t, f.Parse([]string{"-compactor.block-ranges=2h,soon"}))
}

func TestConfig_ValidateRejectsBadValues(t *testing.T) {
	tests := map[string]func(*Config){
		"no ranges":                  func(c *Config) { c.BlockRanges = nil },
		"range not increasing":       func(c *Config) { c.BlockRanges = DurationList{2 * time.Hour, 2 * time.Hour} },
		"range not a multiple":       func(c *Config) { c.BlockRanges = DurationList{2 * time.Hour, 5 * time.Hour} },
		"range too small":            func(c *Config) { c.BlockRanges = DurationList{time.Second} },
		"zero compaction interval":   func(c *Config) { c.CompactionInterval = 0 },
		"zero cleanup interval":      func(c *Config) { c.CleanupInterval = 0 },
		"negative deletion delay":    func(c *Config) { c.DeletionDelay = -time.Second },
		"negative consistency delay": func(c *Config) { c.ConsistencyDelay = -time.Second },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			mutate(&cfg)
			require.Error(t, cfg.Validate())
		})
	}
}

func TestNew_RequiresDataDirAndBucket(t *testing.T) {
	cfg := testConfig(t)
	cfg.DataDir = ""
	_, err := New(cfg, nil, nil, nil, "c", nil, nil)
	require.ErrorContains(t, err, "-compactor.data-dir")
	_, err = New(testConfig(t), nil, nil, nil, "c", nil, nil)
	require.ErrorContains(t, err, "bucket")
}
