package etcd

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/strata-metrics/strata/pkg/ring/kv/kvtest"
	"github.com/strata-metrics/strata/pkg/tlsconfig/tlstest"
)

// certFiles is a certificate and its key written as PEM files.
type certFiles struct{ cert, key string }

// testPKI writes a CA, a server certificate for 127.0.0.1 and name "etcd.test", and a client certificate,
// all into dir.
func testPKI(t *testing.T, dir string) (caPath string, server, client certFiles) {
	t.Helper()
	ca := tlstest.NewCA(t, dir, "ca")
	server.cert, server.key = ca.Issue(t, "server", "server", "etcd.test")
	client.cert, client.key = ca.Issue(t, "client", "client")
	return ca.CertPath, server, client
}

func TestClient_TLS(t *testing.T) {
	t.Parallel()
	caPath, server, client := testPKI(t, t.TempDir())
	s := startEtcdWith(t, "https", func(cfg *embed.Config) {
		cfg.ClientTLSInfo = transport.TLSInfo{
			CertFile: server.cert, KeyFile: server.key, TrustedCAFile: caPath, ClientCertAuth: true,
		}
	})

	tests := map[string]struct {
		modify func(*Config)
		works  bool
	}{
		"client certificate and CA": {works: true, modify: func(c *Config) {}},
		"expected server name":      {works: true, modify: func(c *Config) { c.TLSServerName = "etcd.test" }},
		"wrong server name":         {modify: func(c *Config) { c.TLSServerName = "other.test" }},
		"server not trusted":        {modify: func(c *Config) { c.TLSCAPath = "" }},
		"no client certificate":     {modify: func(c *Config) { c.TLSCertPath, c.TLSKeyPath = "", "" }},
		"skip verify, with client certificate": {works: true, modify: func(c *Config) {
			c.TLSCAPath, c.TLSInsecureSkipVerify = "", true
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // the failing cases each wait for their timeout
			cfg := s.testConfig()
			cfg.TLSEnabled, cfg.TLSCAPath, cfg.TLSCertPath, cfg.TLSKeyPath = true, caPath, client.cert, client.key
			tc.modify(&cfg)
			c := newTestClient(t, cfg)
			// A failed handshake is retried by the etcd client until the context ends; keep that short.
			ctx, cancel := context.WithTimeout(testContext(t), 3*time.Second)
			defer cancel()
			err := c.CAS(ctx, "k", kvtest.Increment("n"))
			if tc.works {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}
