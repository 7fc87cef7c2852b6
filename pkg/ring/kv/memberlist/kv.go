// Package memberlist is a kv.Client backend without a central store: every process keeps every value and
// changes spread by gossip (hashicorp/memberlist). Values are CRDTs (kv.Mergeable), so members that receive
// changes in different orders still converge. It is the ring store of a multi-process cluster without etcd.
package memberlist

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hashicorp "github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/services"
)

// KV is one process's member of the gossip cluster and its copy of every value. One KV serves all users
// in the process (the ingester ring, the distributor ring...), each through Client with its own codec and
// keys. Create it with NewKV, then Start it.
type KV struct {
	cfg      Config
	nodeName string
	logger   *slog.Logger
	metrics  *metrics

	// now and lookupHost are replaced in tests.
	now        func() time.Time
	lookupHost func(ctx context.Context, host string) ([]string, error)

	codecsMu sync.RWMutex
	codecs   map[string]kv.Codec

	casMu  sync.Mutex // serialises local CAS calls; gossip merges only take mu
	mu     sync.Mutex // guards values
	values map[string]*entry

	broadcasts       *gossipQueue
	largeMessages    chan []byte
	maxPacketMessage int // larger changes go over TCP

	ml atomic.Pointer[hashicorp.Memberlist]

	// serverTLS and clientTLS are set with -memberlist.tls-enabled: gossip then goes over the TCP transport.
	serverTLS        *tls.Config
	clientTLS        func(host string) *tls.Config
	transportMetrics *transportMetrics
	// transportTimeout bounds the TCP transport's handshakes and reads; memberlist's TCPTimeout by default.
	transportTimeout time.Duration

	lifecycleMu sync.Mutex
	started     bool
	stopped     bool
	// shuttingDown tells the memberlist log writer that sockets are being closed on purpose.
	shuttingDown atomic.Bool
	cancelJoin   context.CancelFunc
	stop         chan struct{}
	background   sync.WaitGroup
}

var _ services.Service = (*KV)(nil)

// NewKV returns a KV that decodes received values with codecs (more can be added by Client). Nothing
// listens until Start.
func NewKV(cfg Config, codecs []kv.Codec, reg prometheus.Registerer, logger *slog.Logger) (*KV, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	name := cfg.NodeName
	if name == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("memberlist: no -memberlist.nodename and no hostname: %w", err)
		}
		name = host
	}
	if cfg.RandomizeNodeName {
		name += "-" + strings.ToLower(rand.Text()[:8])
	}
	k := &KV{
		cfg:              cfg,
		nodeName:         name,
		logger:           logger.With("component", "memberlist"),
		now:              time.Now,
		lookupHost:       net.DefaultResolver.LookupHost,
		codecs:           map[string]kv.Codec{},
		values:           map[string]*entry{},
		largeMessages:    make(chan []byte, largeQueueSize),
		maxPacketMessage: hashicorp.DefaultLANConfig().UDPBufferSize - packetOverhead,
		stop:             make(chan struct{}),
	}
	k.broadcasts = &gossipQueue{
		numNodes: func() int { return max(k.numMembers(), 1) },
		factor:   cfg.RetransmitFactor,
	}
	for _, c := range codecs {
		k.addCodec(c)
	}
	var err error
	if k.serverTLS, k.clientTLS, err = cfg.tlsConfigs(); err != nil {
		return nil, err
	}
	k.transportTimeout = hashicorp.DefaultLANConfig().TCPTimeout
	m, err := newMetrics(k, reg)
	if err != nil {
		return nil, err
	}
	k.metrics = m
	k.transportMetrics = m.transport
	return k, nil
}

// Client returns a kv.Client for values of codec, registering codec so values received for it decode.
// Keys are shared by all clients; a key holds values of one codec only.
func (k *KV) Client(codec kv.Codec) kv.Client {
	k.addCodec(codec)
	return &client{kv: k, codec: codec}
}

func (k *KV) addCodec(c kv.Codec) {
	k.codecsMu.Lock()
	defer k.codecsMu.Unlock()
	if _, ok := k.codecs[c.Name()]; !ok {
		k.codecs[c.Name()] = c
	}
}

func (k *KV) codec(name string) kv.Codec {
	k.codecsMu.RLock()
	defer k.codecsMu.RUnlock()
	return k.codecs[name]
}

// NodeName is this member's name in the cluster.
func (k *KV) NodeName() string { return k.nodeName }

// Addr is the host:port other members reach this one at, with the actual port when -memberlist.bind-port
// is 0. It is empty before Start.
func (k *KV) Addr() string {
	ml := k.ml.Load()
	if ml == nil {
		return ""
	}
	return ml.LocalNode().Address()
}

// numMembers counts alive members, this one included; 0 before Start.
func (k *KV) numMembers() int {
	ml := k.ml.Load()
	if ml == nil {
		return 0
	}
	return ml.NumMembers()
}

// Start implements services.Service: it listens for gossip and starts joining -memberlist.join. Unless
// -memberlist.abort-if-join-fails is set, it returns before any member answers and keeps trying in the
// background, so a process can start before the others.
func (k *KV) Start(ctx context.Context) error {
	k.lifecycleMu.Lock()
	defer k.lifecycleMu.Unlock()
	if k.started {
		return errors.New("memberlist: KV already started")
	}
	mlCfg := k.memberlistConfig()
	if k.cfg.TLS.Enabled {
		t, err := newTCPTransport(transportConfig{
			bindAddr: mlCfg.BindAddr, bindPort: mlCfg.BindPort, serverTLS: k.serverTLS, clientTLS: k.clientTLS,
			timeout: k.transportTimeout, idleTimeout: time.Minute, maxConnAge: 10 * time.Minute,
		}, k.transportMetrics, k.logger)
		if err != nil {
			return fmt.Errorf("memberlist: listen on %s:%d: %w", k.cfg.BindAddr, k.cfg.BindPort, err)
		}
		mlCfg.Transport = t
	}
	ml, err := hashicorp.Create(mlCfg)
	if err != nil {
		if mlCfg.Transport != nil {
			_ = mlCfg.Transport.Shutdown()
		}
		return fmt.Errorf("memberlist: listen on %s:%d: %w", k.cfg.BindAddr, k.cfg.BindPort, err)
	}
	k.started = true
	k.ml.Store(ml)
	k.background.Go(func() { k.sendLargeMessages(k.stop) })
	k.background.Go(func() { k.runTombstoneRemoval(k.stop) })
	k.logger.Info("gossip started", "node", k.nodeName, "addr", ml.LocalNode().Address())

	if len(k.cfg.Join) == 0 {
		return nil
	}
	if k.cfg.AbortIfJoinFails {
		if err := k.joinWithRetries(ctx); err != nil {
			// Report a failure to shut down too: it can leave the gossip port bound.
			return errors.Join(
				fmt.Errorf("memberlist: join cluster (-memberlist.abort-if-join-fails is set): %w", err),
				k.shutdownLocked(context.Background()))
		}
		return nil
	}
	joinCtx, cancel := context.WithCancel(context.Background())
	k.cancelJoin = cancel
	k.background.Go(func() {
		if err := k.joinWithRetries(joinCtx); err != nil && joinCtx.Err() == nil {
			k.logger.Error("giving up joining the cluster", "err", err)
		}
	})
	return nil
}

func (k *KV) memberlistConfig() *hashicorp.Config {
	c := hashicorp.DefaultLANConfig()
	c.Name = k.nodeName
	c.BindAddr = k.cfg.BindAddr
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	c.BindPort = k.cfg.BindPort
	c.AdvertiseAddr = k.cfg.AdvertiseAddr
	c.AdvertisePort = k.cfg.AdvertisePort
	if c.AdvertisePort == 0 {
		c.AdvertisePort = k.cfg.BindPort
	}
	c.GossipInterval = k.cfg.GossipInterval
	c.GossipNodes = k.cfg.GossipNodes
	c.PushPullInterval = k.cfg.PushPullInterval
	c.RetransmitMult = k.cfg.RetransmitFactor
	c.Delegate = &delegate{kv: k}
	c.Logger = newMemberlistLogger(k.logger, &k.shuttingDown)
	return c
}

// joinWithRetries contacts the configured members until one answers, backing off exponentially.
func (k *KV) joinWithRetries(ctx context.Context) error {
	backoff := k.cfg.MinJoinBackoff
	for attempt := 1; ; attempt++ {
		n, err := k.joinOnce(ctx)
		if err == nil {
			k.logger.Info("joined cluster", "contacted", n, "members", k.numMembers())
			return nil
		}
		if k.cfg.MaxJoinRetries > 0 && attempt >= k.cfg.MaxJoinRetries {
			return fmt.Errorf("no member answered after %d attempts: %w", attempt, err)
		}
		k.logger.Warn("joining cluster failed, will retry", "attempt", attempt, "backoff", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, k.cfg.MaxJoinBackoff)
	}
}

// joinOnce resolves the configured members and contacts all of them; one answer is enough.
func (k *KV) joinOnce(ctx context.Context) (int, error) {
	addrs, err := k.resolveJoinAddresses(ctx)
	if len(addrs) == 0 {
		return 0, fmt.Errorf("no address to join: %w", err)
	}
	ml := k.ml.Load()
	n, joinErr := ml.Join(addrs)
	if n == 0 {
		return 0, errors.Join(joinErr, err)
	}
	return n, nil
}

// resolveJoinAddresses turns -memberlist.join into IP:port addresses. A name that does not resolve is
// skipped (and reported) so the others are still tried.
func (k *KV) resolveJoinAddresses(ctx context.Context) ([]string, error) {
	var addrs []string
	var errs []error
	for _, a := range k.cfg.Join {
		ja, err := splitJoinAddress(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if net.ParseIP(ja.host) != nil {
			addrs = append(addrs, net.JoinHostPort(ja.host, ja.port))
			continue
		}
		ips, err := k.lookupHost(ctx, ja.host)
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve %s: %w", ja.host, err))
			continue
		}
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip, ja.port))
		}
	}
	return addrs, errors.Join(errs...)
}

// Stop implements services.Service: it waits (up to -memberlist.leave-timeout) for queued changes to go
// out, so the last CAS of a stopping ingester reaches the others, then leaves the cluster gracefully, so
// the others drop this member at once instead of suspecting it first.
func (k *KV) Stop(ctx context.Context) error {
	k.lifecycleMu.Lock()
	defer k.lifecycleMu.Unlock()
	if !k.started || k.stopped {
		return nil
	}
	return k.shutdownLocked(ctx)
}

func (k *KV) shutdownLocked(ctx context.Context) error {
	k.stopped = true
	if k.cancelJoin != nil {
		k.cancelJoin()
	}
	ml := k.ml.Load()
	k.waitForBroadcasts(ctx)
	if err := ml.Leave(k.cfg.LeaveTimeout); err != nil {
		k.logger.Warn("leaving cluster", "err", err)
	}
	k.shuttingDown.Store(true)
	err := ml.Shutdown()
	close(k.stop)
	done := make(chan struct{})
	go func() { k.background.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("memberlist: stop: %w", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("memberlist: shut down: %w", err)
	}
	k.logger.Info("left cluster", "node", k.nodeName)
	return nil
}

// waitForBroadcasts polls until the gossip and TCP send queues are empty, the leave timeout passes, or
// no other member is left to send to.
func (k *KV) waitForBroadcasts(ctx context.Context) {
	deadline := time.NewTimer(k.cfg.LeaveTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(k.cfg.GossipInterval)
	defer tick.Stop()
	for k.numMembers() > 1 && (k.broadcasts.len() > 0 || len(k.largeMessages) > 0) {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			k.logger.Warn("stopping with changes not yet sent", "queued", k.broadcasts.len())
			return
		case <-tick.C:
		}
	}
}
