package memberlist

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/strata-metrics/strata/pkg/tlsconfig"
)

// Config configures the gossip cluster a KV joins and how values spread through it.
type Config struct {
	// Join lists the members to contact on start, as host:port; names may resolve to several addresses.
	Join AddressList

	// BindAddr and BindPort are where gossip (TCP and UDP) is received; port 0 picks a free one.
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are where other members reach this one, when that differs from the
	// bind address (NAT, containers); empty and 0 mean the bound ones.
	AdvertiseAddr string
	AdvertisePort int

	// NodeName names this member in the cluster; empty means the hostname.
	NodeName string
	// RandomizeNodeName appends a random suffix to NodeName, so a restarted process is a new member
	// rather than one that the cluster may still remember as dead.
	RandomizeNodeName bool

	// GossipInterval and GossipNodes set how often, and to how many random members, queued changes are sent.
	GossipInterval time.Duration
	GossipNodes    int
	// PushPullInterval is how often the full state is exchanged with a random member; 0 disables it.
	PushPullInterval time.Duration
	// RetransmitFactor scales how many times each change is sent: factor * log10(members + 1).
	RetransmitFactor int

	// MinJoinBackoff and MaxJoinBackoff bound the exponential wait between attempts to join.
	MinJoinBackoff time.Duration
	MaxJoinBackoff time.Duration
	// MaxJoinRetries is how many attempts to join are made before giving up; 0 never gives up.
	MaxJoinRetries int
	// AbortIfJoinFails makes Start wait for the join and fail if it does, instead of joining in the background.
	AbortIfJoinFails bool

	// LeftIngestersTimeout is how long tombstones (removed entries) are kept: long enough for the removal
	// to reach every member, short enough that the descriptor does not grow forever.
	LeftIngestersTimeout time.Duration
	// LeaveTimeout bounds how long Stop waits for queued changes and the leave message to go out.
	LeaveTimeout time.Duration

	// TLS, when enabled, carries all gossip over TCP in TLS: members present TLS.CertPath to each other
	// both as servers and as clients, and accept only peers whose certificate chains to TLS.CAPath.
	TLS tlsconfig.ClientConfig
}

// RegisterFlags registers the -memberlist.* flags with their defaults.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.Var(&c.Join, "memberlist.join",
		"Comma-separated host:port addresses of cluster members to join on start. A DNS name may resolve to "+
			"several members; all of them are contacted. Joining is retried in the background until one answers.")
	f.StringVar(&c.BindAddr, "memberlist.bind-addr", "",
		"IP address to listen on for gossip (TCP and UDP). Empty listens on all addresses.")
	f.IntVar(&c.BindPort, "memberlist.bind-port", 7946,
		"Port to listen on for gossip (TCP and UDP). 0 picks a free port.")
	f.StringVar(&c.AdvertiseAddr, "memberlist.advertise-addr", "",
		"IP address other members use to reach this one. Empty advertises the bind address, or a private IP "+
			"of this machine when listening on all addresses.")
	f.IntVar(&c.AdvertisePort, "memberlist.advertise-port", 0,
		"Port other members use to reach this one. 0 advertises the port actually bound.")
	f.StringVar(&c.NodeName, "memberlist.nodename", "",
		"Name of this member in the cluster. Empty uses the hostname.")
	f.BoolVar(&c.RandomizeNodeName, "memberlist.randomize-node-name", true,
		"Append a random suffix to the node name, so a restarted process does not collide with its previous "+
			"incarnation, which the cluster may still remember.")
	f.DurationVar(&c.GossipInterval, "memberlist.gossip-interval", 200*time.Millisecond,
		"How often to send queued changes to random members. Lower spreads changes faster at the cost of traffic.")
	f.IntVar(&c.GossipNodes, "memberlist.gossip-nodes", 3,
		"How many random members each gossip round sends to.")
	f.DurationVar(&c.PushPullInterval, "memberlist.pullpush-interval", 30*time.Second,
		"How often to exchange the full state with a random member, repairing anything gossip missed. 0 disables it.")
	f.IntVar(&c.RetransmitFactor, "memberlist.retransmit-factor", 4,
		"Each change is sent retransmit-factor * log10(members + 1) times.")
	f.DurationVar(&c.MinJoinBackoff, "memberlist.min-join-backoff", time.Second,
		"Wait after the first failed attempt to join; it doubles after each failure up to -memberlist.max-join-backoff.")
	f.DurationVar(&c.MaxJoinBackoff, "memberlist.max-join-backoff", time.Minute,
		"Longest wait between attempts to join.")
	f.IntVar(&c.MaxJoinRetries, "memberlist.max-join-retries", 0,
		"Give up joining after this many failed attempts. 0 keeps trying until a member answers.")
	f.BoolVar(&c.AbortIfJoinFails, "memberlist.abort-if-join-fails", false,
		"Fail to start unless a member of -memberlist.join answers; otherwise start alone and keep trying to join "+
			"in the background.")
	f.DurationVar(&c.LeftIngestersTimeout, "memberlist.left-ingesters-timeout", 5*time.Minute,
		"How long to keep the tombstone of an instance that left the ring. It must be longer than a change takes "+
			"to reach every member, or the instance may come back.")
	f.DurationVar(&c.LeaveTimeout, "memberlist.leave-timeout", 20*time.Second,
		"How long to wait on shutdown for queued changes and the leave message to reach other members.")
	c.TLS.RegisterFlagsWithPrefix("memberlist.", "gossip peer", f)
	// The generic help of these two does not say that a member is also a server to its peers.
	f.Lookup("memberlist.tls-enabled").Usage = "Carry all gossip over TCP in TLS (instead of UDP packets and plain TCP streams). " +
		"Each member presents -memberlist.tls-cert-path to its peers, as a server and as a client, and accepts only peers " +
		"whose certificate chains to -memberlist.tls-ca-path. All members of a cluster must agree on it."
	f.Lookup("memberlist.tls-cert-path").Usage = "Certificate (PEM) this member presents to its peers, both when they connect " +
		"and when it connects to them; it must be valid for server and client authentication. Needed with " +
		"-memberlist.tls-enabled. Re-read when the file changes."
}

// Validate reports a configuration the KV cannot start with.
func (c *Config) Validate() error {
	for _, addr := range c.Join {
		if _, err := splitJoinAddress(addr); err != nil {
			return fmt.Errorf("memberlist: %w (-memberlist.join)", err)
		}
	}
	if c.BindAddr != "" && net.ParseIP(c.BindAddr) == nil {
		return fmt.Errorf("memberlist: bind address %q is not an IP address (-memberlist.bind-addr)", c.BindAddr)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return fmt.Errorf("memberlist: advertise address %q is not an IP address (-memberlist.advertise-addr)",
			c.AdvertiseAddr)
	}
	checks := []struct {
		bad  bool
		what string
	}{
		{c.BindPort < 0 || c.BindPort > 65535, "bind port must be in 0..65535 (-memberlist.bind-port)"},
		{c.AdvertisePort < 0 || c.AdvertisePort > 65535, "advertise port must be in 0..65535 (-memberlist.advertise-port)"},
		{c.GossipInterval <= 0, "gossip interval must be positive (-memberlist.gossip-interval)"},
		{c.GossipNodes < 1, "gossip nodes must be at least 1 (-memberlist.gossip-nodes)"},
		{c.PushPullInterval < 0, "push-pull interval must not be negative (-memberlist.pullpush-interval)"},
		{c.RetransmitFactor < 1, "retransmit factor must be at least 1 (-memberlist.retransmit-factor)"},
		{c.MinJoinBackoff <= 0, "min join backoff must be positive (-memberlist.min-join-backoff)"},
		{c.MaxJoinBackoff < c.MinJoinBackoff, "max join backoff must not be below min join backoff (-memberlist.max-join-backoff)"},
		{c.MaxJoinRetries < 0, "max join retries must not be negative (-memberlist.max-join-retries)"},
		{c.LeftIngestersTimeout <= 0, "left ingesters timeout must be positive (-memberlist.left-ingesters-timeout)"},
		{c.LeaveTimeout < 0, "leave timeout must not be negative (-memberlist.leave-timeout)"},
	}
	for _, ch := range checks {
		if ch.bad {
			return errors.New("memberlist: " + ch.what)
		}
	}
	return c.validateTLS()
}

func (c *Config) validateTLS() error {
	if err := c.TLS.Validate(); err != nil {
		return fmt.Errorf("memberlist: %w", err)
	}
	if !c.TLS.Enabled {
		return nil
	}
	if c.TLS.CertPath == "" {
		return errors.New("memberlist: -memberlist.tls-enabled needs -memberlist.tls-cert-path and -memberlist.tls-key-path: " +
			"every member is a TLS server to its peers")
	}
	if c.TLS.CAPath == "" && !c.TLS.InsecureSkipVerify {
		return errors.New("memberlist: -memberlist.tls-enabled needs -memberlist.tls-ca-path, the CA that members' " +
			"certificates chain to")
	}
	return nil
}

// tlsConfigs returns the TLS configurations a member serves and dials with, nil when TLS is off. The
// server side requires a client certificate, verified against the CA when one is given.
func (c *Config) tlsConfigs() (server *tls.Config, client func(host string) *tls.Config, err error) {
	if !c.TLS.Enabled {
		return nil, nil, nil
	}
	cl, err := c.TLS.NewClient()
	if err != nil {
		return nil, nil, fmt.Errorf("memberlist: %w", err)
	}
	client = cl.Config
	srv := tlsconfig.ServerConfig{CertPath: c.TLS.CertPath, KeyPath: c.TLS.KeyPath, CAPath: c.TLS.CAPath, Common: &c.TLS.Common}
	if c.TLS.CAPath == "" {
		srv.ClientAuth = "RequireAnyClientCert" // -memberlist.tls-insecure-skip-verify: nothing to verify against
	}
	if server, err = srv.TLSConfig(); err != nil {
		return nil, nil, fmt.Errorf("memberlist: %w", err)
	}
	return server, client, nil
}

// AddressList is a flag.Value holding a comma-separated list of addresses. Setting it replaces the list,
// so a command-line flag overrides the config file instead of adding to it.
type AddressList []string

// String implements flag.Value.
func (l *AddressList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value.
func (l *AddressList) Set(s string) error {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	*l = out
	return nil
}

// joinAddress is one entry of -memberlist.join split into a host to resolve and a port.
type joinAddress struct {
	host string
	port string
}

func splitJoinAddress(addr string) (joinAddress, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return joinAddress{}, fmt.Errorf("join address %q is not host:port: %w", addr, err)
	}
	if host == "" {
		return joinAddress{}, fmt.Errorf("join address %q has no host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return joinAddress{}, fmt.Errorf("join address %q has no valid port", addr)
	}
	return joinAddress{host: host, port: port}, nil
}
