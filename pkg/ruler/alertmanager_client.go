package ruler

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/strata-metrics/strata/pkg/tlsconfig"
	"github.com/strata-metrics/strata/pkg/util/flagext"
)

// AlertmanagerClientConfig is how the ruler reaches the Alertmanagers of -ruler.alertmanager-url: TLS
// with a private CA or a client certificate, and basic-auth credentials for URLs that carry none.
type AlertmanagerClientConfig struct {
	TLS               tlsconfig.ClientConfig
	BasicAuthUsername string
	BasicAuthPassword flagext.Secret
}

const alertmanagerClientPrefix = "ruler.alertmanager-client."

// RegisterFlags registers the -ruler.alertmanager-client.* flags, with Mimir's names.
func (c *AlertmanagerClientConfig) RegisterFlags(f *flag.FlagSet) {
	c.TLS.RegisterFlagsWithPrefix(alertmanagerClientPrefix, "Alertmanager", f)
	f.Lookup(alertmanagerClientPrefix + "tls-enabled").Usage = "Send alerts to the https Alertmanagers of -ruler.alertmanager-url " +
		"with the -ruler.alertmanager-client.tls-* settings (CA, client certificate, server name) rather than the system's roots. " +
		"Alertmanagers found in the ring use -alertmanager.alertmanager-client.tls-* instead."
	f.StringVar(&c.BasicAuthUsername, alertmanagerClientPrefix+"basic-auth-username", "",
		"Basic-auth user name sent to the Alertmanagers of -ruler.alertmanager-url whose URL has no user:password of its own.")
	f.Var(&c.BasicAuthPassword, alertmanagerClientPrefix+"basic-auth-password", "Basic-auth password that goes with -"+
		alertmanagerClientPrefix+"basic-auth-username.")
}

// validate checks the settings against the Alertmanager URLs they apply to.
func (c *AlertmanagerClientConfig) validate(urls []*url.URL) error {
	if err := c.TLS.Validate(); err != nil {
		return fmt.Errorf("ruler: %w", err)
	}
	if c.BasicAuthUsername == "" && c.BasicAuthPassword.Value != "" {
		return errors.New("ruler: -" + alertmanagerClientPrefix + "basic-auth-password is set without -" +
			alertmanagerClientPrefix + "basic-auth-username")
	}
	if !c.TLS.Enabled {
		return nil
	}
	if len(urls) == 0 {
		return errors.New("ruler: -" + alertmanagerClientPrefix + "tls-enabled applies to -ruler.alertmanager-url, which is empty " +
			"(the Alertmanagers of the ring use -alertmanager.alertmanager-client.tls-*)")
	}
	for _, u := range urls {
		if u.Scheme != "https" {
			return fmt.Errorf("ruler: -%stls-enabled is set but Alertmanager URL %s is not https", alertmanagerClientPrefix, u.Redacted())
		}
	}
	return nil
}

// httpClient returns the client that sends alerts with the TLS settings, or nil when TLS is off (the
// Prometheus notifier's own client is used then). The notifier bounds each send with its context.
func (c *AlertmanagerClientConfig) httpClient() (*http.Client, error) {
	cl, err := c.TLS.NewClient()
	if err != nil || cl == nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialTLSContext = cl.DialTLSContext
	return &http.Client{Transport: transport}, nil
}

// basicAuth returns the credentials for a request to an Alertmanager: those in its -ruler.alertmanager-url
// entry, else the flags'.
func (c *AlertmanagerClientConfig) basicAuth(urls []*url.URL, target *url.URL) (user, password string, ok bool) {
	for _, u := range urls {
		if u.Host == target.Host && strings.HasPrefix(target.Path, u.Path) && u.User != nil {
			password, _ := u.User.Password()
			return u.User.Username(), password, true
		}
	}
	if c.BasicAuthUsername != "" {
		return c.BasicAuthUsername, c.BasicAuthPassword.Value, true
	}
	return "", "", false
}
