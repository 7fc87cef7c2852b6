package etcd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/strata-metrics/strata/pkg/ring/kv/kvtest"
)

// certFiles is a certificate and its key written as PEM files.
type certFiles struct{ cert, key string }

// testPKI writes a CA, a server certificate for 127.0.0.1 and name "etcd.test", and a client certificate,
// all into dir.
func testPKI(t *testing.T, dir string) (caPath string, server, client certFiles) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	caPath = filepath.Join(dir, "ca.pem")
	writePEM(t, caPath, "CERTIFICATE", caDER)

	issue := func(name string, serial int64, usage x509.ExtKeyUsage) certFiles {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"etcd.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		files := certFiles{cert: filepath.Join(dir, name+".pem"), key: filepath.Join(dir, name+"-key.pem")}
		writePEM(t, files.cert, "CERTIFICATE", der)
		writePEM(t, files.key, "EC PRIVATE KEY", keyDER)
		return files
	}
	return caPath, issue("server", 2, x509.ExtKeyUsageServerAuth), issue("client", 3, x509.ExtKeyUsageClientAuth)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
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
