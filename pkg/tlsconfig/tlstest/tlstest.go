// Package tlstest makes certificate authorities and certificates for tests: servers on 127.0.0.1 and
// clients named by their common name.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// CA is a certificate authority whose certificate is written to CertPath.
type CA struct {
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	CertPath string
	dir      string
}

// NewCA makes a CA named name in dir.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	ca := &CA{cert: cert, key: key, dir: dir, CertPath: filepath.Join(dir, name+".crt")}
	writePEM(t, ca.CertPath, "CERTIFICATE", der)
	return ca
}

// Issue writes a certificate for commonName, valid for servers on localhost, 127.0.0.1 and dnsNames and
// for clients, and its key, as <file>.crt and <file>.key in the CA's directory; it returns both paths.
func (ca *CA) Issue(t testing.TB, file, commonName string, dnsNames ...string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: commonName},
		DNSNames:     append([]string{"localhost"}, dnsNames...),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certPath, keyPath = filepath.Join(ca.dir, file+".crt"), filepath.Join(ca.dir, file+".key")
	// The key first: a reader that sees the new certificate must find its key.
	writePEM(t, keyPath, "PRIVATE KEY", keyDER)
	writePEM(t, certPath, "CERTIFICATE", der)
	return certPath, keyPath
}

// Serial returns the serial number of the certificate in path, to tell which one a peer presented.
func Serial(t testing.TB, path string) *big.Int {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(raw)
	require.NotNil(t, block, path)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert.SerialNumber
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	require.NoError(t, err)
	return n
}

// writePEM replaces path atomically, as a Secret update does, so a reader never sees half a file.
func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// Pool is a pool holding the CA's certificate, for clients that trust it.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// StartServer starts an HTTPS server for h on 127.0.0.1 that presents the certificate in certPath and
// keyPath and requires client certificates of clientCA; it is closed when the test ends. Refused
// handshakes, which such tests cause on purpose, are not logged.
func StartServer(t testing.TB, h http.Handler, certPath, keyPath string, clientCA *CA) *httptest.Server {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: clientCA.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}
