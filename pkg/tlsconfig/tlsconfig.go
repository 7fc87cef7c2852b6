// Package tlsconfig builds the TLS configurations of Strata's servers and clients from flags. Certificates,
// keys and CA bundles are read again when their files change, so rotating them needs no restart: a
// Kubernetes Secret or cert-manager updates the files, and the next handshake uses the new ones.
package tlsconfig

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// minVersions are the values of the -*.tls-min-version flags.
var minVersions = map[string]uint16{
	"VersionTLS12": tls.VersionTLS12,
	"VersionTLS13": tls.VersionTLS13,
}

// Common holds what servers and clients both choose: the lowest TLS version and the TLS 1.2 cipher suites.
type Common struct {
	MinVersion   string
	CipherSuites string
}

func (c *Common) registerFlags(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.MinVersion, prefix+"tls-min-version", "VersionTLS12", "Lowest TLS version accepted: VersionTLS12 or VersionTLS13.")
	f.StringVar(&c.CipherSuites, prefix+"tls-cipher-suites", "", "Comma-separated TLS 1.2 cipher suites, by their Go names (e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256); empty means Go's secure defaults. TLS 1.3 suites are not configurable.")
}

func (c *Common) apply(cfg *tls.Config, flagPrefix string) error {
	v, ok := minVersions[c.MinVersion]
	if !ok {
		return fmt.Errorf("-%stls-min-version: %q is not one of VersionTLS12, VersionTLS13", flagPrefix, c.MinVersion)
	}
	cfg.MinVersion = v
	if c.CipherSuites == "" {
		return nil
	}
	byName := map[string]uint16{}
	for _, s := range tls.CipherSuites() { // the secure ones only: InsecureCipherSuites are refused
		byName[s.Name] = s.ID
	}
	for _, name := range strings.Split(c.CipherSuites, ",") {
		id, ok := byName[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("-%stls-cipher-suites: %q is not a secure cipher suite Go knows", flagPrefix, strings.TrimSpace(name))
		}
		cfg.CipherSuites = append(cfg.CipherSuites, id)
	}
	return nil
}

// ClientAuth values of -server.*-tls-client-auth, as crypto/tls names them.
var clientAuthTypes = map[string]tls.ClientAuthType{
	"NoClientCert":               tls.NoClientCert,
	"RequestClientCert":          tls.RequestClientCert,
	"RequireAnyClientCert":       tls.RequireAnyClientCert,
	"VerifyClientCertIfGiven":    tls.VerifyClientCertIfGiven,
	"RequireAndVerifyClientCert": tls.RequireAndVerifyClientCert,
}

// ServerConfig is the TLS of one server (HTTP or gRPC). TLS is on when a certificate is given.
type ServerConfig struct {
	flagPrefix string
	CertPath   string
	KeyPath    string
	CAPath     string
	ClientAuth string
	Common     *Common
}

// RegisterFlagsWithPrefix registers -<prefix>tls-cert-path, -key-path, -ca-path and -client-auth, e.g.
// with prefix "server.http-". common is shared by the servers and registered by the caller.
func (c *ServerConfig) RegisterFlagsWithPrefix(prefix, server string, common *Common, f *flag.FlagSet) {
	c.flagPrefix, c.Common = prefix, common
	f.StringVar(&c.CertPath, prefix+"tls-cert-path", "", "Certificate (PEM, with its chain) the "+server+" server presents; set with the key to serve TLS only. Re-read when the file changes.")
	f.StringVar(&c.KeyPath, prefix+"tls-key-path", "", "Private key (PEM) of the "+server+" server's certificate.")
	f.StringVar(&c.CAPath, prefix+"tls-ca-path", "", "CA bundle (PEM) that client certificates of the "+server+" server must chain to.")
	f.StringVar(&c.ClientAuth, prefix+"tls-client-auth", "", "Client certificates the "+server+" server asks for: NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert. Empty means RequireAndVerifyClientCert when a CA is given, else NoClientCert.")
}

// RegisterServerCommonFlags registers -server.tls-min-version and -server.tls-cipher-suites.
func RegisterServerCommonFlags(common *Common, f *flag.FlagSet) { common.registerFlags("server.", f) }

// Enabled reports whether the server serves TLS.
func (c *ServerConfig) Enabled() bool { return c.CertPath != "" || c.KeyPath != "" }

// ClientAuthType is the client-certificate policy in force.
func (c *ServerConfig) ClientAuthType() tls.ClientAuthType {
	if c.ClientAuth == "" {
		if c.CAPath != "" {
			return tls.RequireAndVerifyClientCert
		}
		return tls.NoClientCert
	}
	return clientAuthTypes[c.ClientAuth]
}

// Validate checks the configuration without reading the files.
func (c *ServerConfig) Validate() error {
	if !c.Enabled() {
		if c.CAPath != "" || c.ClientAuth != "" {
			return fmt.Errorf("-%stls-ca-path and -%stls-client-auth need -%stls-cert-path and -%stls-key-path", c.flagPrefix, c.flagPrefix, c.flagPrefix, c.flagPrefix)
		}
		return nil
	}
	if c.CertPath == "" || c.KeyPath == "" {
		return fmt.Errorf("-%stls-cert-path and -%stls-key-path go together", c.flagPrefix, c.flagPrefix)
	}
	if _, ok := clientAuthTypes[c.ClientAuth]; c.ClientAuth != "" && !ok {
		return fmt.Errorf("-%stls-client-auth: %q is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert", c.flagPrefix, c.ClientAuth)
	}
	if t := c.ClientAuthType(); (t == tls.VerifyClientCertIfGiven || t == tls.RequireAndVerifyClientCert) && c.CAPath == "" {
		return fmt.Errorf("-%stls-client-auth=%s needs -%stls-ca-path to verify client certificates against", c.flagPrefix, c.ClientAuth, c.flagPrefix)
	}
	return nil
}

// TLSConfig returns the server's TLS configuration, or nil when TLS is off; nextProtos are its ALPN
// protocols ("h2" for gRPC). The files are read now, so a missing or bad file fails at start, and again on
// the first handshake after each change.
func (c *ServerConfig) TLSConfig(nextProtos ...string) (*tls.Config, error) {
	if !c.Enabled() {
		return nil, nil
	}
	base := &tls.Config{ClientAuth: c.ClientAuthType(), NextProtos: nextProtos}
	if err := c.Common.apply(base, "server."); err != nil {
		return nil, err
	}
	keyPair := keyPairFile(c.CertPath, c.KeyPath)
	if _, err := keyPair.get(); err != nil {
		return nil, err
	}
	base.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return keyPair.get() }
	if c.CAPath == "" {
		return base, nil
	}
	ca := caFile(c.CAPath)
	if _, err := ca.get(); err != nil {
		return nil, err
	}
	// The client CAs live in the config itself, so each handshake gets a copy made with the current ones.
	return &tls.Config{
		MinVersion: base.MinVersion,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			pool, err := ca.get()
			if err != nil {
				return nil, err
			}
			cfg := base.Clone()
			cfg.ClientCAs = pool
			return cfg, nil
		},
	}, nil
}

// ClientConfig is the TLS of one kind of client (-ingester.client.tls-*, ...).
type ClientConfig struct {
	flagPrefix         string
	Enabled            bool
	CertPath           string
	KeyPath            string
	CAPath             string
	ServerName         string
	InsecureSkipVerify bool
	Common             Common
}

// RegisterFlagsWithPrefix registers -<prefix>tls-enabled, -cert-path, -key-path, -ca-path,
// -server-name, -insecure-skip-verify, -min-version and -cipher-suites; prefix ends with "." or "-".
func (c *ClientConfig) RegisterFlagsWithPrefix(prefix, server string, f *flag.FlagSet) {
	c.flagPrefix = prefix
	f.BoolVar(&c.Enabled, prefix+"tls-enabled", false, "Connect to "+server+"s with TLS.")
	f.StringVar(&c.CertPath, prefix+"tls-cert-path", "", "Client certificate (PEM) presented to "+server+"s that ask for one. Re-read when the file changes.")
	f.StringVar(&c.KeyPath, prefix+"tls-key-path", "", "Private key (PEM) of the client certificate.")
	f.StringVar(&c.CAPath, prefix+"tls-ca-path", "", "CA bundle (PEM) that "+server+" certificates must chain to; empty means the system's roots.")
	f.StringVar(&c.ServerName, prefix+"tls-server-name", "", "Name "+server+" certificates must carry; empty means the host of the address dialled.")
	f.BoolVar(&c.InsecureSkipVerify, prefix+"tls-insecure-skip-verify", false, "Accept any "+server+" certificate, unverified. For tests only: it gives up the protection TLS exists for.")
	c.Common.registerFlags(prefix, f)
}

// Validate checks the configuration without reading the files.
func (c *ClientConfig) Validate() error {
	if (c.CertPath == "") != (c.KeyPath == "") {
		return fmt.Errorf("-%stls-cert-path and -%stls-key-path go together", c.flagPrefix, c.flagPrefix)
	}
	if !c.Enabled && (c.CertPath != "" || c.CAPath != "" || c.ServerName != "") {
		return fmt.Errorf("-%stls-* paths are set but -%stls-enabled is false", c.flagPrefix, c.flagPrefix)
	}
	return nil
}

// NewClient reads the client's certificate and CA files, or returns nil when TLS is off.
func (c *ClientConfig) NewClient() (*Client, error) {
	if !c.Enabled {
		return nil, nil
	}
	base := &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // opt-in, documented as test-only
	if err := c.Common.apply(base, c.flagPrefix); err != nil {
		return nil, err
	}
	if c.CertPath != "" {
		keyPair := keyPairFile(c.CertPath, c.KeyPath)
		if _, err := keyPair.get(); err != nil {
			return nil, err
		}
		base.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return keyPair.get() }
	}
	cl := &Client{base: base, serverName: c.ServerName}
	if c.CAPath != "" && !c.InsecureSkipVerify {
		cl.ca = caFile(c.CAPath)
		if _, err := cl.ca.get(); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

// Client makes the TLS configuration of each connection to a server.
type Client struct {
	base       *tls.Config
	serverName string                        // -tls-server-name, which wins over the host dialled
	ca         *watchedFiles[*x509.CertPool] // nil: the system's roots, or no verification
}

// Config is the TLS configuration of a connection to host (the host of the address dialled, an IP
// address or a name); an empty host leaves the name to Go's TLS client, which takes the host it dials.
func (cl *Client) Config(host string) *tls.Config {
	cfg := cl.base.Clone()
	name := cl.serverName
	if name == "" {
		name = host
	}
	cfg.ServerName = name
	if cl.ca == nil {
		return cfg // Go's own verification, of IP addresses too, against the system's roots
	}
	// crypto/tls verifies against a fixed RootCAs; to follow a rotated CA bundle the verification is done
	// here, with the same checks (chain, and host name or IP address), against the bundle's current
	// contents. The name is this connection's: the ConnectionState has none when an IP address is dialled.
	cfg.InsecureSkipVerify = true //nolint:gosec // replaced by VerifyConnection below
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		pool, err := cl.ca.get()
		if err != nil {
			return err
		}
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server presented no certificate")
		}
		checked := name
		if checked == "" {
			checked = cs.ServerName
		}
		if checked == "" {
			// x509 would then check the chain only: any certificate of the CA would pass for any server.
			return errors.New("tls: no server name to check the certificate against")
		}
		opts := x509.VerifyOptions{Roots: pool, DNSName: checked, Intermediates: x509.NewCertPool()}
		for _, cert := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(cert)
		}
		_, err = cs.PeerCertificates[0].Verify(opts)
		return err
	}
	return cfg
}

// DialTLSContext dials addr over TLS with the configuration of its host, for an http.Transport's
// DialTLSContext: its TLSClientConfig would check no host when an IP address is dialled.
func (cl *Client) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	d := tls.Dialer{Config: cl.Config(host)}
	return d.DialContext(ctx, network, addr)
}

// GRPCCredentials are gRPC transport credentials that make each connection's TLS configuration with
// Config, for the host of the authority dialled.
func (cl *Client) GRPCCredentials() credentials.TransportCredentials { return &grpcCredentials{cl: cl} }

type grpcCredentials struct{ cl *Client }

func (g *grpcCredentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	host, _, err := net.SplitHostPort(authority)
	if err != nil {
		host = authority
	}
	return credentials.NewTLS(g.cl.Config(host)).ClientHandshake(ctx, authority, conn)
}

func (g *grpcCredentials) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("tlsconfig: client credentials cannot serve")
}

func (g *grpcCredentials) Info() credentials.ProtocolInfo {
	return credentials.NewTLS(g.cl.base).Info()
}

func (g *grpcCredentials) Clone() credentials.TransportCredentials { return &grpcCredentials{cl: g.cl} }

//nolint:staticcheck // part of the interface, deprecated
func (g *grpcCredentials) OverrideServerName(string) error {
	return errors.New("tlsconfig: set -<client>.tls-server-name instead")
}

// fileStamp identifies a version of a file cheaply: a changed file has a new modification time or size.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(paths ...string) ([]fileStamp, error) {
	stamps := make([]fileStamp, 0, len(paths))
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		stamps = append(stamps, fileStamp{fi.ModTime(), fi.Size()})
	}
	return stamps, nil
}

// watchedFiles is a value loaded from files and loaded again when any of them changes. A change that
// does not load (a half-written file, a key that does not match) keeps the last good value and is tried
// again on the next get.
type watchedFiles[T any] struct {
	paths []string
	load  func() (T, error)

	mu     sync.Mutex
	stamps []fileStamp
	value  T
	loaded bool
}

func (w *watchedFiles[T]) get() (T, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	stamps, err := stampOf(w.paths...)
	if err == nil && w.loaded && slices.Equal(stamps, w.stamps) {
		return w.value, nil
	}
	var v T
	if err == nil {
		v, err = w.load()
	}
	if err != nil {
		if w.loaded {
			return w.value, nil
		}
		return v, err
	}
	w.stamps, w.value, w.loaded = stamps, v, true
	return v, nil
}

// keyPairFile is a certificate and its key, read again when either file changes.
func keyPairFile(certPath, keyPath string) *watchedFiles[*tls.Certificate] {
	return &watchedFiles[*tls.Certificate]{paths: []string{certPath, keyPath}, load: func() (*tls.Certificate, error) {
		cert, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certPath, keyPath, err)
		}
		return &cert, nil
	}}
}

// caFile is a CA bundle, read again when its file changes.
func caFile(path string) *watchedFiles[*x509.CertPool] {
	return &watchedFiles[*x509.CertPool]{paths: []string{path}, load: func() (*x509.CertPool, error) {
		pem, err := os.ReadFile(path)
		pool := x509.NewCertPool()
		if err == nil && !pool.AppendCertsFromPEM(pem) {
			err = errors.New("no PEM certificate in it")
		}
		if err != nil {
			return nil, fmt.Errorf("load TLS CA bundle %s: %w", path, err)
		}
		return pool, nil
	}}
}
