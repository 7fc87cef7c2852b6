package grpcclient

import (
	"flag"
	"log/slog"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func startHealthServer(t *testing.T) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String(), s.Stop
}

func testConfig(t *testing.T, prefix string) Config {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlagsWithPrefix(prefix, "test server", fs)
	require.NoError(t, cfg.Validate())
	return cfg
}

func TestPool_HealthCheckClosesConnectionsToDeadServers(t *testing.T) {
	aliveAddr, _ := startHealthServer(t)
	deadAddr, stopDead := startHealthServer(t)
	pool := NewPool("test", nil, testConfig(t, "test.client"), nil, slog.New(slog.DiscardHandler))
	defer pool.Close()
	for _, addr := range []string{aliveAddr, deadAddr} {
		_, err := pool.Conn(addr)
		require.NoError(t, err)
	}
	pool.checkAll()
	require.Len(t, pool.conns, 2)

	stopDead()
	pool.checkAll()
	require.Len(t, pool.conns, 1)
	require.Contains(t, pool.conns, aliveAddr)
}

func TestConfig_FlagsAndErrorsNameTheirPrefix(t *testing.T) {
	var a, b Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	a.RegisterFlagsWithPrefix("ingester.client", "ingester", fs)
	b.RegisterFlagsWithPrefix("store-gateway.client", "store-gateway", fs)
	require.NoError(t, fs.Parse([]string{"-store-gateway.client.read-timeout=0s"}))
	require.NoError(t, a.Validate(), "each client has flags of its own")
	require.EqualError(t, b.Validate(), "-store-gateway.client.read-timeout must be positive")
	require.Contains(t, fs.Lookup("store-gateway.client.read-timeout").Usage, "store-gateway")
}
