package alertmanager

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"github.com/prometheus/alertmanager/config"
	commoncfg "github.com/prometheus/common/config"
)

// errFirewall is matched by every connection the receivers firewall refuses.
var errFirewall = errors.New("receivers firewall")

// receiverFirewall keeps tenants' receivers from making the Alertmanager connect to addresses a tenant
// must not reach through it: Strata's own endpoints on loopback, the cloud's metadata service on
// link-local addresses, and, if the operator asks, the private network. The check runs on the address
// being dialed, after DNS resolution, so a name that resolves to a blocked address, and a redirect to
// one, are refused too.
//
// A nil *receiverFirewall blocks nothing.
type receiverFirewall struct {
	blocked      []netip.Prefix
	blockPrivate bool
}

// newReceiverFirewall returns the firewall of the -alertmanager.receivers-firewall-* flags, nil when
// they block nothing.
func newReceiverFirewall(cidrs string, blockPrivate bool) (*receiverFirewall, error) {
	blocked, err := parseCIDRList(cidrs)
	if err != nil {
		return nil, err
	}
	if len(blocked) == 0 && !blockPrivate {
		return nil, nil
	}
	return &receiverFirewall{blocked: blocked, blockPrivate: blockPrivate}, nil
}

// parseCIDRList parses the comma-separated networks of -alertmanager.receivers-firewall-block-cidr-networks.
func parseCIDRList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("alertmanager: -alertmanager.receivers-firewall-block-cidr-networks: %q is not a network in CIDR notation (such as 10.0.0.0/8)", part)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// check returns why a connection to ip is refused, or nil.
func (f *receiverFirewall) check(ip netip.Addr) error {
	// A zone (fe80::1%eth0) would keep the address from matching any network, and an IPv4 address
	// written as IPv6 (::ffff:127.0.0.1) reaches the IPv4 one.
	ip = ip.WithZone("").Unmap()
	// Connecting to the unspecified address reaches this host: it is checked as loopback.
	if ip.IsUnspecified() {
		if ip.Is4() {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else {
			ip = netip.IPv6Loopback()
		}
	}
	for _, p := range f.blocked {
		if p.Contains(ip) {
			return fmt.Errorf("%s is in the blocked network %s (-alertmanager.receivers-firewall-block-cidr-networks)", ip, p)
		}
	}
	if f.blockPrivate && (ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast()) {
		return fmt.Errorf("%s is a private, loopback or link-local address (-alertmanager.receivers-firewall-block-private-addresses)", ip)
	}
	return nil
}

// control is the net.Dialer's Control: it runs for every address a dial tries, once resolved.
func (f *receiverFirewall) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: an address the firewall cannot read is one it cannot vouch for.
		return fmt.Errorf("%w: connection to %s refused: not an IP address and port", errFirewall, address)
	}
	if err := f.check(ap.Addr()); err != nil {
		return fmt.Errorf("%w: connection to %s refused: %w", errFirewall, address, err)
	}
	return nil
}

// httpOptions are the options of the receivers' HTTP clients: their connections go through control.
func (f *receiverFirewall) httpOptions() []commoncfg.HTTPClientOption {
	if f == nil {
		return nil
	}
	d := &net.Dialer{Control: f.control}
	return []commoncfg.HTTPClientOption{commoncfg.WithDialContextFunc(d.DialContext)}
}

// checkReceiver refuses the integrations of rcv whose connections would not go through the firewall:
// SNS with the AWS SDK's own HTTP client, which Alertmanager uses when asked to or when AWS_CA_BUNDLE
// is set in Strata's environment.
func (f *receiverFirewall) checkReceiver(rcv config.Receiver) error {
	if f == nil {
		return nil
	}
	for i, c := range rcv.SNSConfigs {
		if c.UseAWSHTTPClient {
			return fmt.Errorf("sns_configs[%d]: use_aws_http_client cannot be set while the receivers firewall is on: that client's connections are not checked", i)
		}
		if os.Getenv("AWS_CA_BUNDLE") != "" {
			return fmt.Errorf("sns_configs[%d]: SNS is not available while the receivers firewall is on and AWS_CA_BUNDLE is set in Strata's environment: the AWS SDK's client would then be used, whose connections are not checked", i)
		}
	}
	return nil
}
