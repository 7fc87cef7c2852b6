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
	authToken string
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
	app.Flag("auth-token", "Bearer token for authentication, instead of --user and --key.").
		Envar("STRATA_AUTH_TOKEN").StringVar(&c.authToken)
}

// client talks to one tenant's APIs of a cluster.
type client struct {
	cfg  clientConfig
	base string // the address, without a trailing slash
	http *http.Client
}

func (c *clientConfig) newClient() (*client, error) {
	if c.address == "" {
		return nil, errors.New("no cluster address: set --address or STRATA_ADDRESS")
	}
	u, err := url.Parse(c.address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--address %q is not an http:// or https:// URL", c.address)
	}
	if c.tenantID == "" {
		return nil, errors.New("no tenant: set --id or STRATA_TENANT_ID")
	}
	if err := tenant.ValidateID(c.tenantID); err != nil {
		return nil, fmt.Errorf("--id: %w", err)
	}
	if c.authToken != "" && (c.key != "" || c.user != "") {
		return nil, errors.New("--auth-token and --user/--key both authenticate: give one of them")
	}
	return &client{cfg: *c, base: strings.TrimSuffix(c.address, "/"), http: &http.Client{Timeout: requestTimeout}}, nil
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
	req.Header.Set(tenant.OrgIDHeader, c.cfg.tenantID)
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
