package memberlist

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	hashicorp "github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// The TCP transport replaces memberlist's UDP packets and TCP streams with TCP connections only, so that
// all gossip can go through TLS. A connection starts (after the TLS handshake) with one byte saying what
// it carries: a stream, handed to memberlist as is, or packets, each a 4-byte big-endian length and that
// many bytes. Packet connections are kept open and reused, so a gossip packet does not cost a handshake.
const (
	connKindPacket byte = 'P'
	connKindStream byte = 'S'

	// maxPacketSize bounds a received packet (memberlist's own are under its UDPBufferSize, 1400 bytes),
	// and so what one lying length prefix can make us allocate.
	maxPacketSize = 64 << 10
	// packetQueueSize bounds the packets waiting for one peer; beyond it they are dropped, as UDP would.
	packetQueueSize = 128
	// defaultMaxInboundConns bounds the connections served at once; more are closed as they arrive. A
	// member keeps one packet connection to each peer it talks to, so this is the largest cluster served.
	defaultMaxInboundConns = 1024
)

// transportConfig is what the TCP transport needs; the TLS configurations are nil for plain TCP.
type transportConfig struct {
	bindAddr  string
	bindPort  int
	serverTLS *tls.Config
	// clientTLS makes the TLS configuration of a connection to host; nil for plain TCP.
	clientTLS func(host string) *tls.Config
	// timeout bounds a dial with its handshake, an accepted connection's handshake and kind byte, a
	// packet's write, and a packet's read once its length has arrived.
	timeout time.Duration
	// idleTimeout closes a sender's unused packet connection; receivers wait twice as long, so the
	// sender is the one that closes and knows to dial again.
	idleTimeout time.Duration
	// maxConnAge is how long a packet connection is used before the sender dials a new one, so a
	// rotated certificate or CA also applies to peers that talk without pause; receivers close those
	// older than twice this.
	maxConnAge time.Duration
	maxInbound int
}

// transportMetrics count what the transport refuses or drops.
type transportMetrics struct {
	rejectedConns  *prometheus.CounterVec
	droppedPackets prometheus.Counter
}

func newTransportMetrics() *transportMetrics {
	m := &transportMetrics{
		rejectedConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_memberlist_tcp_transport_rejected_connections_total",
			Help: "Inbound gossip connections closed by the TCP transport (-memberlist.tls-enabled): limit (too many open), tls (failed handshake, e.g. a certificate from another CA), protocol (garbage, an oversized packet, or nothing sent in time).",
		}, []string{"reason"}),
		droppedPackets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_memberlist_tcp_transport_dropped_packets_total",
			Help: "Gossip packets not sent by the TCP transport: the peer's queue was full or it could not be reached.",
		}),
	}
	for _, r := range []string{rejectLimit, rejectTLS, rejectProtocol} {
		m.rejectedConns.WithLabelValues(r)
	}
	return m
}

const (
	rejectLimit    = "limit"
	rejectTLS      = "tls"
	rejectProtocol = "protocol"
)

// tcpTransport is a hashicorp.NodeAwareTransport over TCP, with TLS when configured. Every member both
// serves and dials with the same certificate.
type tcpTransport struct {
	cfg      transportConfig
	logger   *slog.Logger
	metrics  *transportMetrics
	listener *net.TCPListener
	packetCh chan *hashicorp.Packet
	streamCh chan net.Conn
	// inbound holds a token per inbound connection open (a stream holds its token until memberlist closes it).
	inbound chan struct{}
	done    chan struct{}
	// dialCtx is cancelled by Shutdown, so that a dial to a peer that does not answer does not hold it up.
	dialCtx    context.Context
	cancelDial context.CancelFunc
	wg         sync.WaitGroup
	// lastWarn rate-limits the warnings about refused connections, which a hostile peer could flood.
	lastWarn atomic.Int64

	mu      sync.Mutex
	closed  bool
	conns   map[net.Conn]struct{} // inbound connections being served, closed by Shutdown
	senders map[string]*packetSender
}

var _ hashicorp.NodeAwareTransport = (*tcpTransport)(nil)

// packetSender owns the packet connection to one peer address and sends its queue in order.
type packetSender struct {
	addr  string
	queue chan []byte
	// conn and dialled are used by the sender's goroutine only.
	conn    net.Conn
	dialled time.Time
}

// newTCPTransport listens on cfg's address and starts accepting connections.
func newTCPTransport(cfg transportConfig, m *transportMetrics, logger *slog.Logger) (*tcpTransport, error) {
	if cfg.maxInbound <= 0 {
		cfg.maxInbound = defaultMaxInboundConns
	}
	ip := net.ParseIP(cfg.bindAddr)
	if cfg.bindAddr != "" && ip == nil {
		return nil, fmt.Errorf("bind address %q is not an IP address", cfg.bindAddr)
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: cfg.bindPort})
	if err != nil {
		return nil, err
	}
	t := &tcpTransport{
		cfg:      cfg,
		logger:   logger,
		metrics:  m,
		listener: ln,
		packetCh: make(chan *hashicorp.Packet),
		streamCh: make(chan net.Conn),
		inbound:  make(chan struct{}, cfg.maxInbound),
		done:     make(chan struct{}),
		conns:    map[net.Conn]struct{}{},
		senders:  map[string]*packetSender{},
	}
	t.dialCtx, t.cancelDial = context.WithCancel(context.Background())
	t.wg.Go(t.accept)
	return t, nil
}

// FinalAdvertiseAddr implements hashicorp.Transport: the configured address, else the bound one (a
// private address of this machine when bound to all), with the bound port unless one is configured.
func (t *tcpTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	bound := t.listener.Addr().(*net.TCPAddr)
	if port == 0 {
		port = bound.Port
	}
	if ip != "" {
		parsed := net.ParseIP(ip)
		if parsed == nil {
			return nil, 0, fmt.Errorf("advertise address %q is not an IP address", ip)
		}
		if v4 := parsed.To4(); v4 != nil {
			parsed = v4
		}
		return parsed, port, nil
	}
	if !bound.IP.IsUnspecified() {
		return bound.IP, port, nil
	}
	private, err := privateIP()
	if err != nil {
		return nil, 0, err
	}
	return private, port, nil
}

// privateIP is the first private IPv4 address of this machine's interfaces.
func privateIP() (net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.IsPrivate() && n.IP.To4() != nil {
			return n.IP.To4(), nil
		}
	}
	return nil, errors.New("no private IPv4 address to advertise; set -memberlist.advertise-addr")
}

// WriteTo implements hashicorp.Transport.
func (t *tcpTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, hashicorp.Address{Addr: addr})
}

// WriteToAddress implements hashicorp.NodeAwareTransport. It queues the packet for the peer's sender and
// returns at once, as a UDP send would: a slow or unreachable peer must not hold up gossip to the others.
func (t *tcpTransport) WriteToAddress(b []byte, a hashicorp.Address) (time.Time, error) {
	if len(b) == 0 || len(b) > maxPacketSize {
		return time.Time{}, fmt.Errorf("packet of %d bytes: must be 1 to %d", len(b), maxPacketSize)
	}
	frame := make([]byte, 4+len(b)) // a copy: memberlist may reuse b once this returns
	binary.BigEndian.PutUint32(frame, uint32(len(b)))
	copy(frame[4:], b)

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return time.Time{}, net.ErrClosed
	}
	s := t.senders[a.Addr]
	if s == nil {
		s = &packetSender{addr: a.Addr, queue: make(chan []byte, packetQueueSize)}
		t.senders[a.Addr] = s
		t.wg.Go(func() { t.sendPackets(s) })
	}
	select {
	case s.queue <- frame:
	default:
		t.metrics.droppedPackets.Inc()
	}
	return time.Now(), nil
}

// sendPackets writes s's queue on one connection, until the transport shuts down or the queue stays empty
// for the idle timeout.
func (t *tcpTransport) sendPackets(s *packetSender) {
	defer s.closeConn()
	idle := time.NewTimer(t.cfg.idleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-t.done:
			return
		case frame := <-s.queue:
			t.sendPacket(s, frame)
			idle.Reset(t.cfg.idleTimeout)
		case <-idle.C:
			// Queueing happens under mu, so an empty queue seen under mu stays empty once s is gone.
			t.mu.Lock()
			if len(s.queue) == 0 {
				delete(t.senders, s.addr)
				t.mu.Unlock()
				return
			}
			t.mu.Unlock()
			idle.Reset(t.cfg.idleTimeout)
		}
	}
}

// sendPacket writes frame on s's connection, dialling a new one when there is none or it has reached its
// age, and once more if the write fails (the peer restarted, or closed an idle connection).
func (t *tcpTransport) sendPacket(s *packetSender, frame []byte) {
	if s.conn != nil && time.Since(s.dialled) >= t.cfg.maxConnAge {
		s.closeConn()
	}
	for range 2 {
		if s.conn == nil {
			c, err := t.dial(s.addr, connKindPacket, t.cfg.timeout)
			if err != nil {
				t.metrics.droppedPackets.Inc()
				t.logger.Debug("gossip packet not sent", "peer", s.addr, "err", err)
				return
			}
			s.conn, s.dialled = c, time.Now()
		}
		if err := s.conn.SetWriteDeadline(time.Now().Add(t.cfg.timeout)); err == nil {
			if _, err := s.conn.Write(frame); err == nil {
				return
			}
		}
		s.closeConn()
	}
	t.metrics.droppedPackets.Inc()
}

func (s *packetSender) closeConn() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// PacketCh implements hashicorp.Transport.
func (t *tcpTransport) PacketCh() <-chan *hashicorp.Packet { return t.packetCh }

// DialTimeout implements hashicorp.Transport.
func (t *tcpTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.dial(addr, connKindStream, timeout)
}

// DialAddressTimeout implements hashicorp.NodeAwareTransport.
func (t *tcpTransport) DialAddressTimeout(a hashicorp.Address, timeout time.Duration) (net.Conn, error) {
	return t.dial(a.Addr, connKindStream, timeout)
}

// dial connects to addr, completes the TLS handshake and says what the connection carries, all within
// timeout. Without -memberlist.tls-server-name, the peer's certificate must name the address dialled.
func (t *tcpTransport) dial(addr string, kind byte, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(t.dialCtx, timeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := raw
	if t.cfg.clientTLS != nil {
		host, _, _ := net.SplitHostPort(addr)
		conn = tls.Client(raw, t.cfg.clientTLS(host))
	}
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		_ = raw.Close()
		return nil, err
	}
	if tc, ok := conn.(*tls.Conn); ok {
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
	}
	if _, err := conn.Write([]byte{kind}); err != nil {
		_ = raw.Close()
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return conn, nil
}

// StreamCh implements hashicorp.Transport.
func (t *tcpTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown implements hashicorp.Transport: it stops listening, closes the connections it serves and its
// packet connections, and waits for its goroutines. Streams handed to memberlist are memberlist's to close.
func (t *tcpTransport) Shutdown() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	t.cancelDial()
	err := t.listener.Close()
	for c := range t.conns {
		_ = c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return err
}

// accept serves inbound connections until the listener is closed, refusing those beyond the limit.
func (t *tcpTransport) accept() {
	backoff := 5 * time.Millisecond
	for {
		conn, err := t.listener.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			// Out of file descriptors, most likely: wait rather than spin.
			t.logger.Error("accepting gossip connection", "err", err)
			select {
			case <-t.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case t.inbound <- struct{}{}:
		default:
			// Counted before the close, which the peer sees at once.
			t.reject(rejectLimit, conn, errors.New("too many gossip connections open"))
			_ = conn.Close()
			continue
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = conn.Close()
			return
		}
		t.conns[conn] = struct{}{}
		t.mu.Unlock()
		t.wg.Go(func() { t.serve(conn) })
	}
}

// serve reads what an inbound connection carries: a stream is handed to memberlist, packets are read
// here. Until then the connection has t.cfg.timeout to finish its handshake and send its kind byte.
func (t *tcpTransport) serve(raw net.Conn) {
	release := sync.OnceFunc(func() { <-t.inbound })
	handedOff := false
	defer func() {
		t.mu.Lock()
		delete(t.conns, raw)
		t.mu.Unlock()
		if !handedOff {
			_ = raw.Close()
			release()
		}
	}()
	conn := raw
	if err := conn.SetDeadline(time.Now().Add(t.cfg.timeout)); err != nil {
		return
	}
	if t.cfg.serverTLS != nil {
		tc := tls.Server(raw, t.cfg.serverTLS)
		if err := tc.Handshake(); err != nil {
			t.reject(rejectTLS, raw, err)
			return
		}
		conn = tc
	}
	var kind [1]byte
	if _, err := io.ReadFull(conn, kind[:]); err != nil {
		t.reject(rejectProtocol, raw, fmt.Errorf("no connection kind received: %w", err))
		return
	}
	switch kind[0] {
	case connKindStream:
		// memberlist sets its own deadlines on the streams it handles.
		if err := conn.SetDeadline(time.Time{}); err != nil {
			return
		}
		select {
		case t.streamCh <- &releasingConn{Conn: conn, release: release}:
			handedOff = true
		case <-t.done:
		}
	case connKindPacket:
		t.readPackets(conn, raw)
	default:
		t.reject(rejectProtocol, raw, fmt.Errorf("unknown connection kind %#x", kind[0]))
	}
}

// readPackets passes the packets of conn to memberlist until the peer closes it, stays idle too long, or
// sends a length out of bounds.
func (t *tcpTransport) readPackets(conn, raw net.Conn) {
	var length [4]byte
	expires := time.Now().Add(2 * t.cfg.maxConnAge)
	for time.Now().Before(expires) {
		if err := conn.SetReadDeadline(time.Now().Add(2 * t.cfg.idleTimeout)); err != nil {
			return
		}
		if _, err := io.ReadFull(conn, length[:]); err != nil {
			return // closed by the peer, idle, or shut down: nothing wrong
		}
		n := binary.BigEndian.Uint32(length[:])
		if n == 0 || n > maxPacketSize {
			t.reject(rejectProtocol, raw, fmt.Errorf("packet length %d is not in 1..%d", n, maxPacketSize))
			return
		}
		if err := conn.SetReadDeadline(time.Now().Add(t.cfg.timeout)); err != nil {
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(conn, buf); err != nil {
			t.reject(rejectProtocol, raw, fmt.Errorf("packet of %d bytes cut short: %w", n, err))
			return
		}
		select {
		case t.packetCh <- &hashicorp.Packet{Buf: buf, From: raw.RemoteAddr(), Timestamp: time.Now()}:
		case <-t.done:
			return
		}
	}
}

// reject counts a refused connection and logs it, at most one warning every 10 seconds.
func (t *tcpTransport) reject(reason string, conn net.Conn, err error) {
	t.metrics.rejectedConns.WithLabelValues(reason).Inc()
	now := time.Now().UnixNano()
	last := t.lastWarn.Load()
	level := slog.LevelDebug
	if now-last >= int64(10*time.Second) && t.lastWarn.CompareAndSwap(last, now) {
		level = slog.LevelWarn
	}
	t.logger.Log(context.Background(), level, "gossip connection refused", "reason", reason, "peer", conn.RemoteAddr().String(), "err", err)
}

// releasingConn gives back its inbound token when memberlist closes it.
type releasingConn struct {
	net.Conn
	release func()
}

// Close implements net.Conn.
func (c *releasingConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
