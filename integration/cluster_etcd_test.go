package integration

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startEmbeddedEtcd runs a one-member etcd inside the test process on 127.0.0.1 and returns its client URL.
func startEmbeddedEtcd(t *testing.T) string {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "strata-test"
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true // thrown away after the test
	clientURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + itoa(freePort(t))}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:" + itoa(freePort(t))}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peerURL}, []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("etcd failed to start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("etcd did not become ready within a minute")
	}
	return clientURL.String()
}

// TestCluster_Etcd runs the ring in a real etcd: the ring converges and a killed ingester costs no push
// and no query.
func TestCluster_Etcd(t *testing.T) {
	endpoint := startEmbeddedEtcd(t)
	c := startCluster(t, clusterOptions{ingesters: 3, etcdEndpoint: endpoint})
	// startCluster waited for the distributor and the querier to see all three ingesters ACTIVE.
	testKillAndRestart(t, c)
}

func itoa(i int) string { return strconv.Itoa(i) }
