package alertmanager

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"time"
)

// Config configures the multi-tenant Alertmanager. Flag names follow Mimir's where Mimir has the same
// setting. The per-tenant limits are not here but in validation.Limits, read through Limits.
type Config struct {
	// DataDir holds a directory per tenant for its template files. The app sets it to
	// <-data.dir>/alertmanager when the flag is empty.
	DataDir string
	// Retention is how long silences and notification log entries are kept after they end.
	Retention time.Duration
	// PollInterval is how often the store is read to start, change and stop tenants' Alertmanagers.
	PollInterval time.Duration
	// PersistInterval is how often each tenant's silences and notification log are written to the store.
	PersistInterval time.Duration
	// FallbackConfigFile, if set, is the Alertmanager configuration of tenants that have none.
	FallbackConfigFile string
	// ExternalURL is where users reach the Alertmanager; notifications link back to it.
	ExternalURL string

	// ReplicationFactor is how many replicas run each tenant's Alertmanager. The app builds the ring
	// behind MultitenantAlertmanager.Replication with it; the Alertmanager itself only sees the
	// replicas the ring returns.
	ReplicationFactor int
	// PeerTimeout is how long each replica waits for those before it in the tenant's ring order to
	// send a notification: the replica at position k waits k times this before it sends, unless the
	// replicated notification log says one of them has.
	PeerTimeout time.Duration
	// RingCheckPeriod is how often the Alertmanager looks for a change of its replicas (Replication's
	// Version), on which it syncs at once instead of at the next poll.
	RingCheckPeriod time.Duration

	// ReceiversFirewallBlockCIDRNetworks is a comma-separated list of networks, in CIDR notation, that
	// receivers may not connect to; empty blocks none.
	ReceiversFirewallBlockCIDRNetworks string
	// ReceiversFirewallBlockPrivateAddresses also keeps receivers from private (RFC 1918 and
	// unique-local), loopback and link-local addresses.
	ReceiversFirewallBlockPrivateAddresses bool
}

// RegisterFlags registers the -alertmanager.* flags.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.DataDir, "alertmanager.storage.path", "",
		"Directory for the template files of each tenant's Alertmanager, written from the configuration store; the Alertmanager deletes anything else in it. Empty: <-data.dir>/alertmanager.")
	f.DurationVar(&c.Retention, "alertmanager.storage.retention", 120*time.Hour,
		"How long silences and notification log entries are kept after they expire.")
	f.DurationVar(&c.PollInterval, "alertmanager.configs.poll-interval", 15*time.Second,
		"How often the Alertmanager reads the configuration store to start, change and stop tenants' Alertmanagers; a configuration change is in effect within this time.")
	f.DurationVar(&c.PersistInterval, "alertmanager.persist-interval", 15*time.Minute,
		"How often each tenant's expired silences and notification log entries are dropped and the rest is written to the configuration store's bucket (when it changed); it is also written when a tenant's Alertmanager stops, and read when it starts.")
	f.StringVar(&c.FallbackConfigFile, "alertmanager.fallback-config-file", "",
		"Alertmanager configuration file for tenants that have not uploaded one. Such a tenant's Alertmanager starts on its first request (an alert or an API call). Empty: tenants without a configuration get 404.")
	f.StringVar(&c.ExternalURL, "alertmanager.web.external-url", "http://localhost:8080/alertmanager",
		"The URL under which users reach the Alertmanager, used in links of notifications (for example a reverse proxy's URL). The Alertmanager itself is always served under /alertmanager.")
	f.IntVar(&c.ReplicationFactor, "alertmanager.sharding-ring.replication-factor", 3,
		"How many Alertmanagers run each tenant's Alertmanager. They share its silences and notification log, an alert is sent to every one of them, and each notification is sent by the first of them in the ring's order that is alive.")
	f.DurationVar(&c.PeerTimeout, "alertmanager.peer-timeout", 15*time.Second,
		"How long the replica of a tenant's Alertmanager at position k in the ring's order waits, k times over, before it sends a notification that the replicas before it have not sent: the delay of a notification when the first replica is down.")
	f.DurationVar(&c.RingCheckPeriod, "alertmanager.sharding-ring.check-period", time.Second,
		"How often the Alertmanager checks the ring for a change of the replicas of tenants; a change syncs at once instead of at the next poll, so a tenant moves within the ring's heartbeat timeout.")
	// Loopback and link-local by default: a tenant's webhook must not reach Strata's own admin
	// endpoints or the cloud's metadata service, while receivers at in-cluster addresses still work.
	f.StringVar(&c.ReceiversFirewallBlockCIDRNetworks, "alertmanager.receivers-firewall-block-cidr-networks", "127.0.0.0/8,::1/128,169.254.0.0/16,fe80::/10",
		"Comma-separated networks, in CIDR notation, that the receivers of tenants' Alertmanagers (webhook and every other HTTP integration; not email) may not connect to; the address is checked when it is dialed, after DNS resolution and on redirects, and a refused notification fails. The default blocks loopback (this host's own endpoints) and link-local addresses (cloud metadata services; AWS's IPv6 one, fd00:ec2::254, is unique-local and needs adding). Empty blocks none.")
	f.BoolVar(&c.ReceiversFirewallBlockPrivateAddresses, "alertmanager.receivers-firewall-block-private-addresses", false,
		"Also keep the receivers of tenants' Alertmanagers from private (RFC 1918, unique-local), loopback and link-local addresses, so that they reach public addresses only.")
}

// Validate reports settings the Alertmanager cannot work with. An empty DataDir is allowed here because
// the app fills it in from -data.dir; New rejects it.
func (c *Config) Validate() error {
	var errs []error
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("alertmanager: -alertmanager.configs.poll-interval must be positive"))
	}
	if c.PersistInterval <= 0 {
		errs = append(errs, errors.New("alertmanager: -alertmanager.persist-interval must be positive"))
	}
	if c.ReplicationFactor < 1 {
		errs = append(errs, errors.New("alertmanager: -alertmanager.sharding-ring.replication-factor must be at least 1"))
	}
	if c.PeerTimeout <= 0 {
		errs = append(errs, errors.New("alertmanager: -alertmanager.peer-timeout must be positive"))
	}
	if c.RingCheckPeriod <= 0 {
		errs = append(errs, errors.New("alertmanager: -alertmanager.sharding-ring.check-period must be positive"))
	}
	if c.Retention <= 0 {
		errs = append(errs, errors.New("alertmanager: -alertmanager.storage.retention must be positive"))
	}
	if _, err := parseExternalURL(c.ExternalURL); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseCIDRList(c.ReceiversFirewallBlockCIDRNetworks); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// parseExternalURL accepts an absolute http or https URL; a trailing slash of its path is dropped so
// that links built from it have a single one.
func parseExternalURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: -alertmanager.web.external-url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alertmanager: -alertmanager.web.external-url %q must be an absolute http or https URL", s)
	}
	for len(u.Path) > 0 && u.Path[len(u.Path)-1] == '/' {
		u.Path = u.Path[:len(u.Path)-1]
	}
	return u, nil
}
