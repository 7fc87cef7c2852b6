package etcd

import (
	"crypto/tls"
	"flag"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/strata-metrics/strata/pkg/util/flagext"
)

// Config is how to reach and authenticate to an etcd cluster.
type Config struct {
	// Endpoints are the etcd members' client URLs (http://host:2379 or https://host:2379).
	Endpoints []string
	// DialTimeout bounds how long the client waits for an authentication token and similar set-up calls.
	DialTimeout time.Duration
	// MaxRetries is how many times CAS re-reads and retries when another writer changed the key first.
	MaxRetries int

	// TLSEnabled connects over TLS; the endpoints must then be https:// (or host:port) URLs.
	TLSEnabled bool
	// TLSCertPath and TLSKeyPath are the client certificate and its key, for etcd's client-cert auth.
	TLSCertPath string
	TLSKeyPath  string
	// TLSCAPath holds the CAs that etcd's server certificate is verified against; empty: the system's.
	TLSCAPath string
	// TLSServerName is the name etcd's certificate must carry; empty: each endpoint's host.
	TLSServerName string
	// TLSInsecureSkipVerify accepts any server certificate.
	TLSInsecureSkipVerify bool

	// Username and Password authenticate to etcd when its authentication is enabled.
	Username string
	Password flagext.Secret

	// flagPrefix is what RegisterFlagsWithPrefix was given, so Validate can name the flag to change.
	flagPrefix string
}

// RegisterFlagsWithPrefix registers the flags under <prefix>etcd., e.g. -ingester.ring.etcd.endpoints for
// the prefix "ingester.ring.".
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	c.flagPrefix = prefix
	p := prefix + "etcd."
	f.Var((*stringList)(&c.Endpoints), p+"endpoints", "Comma-separated etcd client URLs, e.g. http://etcd-0:2379,http://etcd-1:2379.")
	f.DurationVar(&c.DialTimeout, p+"dial-timeout", 10*time.Second, "Timeout for set-up calls to etcd, such as fetching an authentication token.")
	f.IntVar(&c.MaxRetries, p+"max-retries", 10, "How many times a compare-and-swap is retried when another writer changed the key first.")
	f.BoolVar(&c.TLSEnabled, p+"tls-enabled", false, "Connect to etcd over TLS.")
	f.StringVar(&c.TLSCertPath, p+"tls-cert-path", "", "Client certificate file for TLS client authentication to etcd.")
	f.StringVar(&c.TLSKeyPath, p+"tls-key-path", "", "Private key file of the client certificate.")
	f.StringVar(&c.TLSCAPath, p+"tls-ca-path", "", "CA certificates file to verify etcd's server certificate; empty uses the system's.")
	f.StringVar(&c.TLSServerName, p+"tls-server-name", "", "Server name expected in etcd's certificate; empty uses the endpoint's host.")
	f.BoolVar(&c.TLSInsecureSkipVerify, p+"tls-insecure-skip-verify", false, "Do not verify etcd's server certificate (testing only).")
	f.StringVar(&c.Username, p+"username", "", "User name for etcd authentication.")
	f.Var(&c.Password, p+"password", "Password for etcd authentication.")
}

// Validate reports a configuration the client cannot work with. The app calls it only when etcd is the
// configured store, since the endpoints have no usable default.
func (c *Config) Validate() error {
	flagName := func(name string) string { return "-" + c.flagPrefix + "etcd." + name }
	if len(c.Endpoints) == 0 {
		return fmt.Errorf("etcd: no endpoints configured (%s)", flagName("endpoints"))
	}
	for _, e := range c.Endpoints {
		if strings.TrimSpace(e) == "" {
			return fmt.Errorf("etcd: empty endpoint in %q (%s)", strings.Join(c.Endpoints, ","), flagName("endpoints"))
		}
		// The etcd client talks plain text to http:// and unix:// endpoints whatever the TLS settings say.
		if c.TLSEnabled && (strings.HasPrefix(e, "http://") || strings.HasPrefix(e, "unix://")) {
			return fmt.Errorf("etcd: TLS is enabled but endpoint %q is plain text; use https:// or unixs:// (%s)", e, flagName("endpoints"))
		}
	}
	if c.DialTimeout <= 0 {
		return fmt.Errorf("etcd: dial timeout must be positive, is %s (%s)", c.DialTimeout, flagName("dial-timeout"))
	}
	if c.MaxRetries < 1 {
		return fmt.Errorf("etcd: max retries must be at least 1, is %d (%s)", c.MaxRetries, flagName("max-retries"))
	}
	tlsSet := c.TLSCertPath != "" || c.TLSKeyPath != "" || c.TLSCAPath != "" || c.TLSServerName != "" || c.TLSInsecureSkipVerify
	if tlsSet && !c.TLSEnabled {
		// Otherwise the certificates would be silently ignored and the connection made in plain text.
		return fmt.Errorf("etcd: TLS options are set but TLS is disabled (%s)", flagName("tls-enabled"))
	}
	if (c.TLSCertPath == "") != (c.TLSKeyPath == "") {
		return fmt.Errorf("etcd: a client certificate needs both %s and %s", flagName("tls-cert-path"), flagName("tls-key-path"))
	}
	if c.Password.Value != "" && c.Username == "" {
		return fmt.Errorf("etcd: a password is set without a user name (%s)", flagName("username"))
	}
	return nil
}

// tlsConfig returns the client TLS configuration, or nil when TLS is disabled.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if !c.TLSEnabled {
		return nil, nil
	}
	info := transport.TLSInfo{
		CertFile:           c.TLSCertPath,
		KeyFile:            c.TLSKeyPath,
		TrustedCAFile:      c.TLSCAPath,
		ServerName:         c.TLSServerName,
		InsecureSkipVerify: c.TLSInsecureSkipVerify,
	}
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd: TLS configuration: %w", err)
	}
	return cfg, nil
}

// stringList is a flag.Value holding a comma-separated list, which is also how the config file passes
// YAML lists to flags.
type stringList []string

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *stringList) Set(v string) error {
	if v == "" {
		*l = nil
		return nil
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	*l = parts
	return nil
}
