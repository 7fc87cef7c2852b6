package tlsconfig_test

import (
	"context"
	"crypto/tls"
	"flag"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tlsconfig"
	"github.com/strata-metrics/strata/pkg/tlsconfig/tlstest"
)

func newServerConfig(t *testing.T, args ...string) *tlsconfig.ServerConfig {
	t.Helper()
	var common tlsconfig.Common
	var c tlsconfig.ServerConfig
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	tlsconfig.RegisterServerCommonFlags(&common, f)
	c.RegisterFlagsWithPrefix("server.http-", "HTTP", &common, f)
	require.NoError(t, f.Parse(args))
	return &c
}

func newClientConfig(t *testing.T, args ...string) *tlsconfig.ClientConfig {
	t.Helper()
	var c tlsconfig.ClientConfig
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlagsWithPrefix("ingester.client.", "ingester", f)
	require.NoError(t, f.Parse(args))
	return &c
}

// serve accepts TLS connections with cfg and completes their handshakes until the listener closes.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = conn.(*tls.Conn).Handshake()
				_, _ = conn.Write([]byte("x")) // lets TLS 1.3 clients see a refused certificate
				_ = conn.Close()
			}()
		}
	}()
	return l.Addr().String()
}

// handshake dials addr with cfg and returns the server certificate's serial number, or the error.
func handshake(addr string, cfg *tls.Config) (string, error) {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		return "", err
	}
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func TestServerAndClient_MutualTLSWithRotation(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	serverCert, serverKey := ca.Issue(t, "server", "strata")
	clientCert, clientKey := ca.Issue(t, "client", "team-a")

	serverTLS, err := newServerConfig(t, "-server.http-tls-cert-path="+serverCert, "-server.http-tls-key-path="+serverKey,
		"-server.http-tls-ca-path="+ca.CertPath).TLSConfig()
	require.NoError(t, err)
	addr := serve(t, serverTLS)

	clientTLS, err := clientFor(newClientConfig(t, "-ingester.client.tls-enabled", "-ingester.client.tls-ca-path="+ca.CertPath,
		"-ingester.client.tls-cert-path="+clientCert, "-ingester.client.tls-key-path="+clientKey))
	require.NoError(t, err)
	first, err := handshake(addr, clientTLS)
	require.NoError(t, err)
	require.Equal(t, tlstest.Serial(t, serverCert).String(), first)

	// A client without a certificate is refused: a CA path means client certificates are required.
	noCert, err := clientFor(newClientConfig(t, "-ingester.client.tls-enabled", "-ingester.client.tls-ca-path="+ca.CertPath))
	require.NoError(t, err)
	_, err = handshake(addr, noCert)
	require.Error(t, err)

	// The server's certificate is replaced on disk: the next handshake presents the new one.
	ca.Issue(t, "server", "strata")
	rotated, err := handshake(addr, clientTLS)
	require.NoError(t, err)
	require.Equal(t, tlstest.Serial(t, serverCert).String(), rotated)
	require.NotEqual(t, first, rotated)

	// A half-written replacement keeps the last good certificate.
	require.NoError(t, writeFile(serverCert, "not a certificate"))
	kept, err := handshake(addr, clientTLS)
	require.NoError(t, err)
	require.Equal(t, rotated, kept)
}

func TestClient_RefusesServerOfAnotherCA_AndFollowsCARotation(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	other := tlstest.NewCA(t, dir, "other")
	serverCert, serverKey := other.Issue(t, "server", "strata")
	serverTLS, err := newServerConfig(t, "-server.http-tls-cert-path="+serverCert, "-server.http-tls-key-path="+serverKey).TLSConfig()
	require.NoError(t, err)
	addr := serve(t, serverTLS)

	clientTLS, err := clientFor(newClientConfig(t, "-ingester.client.tls-enabled", "-ingester.client.tls-ca-path="+ca.CertPath))
	require.NoError(t, err)
	_, err = handshake(addr, clientTLS)
	require.ErrorContains(t, err, "certificate signed by unknown authority")

	// The client's CA bundle now holds the other CA: the same client config trusts the server.
	raw, err := readFile(other.CertPath)
	require.NoError(t, err)
	require.NoError(t, writeFile(ca.CertPath, raw))
	_, err = handshake(addr, clientTLS)
	require.NoError(t, err)

	// Host names are still checked: the certificate is for localhost and 127.0.0.1 only.
	wrongName, err := clientFor(newClientConfig(t, "-ingester.client.tls-enabled", "-ingester.client.tls-ca-path="+ca.CertPath,
		"-ingester.client.tls-server-name=ingester.example"))
	require.NoError(t, err)
	_, err = handshake(addr, wrongName)
	require.ErrorContains(t, err, "ingester.example")
}

func TestClient_ConfigWithoutAHostRefusesToCheckNoName(t *testing.T) {
	// A configuration made without a host, dialling an IP address, has no server name in its connection
	// state (as an http.Transport's TLSClientConfig would): the certificate's chain alone must not do.
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	serverCert, serverKey := ca.Issue(t, "server", "strata")
	serverTLS, err := newServerConfig(t, "-server.http-tls-cert-path="+serverCert, "-server.http-tls-key-path="+serverKey).TLSConfig()
	require.NoError(t, err)
	addr := serve(t, serverTLS)
	c := newClientConfig(t, "-ingester.client.tls-enabled", "-ingester.client.tls-ca-path="+ca.CertPath)
	cl, err := c.NewClient()
	require.NoError(t, err)
	_, err = handshake(addr, cl.Config(""))
	require.ErrorContains(t, err, "no server name")

	conn, err := cl.DialTLSContext(context.Background(), "tcp", addr)
	require.NoError(t, err, "DialTLSContext checks the IP address dialled")
	_ = conn.Close()
	_, err = handshake(addr, cl.Config("10.1.2.3"))
	require.ErrorContains(t, err, "10.1.2.3", "the certificate is for 127.0.0.1 and localhost only")
}

func TestServer_MinVersionAndPlainText(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	serverCert, serverKey := ca.Issue(t, "server", "strata")
	serverTLS, err := newServerConfig(t, "-server.http-tls-cert-path="+serverCert, "-server.http-tls-key-path="+serverKey,
		"-server.tls-min-version=VersionTLS13").TLSConfig()
	require.NoError(t, err)
	addr := serve(t, serverTLS)

	clientTLS, err := clientFor(newClientConfig(t, "-ingester.client.tls-enabled", "-ingester.client.tls-ca-path="+ca.CertPath))
	require.NoError(t, err)
	clientTLS.MaxVersion = tls.VersionTLS12
	_, err = handshake(addr, clientTLS)
	require.ErrorContains(t, err, "protocol version")

	// Plain text gets no answer but a TLS alert: the connection is closed without serving anything.
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	require.NotContains(t, string(buf[:n]), "HTTP/1.1 200")
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-server.http-tls-cert-path=a"}, "go together"},
		{[]string{"-server.http-tls-ca-path=a"}, "need -server.http-tls-cert-path"},
		{[]string{"-server.http-tls-cert-path=a", "-server.http-tls-key-path=b", "-server.http-tls-client-auth=Maybe"}, "not one of"},
		{[]string{"-server.http-tls-cert-path=a", "-server.http-tls-key-path=b", "-server.http-tls-client-auth=RequireAndVerifyClientCert"}, "needs -server.http-tls-ca-path"},
	} {
		require.ErrorContains(t, newServerConfig(t, tc.args...).Validate(), tc.err, tc.args)
	}
	require.ErrorContains(t, newClientConfig(t, "-ingester.client.tls-ca-path=a").Validate(), "-ingester.client.tls-enabled is false")
	require.ErrorContains(t, newClientConfig(t, "-ingester.client.tls-enabled", "-ingester.client.tls-key-path=a").Validate(), "go together")

	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, "server", "strata")
	_, err := newServerConfig(t, "-server.http-tls-cert-path="+cert, "-server.http-tls-key-path="+key, "-server.tls-cipher-suites=TLS_RSA_WITH_RC4_128_SHA").TLSConfig()
	require.ErrorContains(t, err, "not a secure cipher suite")
	_, err = newServerConfig(t, "-server.http-tls-cert-path="+cert, "-server.http-tls-key-path="+dir+"/missing.key").TLSConfig()
	require.ErrorContains(t, err, "missing.key")
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

func readFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	return string(raw), err
}

// clientFor is c's configuration for a connection to 127.0.0.1, as the servers here listen on.
func clientFor(c *tlsconfig.ClientConfig) (*tls.Config, error) {
	cl, err := c.NewClient()
	if err != nil {
		return nil, err
	}
	return cl.Config("127.0.0.1"), nil
}
