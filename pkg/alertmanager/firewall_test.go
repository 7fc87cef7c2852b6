package alertmanager

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/alertmanager/config"
	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
)

// defaultBlockedNetworks is the default of -alertmanager.receivers-firewall-block-cidr-networks.
func defaultBlockedNetworks() string {
	var cfg Config
	cfg.RegisterFlags(newFlagSet())
	return cfg.ReceiversFirewallBlockCIDRNetworks
}

func TestReceiverFirewall_Check(t *testing.T) {
	defaults, err := newReceiverFirewall(defaultBlockedNetworks(), false)
	require.NoError(t, err)
	private, err := newReceiverFirewall("", true)
	require.NoError(t, err)
	both, err := newReceiverFirewall(defaultBlockedNetworks(), true)
	require.NoError(t, err)

	for _, tc := range []struct {
		addr                    string
		byDefault, byPrivate    bool // refused
		errHasDefault, errHasPv string
	}{
		{addr: "127.0.0.1", byDefault: true, byPrivate: true, errHasDefault: "blocked network 127.0.0.0/8"},
		{addr: "127.12.0.1", byDefault: true, byPrivate: true},
		{addr: "::1", byDefault: true, byPrivate: true, errHasDefault: "blocked network ::1/128"},
		{addr: "::ffff:127.0.0.1", byDefault: true, byPrivate: true},
		{addr: "0.0.0.0", byDefault: true, byPrivate: true}, // reaches this host
		{addr: "::", byDefault: true, byPrivate: true},
		{addr: "169.254.169.254", byDefault: true, byPrivate: true, errHasDefault: "blocked network 169.254.0.0/16"},
		{addr: "fe80::1%eth0", byDefault: true, byPrivate: true, errHasDefault: "blocked network fe80::/10"},
		{addr: "10.1.2.3", byPrivate: true, errHasPv: "-alertmanager.receivers-firewall-block-private-addresses"},
		{addr: "172.16.5.4", byPrivate: true},
		{addr: "192.168.1.1", byPrivate: true},
		{addr: "fd00:ec2::254", byPrivate: true},
		{addr: "8.8.8.8"},
		{addr: "2001:4860:4860::8888"},
	} {
		ip := netip.MustParseAddr(tc.addr)
		err := defaults.check(ip)
		require.Equal(t, tc.byDefault, err != nil, "%s by default: %v", tc.addr, err)
		if tc.errHasDefault != "" {
			require.ErrorContains(t, err, tc.errHasDefault)
			require.ErrorContains(t, err, "-alertmanager.receivers-firewall-block-cidr-networks")
		}
		err = private.check(ip)
		require.Equal(t, tc.byPrivate, err != nil, "%s with private addresses blocked: %v", tc.addr, err)
		if tc.errHasPv != "" {
			require.ErrorContains(t, err, tc.errHasPv)
		}
		require.Equal(t, tc.byDefault || tc.byPrivate, both.check(ip) != nil, tc.addr)
	}
}

func TestNewReceiverFirewall_NothingBlockedIsOff(t *testing.T) {
	fw, err := newReceiverFirewall(" , ", false)
	require.NoError(t, err)
	require.Nil(t, fw)
	require.Empty(t, fw.httpOptions())
	require.NoError(t, fw.checkReceiver(snsReceiver(true)))
}

func TestConfig_ValidateReceiversFirewall(t *testing.T) {
	for name, tc := range map[string]struct {
		cidrs  string
		errHas string
	}{
		"default":       {cidrs: defaultBlockedNetworks()},
		"empty":         {cidrs: ""},
		"spaces":        {cidrs: " 10.0.0.0/8 , fd00::/8 "},
		"host bits set": {cidrs: "10.1.2.3/8"},
		"no prefix":     {cidrs: "10.0.0.1", errHas: `"10.0.0.1" is not a network in CIDR notation`},
		"not an ip":     {cidrs: "127.0.0.0/8,localhost/8", errHas: `"localhost/8"`},
		"bad prefix":    {cidrs: "10.0.0.0/33", errHas: "-alertmanager.receivers-firewall-block-cidr-networks"},
	} {
		t.Run(name, func(t *testing.T) {
			var cfg Config
			cfg.RegisterFlags(newFlagSet())
			cfg.ReceiversFirewallBlockCIDRNetworks = tc.cidrs
			err := cfg.Validate()
			if tc.errHas == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.errHas)
		})
	}

	fs := newFlagSet()
	var cfg Config
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"-alertmanager.receivers-firewall-block-cidr-networks=10.0.0.0/8", "-alertmanager.receivers-firewall-block-private-addresses"}))
	require.Equal(t, "10.0.0.0/8", cfg.ReceiversFirewallBlockCIDRNetworks)
	require.True(t, cfg.ReceiversFirewallBlockPrivateAddresses)
}

// firewalledClient is an HTTP client as a receiver gets it, behind the firewall of cidrs and blockPrivate.
func firewalledClient(t *testing.T, cidrs string, blockPrivate bool) *http.Client {
	t.Helper()
	fw, err := newReceiverFirewall(cidrs, blockPrivate)
	require.NoError(t, err)
	client, err := commoncfg.NewClientFromConfig(commoncfg.DefaultHTTPClientConfig, "test", fw.httpOptions()...)
	require.NoError(t, err)
	return client
}

func TestReceiverFirewall_RefusesAtDialTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	byName := "http://" + net.JoinHostPort("localhost", strconv.Itoa(port)) + "/"

	for name, tc := range map[string]struct {
		url          string
		cidrs        string
		blockPrivate bool
		refused      bool
	}{
		"loopback by default":            {url: srv.URL, cidrs: defaultBlockedNetworks(), refused: true},
		"a name resolving to loopback":   {url: byName, cidrs: defaultBlockedNetworks(), refused: true},
		"the unspecified address":        {url: "http://" + net.JoinHostPort("0.0.0.0", strconv.Itoa(port)), cidrs: defaultBlockedNetworks(), refused: true},
		"private addresses blocked":      {url: srv.URL, blockPrivate: true, refused: true},
		"firewall off":                   {url: srv.URL},
		"loopback not in the block list": {url: srv.URL, cidrs: "10.0.0.0/8"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := firewalledClient(t, tc.cidrs, tc.blockPrivate).Get(tc.url)
			if !tc.refused {
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				return
			}
			require.ErrorIs(t, err, errFirewall)
			require.ErrorContains(t, err, "receivers firewall: connection to ")
		})
	}
}

func TestReceiverFirewall_RefusesRedirectsToBlockedAddresses(t *testing.T) {
	// 127.0.0.2 is loopback too on Linux; blocking it alone lets the first server through.
	lis, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	blocked := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	blocked.Listener = lis
	blocked.Start()
	t.Cleanup(blocked.Close)
	redirect := httptest.NewServer(http.RedirectHandler(blocked.URL+"/admin", http.StatusFound))
	t.Cleanup(redirect.Close)

	_, err = firewalledClient(t, "127.0.0.2/32", false).Get(redirect.URL)
	require.ErrorIs(t, err, errFirewall)
	require.ErrorContains(t, err, "127.0.0.2 is in the blocked network 127.0.0.2/32")
}

// syncBuffer is a log destination the notification goroutines can write to while a test reads it.
type syncBuffer struct {
	mtx sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	return b.buf.String()
}

func TestAlertmanager_ReceiversFirewallFailsNotificationsToLoopback(t *testing.T) {
	cfg := testConfig(t)
	cfg.ReceiversFirewallBlockCIDRNetworks = defaultBlockedNetworks()
	var logs syncBuffer
	h := newHarnessWith(t, objstore.NewInMemBucket(), cfg, func(am *MultitenantAlertmanager) {
		am.logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	hook := newWebhook(t)
	h.setConfig("t1", webhookConfig(hook.srv.URL))
	h.postAlert("t1", map[string]string{"alertname": "Refused"})

	eventually(t, func() bool { return strings.Contains(logs.String(), "receivers firewall: connection to 127.0.0.1:") }, "each attempt's failure is logged, naming the firewall")
	// Alertmanager counts the notification failed once its retries run out, after notify.MinTimeout.
	eventually(t, func() bool {
		return h.tenantSum("strata_alertmanager_notifications_failed_total", "t1") > 0
	}, "the notification fails")
	require.Empty(t, hook.received())
}

func TestAlertmanager_ReceiversFirewallOffDelivers(t *testing.T) {
	cfg := testConfig(t)
	cfg.ReceiversFirewallBlockCIDRNetworks = ""
	h := newHarness(t, objstore.NewInMemBucket(), cfg)
	hook := newWebhook(t)
	h.setConfig("t1", webhookConfig(hook.srv.URL))
	h.postAlert("t1", map[string]string{"alertname": "Delivered"})
	eventually(t, func() bool { return len(hook.received()) == 1 }, "delivered with an empty block list")
}

func snsReceiver(awsClient bool) config.Receiver {
	return config.Receiver{Name: "r", SNSConfigs: []*config.SNSConfig{{UseAWSHTTPClient: awsClient}}}
}

func TestValidateTenantConfig_FirewallRefusesSNSWithTheAWSClient(t *testing.T) {
	u, err := url.Parse("http://localhost/alertmanager")
	require.NoError(t, err)
	fw, err := newReceiverFirewall(defaultBlockedNetworks(), false)
	require.NoError(t, err)
	cfg := alertstore.AlertConfig{AlertmanagerConfig: "route:\n  receiver: r\nreceivers:\n  - name: r\n    sns_configs:\n" +
		"      - topic_arn: arn:aws:sns:us-east-1:1:t\n        use_aws_http_client: true\n        sigv4: {region: us-east-1, access_key: AK, secret_key: SK}\n"}
	err = validateTenantConfig(cfg, 0, u, fw, discardLogger())
	require.ErrorIs(t, err, errInvalidConfig)
	require.ErrorContains(t, err, "use_aws_http_client cannot be set while the receivers firewall is on")
	require.NoError(t, validateTenantConfig(cfg, 0, u, nil, discardLogger()), "accepted with the firewall off")
}
