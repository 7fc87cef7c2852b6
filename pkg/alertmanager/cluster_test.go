package alertmanager

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertmanagerpb"
	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// testRing places every tenant on the same replicas, in a fixed order, as the app's ring does when
// it has as many instances as the replication factor. A dead replica is left out of Replicas, as the
// ring leaves one out once its heartbeats are late; an unreachable one stays in but cannot be called.
// Each change bumps the version.
type testRing struct {
	mtx         sync.Mutex
	addrs       []string
	dead        map[string]bool
	unreachable map[string]bool
	conns       map[string]*grpc.ClientConn
	version     atomic.Uint64
}

func newTestRing(t *testing.T) *testRing {
	r := &testRing{dead: map[string]bool{}, unreachable: map[string]bool{}, conns: map[string]*grpc.ClientConn{}}
	t.Cleanup(r.closeConns)
	return r
}

func (r *testRing) change(f func()) {
	r.mtx.Lock()
	f()
	r.mtx.Unlock()
	r.version.Add(1)
}

func (r *testRing) set(addrs ...string)  { r.change(func() { r.addrs = addrs }) }
func (r *testRing) markDead(addr string) { r.change(func() { r.dead[addr] = true }) }

// replace puts addr in old's place, as a restarted instance with a new address takes its tokens.
func (r *testRing) replace(old, addr string) {
	r.change(func() { r.addrs[slices.Index(r.addrs, old)] = addr })
}

func (r *testRing) setUnreachable(addr string, unreachable bool) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	r.unreachable[addr] = unreachable
}

func (r *testRing) closeConns() {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	for addr, conn := range r.conns {
		_ = conn.Close()
		delete(r.conns, addr)
	}
}

// view is the ring as the instance at self sees it.
func (r *testRing) view(self string) Replication { return ringView{ring: r, self: self} }

type ringView struct {
	ring *testRing
	self string
}

func (v ringView) Replicas(string) ([]string, int, error) {
	v.ring.mtx.Lock()
	defer v.ring.mtx.Unlock()
	var alive []string
	for _, addr := range v.ring.addrs {
		if !v.ring.dead[addr] {
			alive = append(alive, addr)
		}
	}
	return alive, slices.Index(alive, v.self), nil
}

// Client dials as the app's client pool does: the tenant of the context goes in the metadata.
func (v ringView) Client(addr string) (alertmanagerpb.AlertmanagerClient, error) {
	v.ring.mtx.Lock()
	defer v.ring.mtx.Unlock()
	if v.ring.unreachable[addr] {
		return nil, errors.New("unreachable")
	}
	conn := v.ring.conns[addr]
	if conn == nil {
		var err error
		conn, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithUnaryInterceptor(tenant.UnaryClientInterceptor))
		if err != nil {
			return nil, err
		}
		v.ring.conns[addr] = conn
	}
	return alertmanagerpb.NewAlertmanagerClient(conn), nil
}

func (v ringView) Version() uint64 { return v.ring.version.Load() }

// cluster is Alertmanagers over one bucket, each serving its gRPC API on loopback, placed by a
// testRing.
type cluster struct {
	t     *testing.T
	bkt   objstore.Bucket
	cfg   Config
	ring  *testRing
	nodes []*node
}

// node is one Alertmanager of a cluster.
type node struct {
	*harness
	addr string
	srv  *grpc.Server
	bkt  *killableBucket
}

// newCluster starts n Alertmanagers that are the replicas of every tenant, in the order of nodes.
func newCluster(t *testing.T, n int, cfg Config) *cluster {
	c := &cluster{t: t, bkt: objstore.NewInMemBucket(), cfg: cfg, ring: newTestRing(t)}
	listeners := make([]net.Listener, n)
	addrs := make([]string, n)
	for i := range listeners {
		listeners[i] = listen(t)
		addrs[i] = listeners[i].Addr().String()
	}
	c.ring.set(addrs...)
	for _, lis := range listeners {
		c.nodes = append(c.nodes, c.startNode(lis))
	}
	return c
}

func listen(t *testing.T) net.Listener {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return lis
}

// startNode starts an Alertmanager whose gRPC API is served on lis from before its start, as the app
// serves it.
func (c *cluster) startNode(lis net.Listener) *node {
	n := &node{addr: lis.Addr().String(), bkt: &killableBucket{Bucket: c.bkt}}
	n.srv = grpc.NewServer(grpc.UnaryInterceptor(tenant.UnaryServerInterceptor))
	cfg := c.cfg
	cfg.DataDir = c.t.TempDir()
	n.harness = newHarnessWith(c.t, n.bkt, cfg, func(am *MultitenantAlertmanager) {
		am.Replication = c.ring.view(n.addr)
		alertmanagerpb.RegisterAlertmanagerServer(n.srv, am)
		go func() { _ = n.srv.Serve(lis) }()
	})
	c.t.Cleanup(n.srv.Stop)
	return n
}

// restart replaces the killed node i with a new one at a new address, in its place in the ring.
func (c *cluster) restart(i int) *node {
	lis := listen(c.t)
	c.ring.replace(c.nodes[i].addr, lis.Addr().String())
	c.nodes[i] = c.startNode(lis)
	return c.nodes[i]
}

// kill stops n as a crash would: its gRPC server goes at once, and nothing it holds reaches the
// bucket. The ring still lists it until markDead.
func (n *node) kill() {
	n.srv.Stop()
	n.bkt.dead.Store(true)
	n.stop()
}

// setConfig stores cfg for tenantID through the first node's configuration API and syncs every node.
func (c *cluster) setConfig(tenantID string, cfg alertstore.AlertConfig) {
	c.t.Helper()
	c.nodes[0].setConfig(tenantID, cfg)
	for _, n := range c.nodes[1:] {
		require.NoError(c.t, n.am.SyncConfigs(context.Background()))
	}
}

// killableBucket refuses every write once dead.
type killableBucket struct {
	objstore.Bucket
	dead atomic.Bool
}

var errKilled = errors.New("the process was killed")

func (b *killableBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	if b.dead.Load() {
		return errKilled
	}
	return b.Bucket.Upload(ctx, name, r, opts...)
}

func (b *killableBucket) Delete(ctx context.Context, name string) error {
	if b.dead.Load() {
		return errKilled
	}
	return b.Bucket.Delete(ctx, name)
}
