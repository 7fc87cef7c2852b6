package alertmanager

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfig_DefaultsAreValid(t *testing.T) {
	var cfg Config
	cfg.RegisterFlags(newFlagSet())
	require.NoError(t, cfg.Validate())
	require.Equal(t, 15*time.Second, cfg.PollInterval)
	require.Equal(t, 15*time.Minute, cfg.PersistInterval)
	require.Equal(t, 3, cfg.ReplicationFactor)
	require.Equal(t, 15*time.Second, cfg.PeerTimeout)
	u, err := parseExternalURL(cfg.ExternalURL)
	require.NoError(t, err)
	require.Equal(t, "/alertmanager", u.Path)
}

func TestConfig_Validate(t *testing.T) {
	for name, tc := range map[string]struct {
		mod    func(*Config)
		errHas string
	}{
		"poll interval":    {func(c *Config) { c.PollInterval = 0 }, "-alertmanager.configs.poll-interval"},
		"persist interval": {func(c *Config) { c.PersistInterval = -time.Second }, "-alertmanager.persist-interval"},
		"retention":        {func(c *Config) { c.Retention = 0 }, "-alertmanager.storage.retention"},
		"relative url":     {func(c *Config) { c.ExternalURL = "/alertmanager" }, "absolute http or https URL"},
		"other scheme":     {func(c *Config) { c.ExternalURL = "ftp://host/am" }, "absolute http or https URL"},
		"bad url":          {func(c *Config) { c.ExternalURL = "http://[::1" }, "-alertmanager.web.external-url"},
		"no replica":       {func(c *Config) { c.ReplicationFactor = 0 }, "-alertmanager.sharding-ring.replication-factor"},
		"peer timeout":     {func(c *Config) { c.PeerTimeout = 0 }, "-alertmanager.peer-timeout"},
		"ring check":       {func(c *Config) { c.RingCheckPeriod = 0 }, "-alertmanager.sharding-ring.check-period"},
	} {
		t.Run(name, func(t *testing.T) {
			var cfg Config
			cfg.RegisterFlags(newFlagSet())
			tc.mod(&cfg)
			require.ErrorContains(t, cfg.Validate(), tc.errHas)
		})
	}
}

func TestParseExternalURL_TrimsTrailingSlash(t *testing.T) {
	u, err := parseExternalURL("https://am.example.com/alertmanager/")
	require.NoError(t, err)
	require.Equal(t, "https://am.example.com/alertmanager", u.String())
}

func TestNew_RequiresDataDirAndStore(t *testing.T) {
	var cfg Config
	cfg.RegisterFlags(newFlagSet())
	_, err := New(cfg, nil, nil, prometheusRegistry(), discardLogger())
	require.ErrorContains(t, err, "-alertmanager.storage.path is not set")
	cfg.DataDir = t.TempDir()
	_, err = New(cfg, nil, nil, prometheusRegistry(), discardLogger())
	require.ErrorContains(t, err, "no configuration store")
}
