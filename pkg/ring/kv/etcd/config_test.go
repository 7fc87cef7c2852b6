package etcd

import (
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv/kvtest"
)

func TestConfig_FlagsHaveThePrefixAndDefaults(t *testing.T) {
	var cfg Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlagsWithPrefix("ingester.ring.", f)

	require.Empty(t, cfg.Endpoints)
	require.Equal(t, 10*time.Second, cfg.DialTimeout)
	require.Equal(t, 10, cfg.MaxRetries)
	require.False(t, cfg.TLSEnabled)

	require.NoError(t, f.Parse([]string{
		"-ingester.ring.etcd.endpoints=http://a:2379, http://b:2379",
		"-ingester.ring.etcd.dial-timeout=3s",
		"-ingester.ring.etcd.max-retries=5",
		"-ingester.ring.etcd.tls-enabled",
		"-ingester.ring.etcd.tls-cert-path=c.pem",
		"-ingester.ring.etcd.tls-key-path=k.pem",
		"-ingester.ring.etcd.tls-ca-path=ca.pem",
		"-ingester.ring.etcd.tls-server-name=etcd.local",
		"-ingester.ring.etcd.tls-insecure-skip-verify",
		"-ingester.ring.etcd.username=strata",
		"-ingester.ring.etcd.password=s3cret",
	}))
	require.Equal(t, Config{
		Endpoints: []string{"http://a:2379", "http://b:2379"}, DialTimeout: 3 * time.Second, MaxRetries: 5,
		TLSEnabled: true, TLSCertPath: "c.pem", TLSKeyPath: "k.pem", TLSCAPath: "ca.pem",
		TLSServerName: "etcd.local", TLSInsecureSkipVerify: true,
		Username: "strata", Password: cfg.Password, flagPrefix: "ingester.ring.",
	}, cfg)
	require.Equal(t, "s3cret", cfg.Password.Value)
	require.Equal(t, "http://a:2379,http://b:2379", f.Lookup("ingester.ring.etcd.endpoints").Value.String())

	// /config masks flags whose value says it is a secret.
	secret, ok := f.Lookup("ingester.ring.etcd.password").Value.(interface{ IsSecret() bool })
	require.True(t, ok, "the password flag must be a flagext.Secret")
	require.True(t, secret.IsSecret())
}

func TestConfig_Validate(t *testing.T) {
	valid := func() Config {
		var cfg Config
		cfg.RegisterFlagsWithPrefix("ingester.ring.", flag.NewFlagSet("test", flag.ContinueOnError))
		cfg.Endpoints = []string{"https://127.0.0.1:2379", "127.0.0.1:2380"}
		return cfg
	}
	tests := map[string]struct {
		modify  func(*Config)
		wantErr string
	}{
		"defaults with an endpoint": {modify: func(*Config) {}},
		"TLS with client certificate": {modify: func(c *Config) {
			c.TLSEnabled, c.TLSCertPath, c.TLSKeyPath, c.TLSCAPath = true, "c.pem", "k.pem", "ca.pem"
		}},
		"user without password":   {modify: func(c *Config) { c.Username = "strata" }},
		"TLS with plain endpoint": {modify: func(c *Config) { c.TLSEnabled, c.Endpoints = true, []string{"http://a:2379"} }, wantErr: "use https://"},
		"no endpoints":            {modify: func(c *Config) { c.Endpoints = nil }, wantErr: "-ingester.ring.etcd.endpoints"},
		"empty endpoint":          {modify: func(c *Config) { c.Endpoints = []string{"http://a:2379", ""} }, wantErr: "empty endpoint"},
		"zero dial timeout":       {modify: func(c *Config) { c.DialTimeout = 0 }, wantErr: "-ingester.ring.etcd.dial-timeout"},
		"zero retries":            {modify: func(c *Config) { c.MaxRetries = 0 }, wantErr: "-ingester.ring.etcd.max-retries"},
		"TLS options without TLS": {modify: func(c *Config) { c.TLSCAPath = "ca.pem" }, wantErr: "-ingester.ring.etcd.tls-enabled"},
		"certificate without key": {modify: func(c *Config) { c.TLSEnabled, c.TLSCertPath = true, "c.pem" }, wantErr: "-ingester.ring.etcd.tls-key-path"},
		"key without certificate": {modify: func(c *Config) { c.TLSEnabled, c.TLSKeyPath = true, "k.pem" }, wantErr: "-ingester.ring.etcd.tls-cert-path"},
		"password without user":   {modify: func(c *Config) { c.Password.Value = "pw" }, wantErr: "-ingester.ring.etcd.username"},
		"skip verify without TLS": {modify: func(c *Config) { c.TLSInsecureSkipVerify = true }, wantErr: "TLS is disabled"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := valid()
			tc.modify(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	_, err := New(Config{}, kvtest.CountersCodec{}, nil, logger)
	require.ErrorContains(t, err, "no endpoints")

	missing := filepath.Join(t.TempDir(), "missing.pem")
	cfg := Config{Endpoints: []string{"https://127.0.0.1:2379"}, DialTimeout: time.Second, MaxRetries: 1,
		TLSEnabled: true, TLSCAPath: missing}
	_, err = New(cfg, kvtest.CountersCodec{}, nil, logger)
	require.ErrorContains(t, err, "TLS configuration")

	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a certificate"), 0o600))
	cfg.TLSCAPath, cfg.TLSCertPath, cfg.TLSKeyPath = "", garbage, garbage
	_, err = New(cfg, kvtest.CountersCodec{}, nil, logger)
	require.ErrorContains(t, err, "TLS configuration")
}
