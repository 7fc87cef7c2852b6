package etcd

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/ring/kv/kvtest"
)

// testServer is a single-member etcd cluster running inside the test process on 127.0.0.1.
type testServer struct {
	t        *testing.T
	cfg      *embed.Config
	etcd     *embed.Etcd
	endpoint string
}

// startEtcd starts an etcd member with its data in a fresh temporary directory and stops it when the test
// ends.
func startEtcd(t *testing.T) *testServer {
	t.Helper()
	return startEtcdWith(t, "http", func(*embed.Config) {})
}

// startEtcdWith is startEtcd with clients connecting over scheme (https needs configure to set up TLS).
func startEtcdWith(t *testing.T, scheme string, configure func(*embed.Config)) *testServer {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = t.TempDir()
	// Its errors come back from StartEtcd; the rest (including errors about its own shutdown) is noise.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true // the data is thrown away; fsync only slows the shared test machine down
	clientURL := url.URL{Scheme: scheme, Host: freeAddr(t)}
	peerURL := url.URL{Scheme: "http", Host: freeAddr(t)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peerURL}, []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	configure(cfg)
	s := &testServer{t: t, cfg: cfg, endpoint: clientURL.String()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// freeAddr returns a 127.0.0.1 address with a port nobody listens on. The port is released before etcd
// takes it, so another process could grab it in between, but a server restart needs fixed ports anyway.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func (s *testServer) start() {
	s.t.Helper()
	e, err := embed.StartEtcd(s.cfg)
	require.NoError(s.t, err)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		s.t.Fatalf("etcd failed to start: %v", err)
	case <-time.After(time.Minute):
		e.Close()
		s.t.Fatal("etcd did not become ready within a minute")
	}
	s.etcd = e
}

// stop stops the member, keeping its data directory so start can bring it back.
func (s *testServer) stop() {
	if s.etcd != nil {
		s.etcd.Close()
		s.etcd = nil
	}
}

// adminClient is a raw etcd client for setting the stage behind the tested client's back.
func (s *testServer) adminClient(t *testing.T, user, password string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{s.endpoint}, DialTimeout: 5 * time.Second, Username: user, Password: password,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// testConfig is a valid Config for s with the flag defaults.
func (s *testServer) testConfig() Config {
	return Config{Endpoints: []string{s.endpoint}, DialTimeout: 5 * time.Second, MaxRetries: 10}
}

// newTestClient returns a Client storing kvtest.Counters, with its own metrics registry, closed when the
// test ends.
func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	return newTestClientWithCodec(t, cfg, kvtest.CountersCodec{})
}

func newTestClientWithCodec(t *testing.T, cfg Config, codec kv.Codec) *Client {
	t.Helper()
	c, err := New(cfg, codec, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testContext is cancelled when the test ends and bounds it, so a hung etcd call fails the test.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
