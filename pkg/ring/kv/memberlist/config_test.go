package memberlist

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfig_FlagDefaults(t *testing.T) {
	var cfg Config
	f := flag.NewFlagSet("test", flag.PanicOnError)
	cfg.RegisterFlags(f)
	require.NoError(t, cfg.Validate())
	require.Equal(t, 7946, cfg.BindPort)
	require.Equal(t, 200*time.Millisecond, cfg.GossipInterval)
	require.Equal(t, 3, cfg.GossipNodes)
	require.Equal(t, 30*time.Second, cfg.PushPullInterval)
	require.Equal(t, 5*time.Minute, cfg.LeftIngestersTimeout)
	require.True(t, cfg.RandomizeNodeName)
	require.False(t, cfg.AbortIfJoinFails)
	require.Empty(t, cfg.Join)

	require.NoError(t, f.Parse([]string{"-memberlist.join", " a:1, b.example:7946 ,", "-memberlist.bind-port", "0"}))
	require.Equal(t, AddressList{"a:1", "b.example:7946"}, cfg.Join)
	require.Equal(t, "a:1,b.example:7946", cfg.Join.String())
	require.NoError(t, f.Set("memberlist.join", "c:2"))
	require.Equal(t, AddressList{"c:2"}, cfg.Join, "setting again replaces the list")
}

func TestConfig_Validate(t *testing.T) {
	tests := map[string]struct {
		mutate  func(*Config)
		wantErr string
	}{
		"defaults":                {mutate: func(*Config) {}},
		"join with IPv6":          {mutate: func(c *Config) { c.Join = AddressList{"[::1]:7946"} }},
		"join without port":       {mutate: func(c *Config) { c.Join = AddressList{"host"} }, wantErr: "-memberlist.join"},
		"join with bad port":      {mutate: func(c *Config) { c.Join = AddressList{"host:http"} }, wantErr: "no valid port"},
		"join without host":       {mutate: func(c *Config) { c.Join = AddressList{":7946"} }, wantErr: "has no host"},
		"bind addr not IP":        {mutate: func(c *Config) { c.BindAddr = "localhost" }, wantErr: "-memberlist.bind-addr"},
		"advertise addr not IP":   {mutate: func(c *Config) { c.AdvertiseAddr = "x" }, wantErr: "-memberlist.advertise-addr"},
		"bind port too large":     {mutate: func(c *Config) { c.BindPort = 70000 }, wantErr: "-memberlist.bind-port"},
		"advertise port negative": {mutate: func(c *Config) { c.AdvertisePort = -1 }, wantErr: "-memberlist.advertise-port"},
		"zero gossip interval":    {mutate: func(c *Config) { c.GossipInterval = 0 }, wantErr: "-memberlist.gossip-interval"},
		"zero gossip nodes":       {mutate: func(c *Config) { c.GossipNodes = 0 }, wantErr: "-memberlist.gossip-nodes"},
		"negative push-pull":      {mutate: func(c *Config) { c.PushPullInterval = -time.Second }, wantErr: "-memberlist.pullpush-interval"},
		"zero retransmit factor":  {mutate: func(c *Config) { c.RetransmitFactor = 0 }, wantErr: "-memberlist.retransmit-factor"},
		"zero min join backoff":   {mutate: func(c *Config) { c.MinJoinBackoff = 0 }, wantErr: "-memberlist.min-join-backoff"},
		"max below min backoff":   {mutate: func(c *Config) { c.MaxJoinBackoff = time.Millisecond }, wantErr: "-memberlist.max-join-backoff"},
		"negative join retries":   {mutate: func(c *Config) { c.MaxJoinRetries = -1 }, wantErr: "-memberlist.max-join-retries"},
		"zero left timeout":       {mutate: func(c *Config) { c.LeftIngestersTimeout = 0 }, wantErr: "-memberlist.left-ingesters-timeout"},
		"negative leave timeout":  {mutate: func(c *Config) { c.LeaveTimeout = -1 }, wantErr: "-memberlist.leave-timeout"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var cfg Config
			cfg.RegisterFlags(flag.NewFlagSet("test", flag.PanicOnError))
			tc.mutate(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
