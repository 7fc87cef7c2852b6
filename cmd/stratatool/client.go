package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/tlsconfig"
)

// requestTimeout bounds each request to the cluster.
const requestTimeout = time.Minute

// maxResponseBytes bounds what is read of an answer: a tenant's rules or Alertmanager configuration
// are far smaller.
const maxResponseBytes = 64 << 20

// clientConfig holds the global flags that say where the cluster is and who the user is.
type clientConfig struct {
	address   string
	tenantID  string
	user      string
	key       string
	password  string // --key by another name
	authToken string
	token     string // --auth-token by another name
	tls       clientTLS
}

// clientTLS is how the cluster's certificate is verified and which client certificate is presented.
type clientTLS struct {
	caPath, certPath, keyPath, serverName string
	insecureSkipVerify                    bool
}

func (c *clientConfig) registerFlags(app *kingpin.Application) {
	app.Flag("address", "Address of the Strata cluster, e.g. https://strata.example.com (a path prefix is kept).").
		Envar("STRATA_ADDRESS").StringVar(&c.address)
	app.Flag("id", "Tenant ID, sent as the "+tenant.OrgIDHeader+" header.").
		Envar("STRATA_TENANT_ID").StringVar(&c.tenantID)
	app.Flag("user", "User for basic authentication; the tenant ID when only --key is given.").
		Envar("STRATA_API_USER").StringVar(&c.user)
	app.Flag("key", "Password (API key) for basic authentication.").
		Envar("STRATA_API_KEY").StringVar(&c.key)
	app.Flag("password", "Password for basic authentication, as --key.").
		Envar("STRATA_PASSWORD").StringVar(&c.password)
	app.Flag("auth-token", "Bearer token for authentication, instead of --user and --key.").
		Envar("STRATA_AUTH_TOKEN").StringVar(&c.authToken)
	app.Flag("bearer-token", "Bearer token for authentication, as --auth-token.").
		Envar("STRATA_TOKEN").StringVar(&c.token)
	app.Flag("tls-ca-path", "CA bundle (PEM) the cluster's certificate must chain to; empty uses the system's roots.").
		Envar("STRATA_TLS_CA_PATH").StringVar(&c.tls.caPath)
	app.Flag("tls-cert-path", "Client certificate (PEM) presented to a cluster that asks for one (-auth.type=mtls).").
		Envar("STRATA_TLS_CERT_PATH").StringVar(&c.tls.certPath)
	app.Flag("tls-key-path", "Private key (PEM) of --tls-cert-path.").
		Envar("STRATA_TLS_KEY_PATH").StringVar(&c.tls.keyPath)
	app.Flag("tls-server-name", "Name the cluster's certificate must carry; empty uses the host of --address.").
		StringVar(&c.tls.serverName)
	app.Flag("tls-insecure-skip-verify", "Accept any certificate from the cluster, unverified. For tests only.").
		BoolVar(&c.tls.insecureSkipVerify)
}

// mergeSpelling returns the value given under either of two flag names; different values are an error.
func mergeSpelling(a, b, names string) (string, error) {
	if a != "" && b != "" && a != b {
		return "", fmt.Errorf("%s are the same setting with different values: give one of them", names)
	}
	if a == "" {
		return b, nil
	}
	return a, nil
}

// transport returns the HTTP transport to the cluster, with the TLS flags applied.
func (c *clientConfig) transport(scheme string) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if c.tls == (clientTLS{}) {
		return t, nil
	}
	if scheme != "https" {
		return nil, errors.New("--tls-* flags need an https:// --address")
	}
	if (c.tls.certPath == "") != (c.tls.keyPath == "") {
		return nil, errors.New("--tls-cert-path and --tls-key-path go together")
	}
	tlsClient, err := (&tlsconfig.ClientConfig{
		Enabled:            true,
		CAPath:             c.tls.caPath,
		CertPath:           c.tls.certPath,
		KeyPath:            c.tls.keyPath,
		ServerName:         c.tls.serverName,
		InsecureSkipVerify: c.tls.insecureSkipVerify,
		Common:             tlsconfig.Common{MinVersion: "VersionTLS12"},
	}).NewClient()
	if err != nil {
		return nil, fmt.Errorf("--tls-*: %w", err)
	}
	t.DialTLSContext = tlsClient.DialTLSContext
	return t, nil
}

// client talks to one tenant's APIs of a cluster.
type client struct {
	cfg       clientConfig
	base      string // the address, without a trailing slash
	transport *http.Transport
	http      *http.Client
}

func (c *clientConfig) newClient() (*client, error) {
	return c.newClientFor(true)
}

// newClientFor builds the client; the operator endpoints of one process (/ingester/*) belong to no
// tenant, so their commands do not require one.
func (c *clientConfig) newClientFor(needsTenant bool) (*client, error) {
	if c.address == "" {
		return nil, errors.New("no cluster address: set --address or STRATA_ADDRESS")
	}
	u, err := url.Parse(c.address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--address %q is not an http:// or https:// URL", c.address)
	}
	if c.tenantID == "" && needsTenant {
		return nil, errors.New("no tenant: set --id or STRATA_TENANT_ID")
	}
	if c.tenantID != "" {
		if err := tenant.ValidateID(c.tenantID); err != nil {
			return nil, fmt.Errorf("--id: %w", err)
		}
	}
	cfg := *c
	if cfg.key, err = mergeSpelling(c.key, c.password, "--key and --password"); err != nil {
		return nil, err
	}
	if cfg.authToken, err = mergeSpelling(c.authToken, c.token, "--auth-token and --bearer-token"); err != nil {
		return nil, err
	}
	if cfg.authToken != "" && (cfg.key != "" || cfg.user != "") {
		return nil, errors.New("--auth-token and --user/--key both authenticate: give one of them")
	}
	transport, err := c.transport(u.Scheme)
	if err != nil {
		return nil, err
	}
	return &client{cfg: cfg, base: strings.TrimSuffix(c.address, "/"), transport: transport,
		http: &http.Client{Timeout: requestTimeout, Transport: transport}}, nil
}

// statusError is an answer of the cluster other than the one expected.
type statusError struct {
	method, path string
	status       int
	body         string
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("%s %s: the server answered %d %s", e.method, e.path, e.status, http.StatusText(e.status))
	if body := strings.TrimSpace(e.body); body != "" {
		msg += ": " + body
	}
	return msg
}

// do sends a request to path (already escaped) and returns the answer's body when its status is one
// of want, and a *statusError otherwise.
func (c *client) do(ctx context.Context, method, path string, body []byte, want ...int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/yaml")
	}
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return data, nil
		}
	}
	return nil, &statusError{method: method, path: path, status: resp.StatusCode, body: string(data)}
}

// authorize sets the tenant and the credentials of the request.
func (c *client) authorize(req *http.Request) {
	if c.cfg.tenantID != "" {
		req.Header.Set(tenant.OrgIDHeader, c.cfg.tenantID)
	}
	switch {
	case c.cfg.authToken != "":
		req.Header.Set("Authorization", "Bearer "+c.cfg.authToken)
	case c.cfg.key != "":
		user := c.cfg.user
		if user == "" {
			user = c.cfg.tenantID // as mimirtool: hosted clusters take the tenant ID as user
		}
		req.SetBasicAuth(user, c.cfg.key)
	case c.cfg.user != "":
		req.SetBasicAuth(c.cfg.user, "")
	}
}

// isStatus reports whether err is an answer with that status.
func isStatus(err error, status int) bool {
	var se *statusError
	return errors.As(err, &se) && se.status == status
}

// pathSegment escapes a namespace or group name as one path segment. Dots of "." and ".." are escaped
// too: left plain they would be removed from the path as dot-segments.
func pathSegment(name string) string {
	if name == "." || name == ".." {
		return strings.Repeat("%2E", len(name))
	}
	return url.PathEscape(name)
}
