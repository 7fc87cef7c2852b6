package memberlist

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	hashicorp "github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/tlsconfig/tlstest"
)

func tlsTestConfig(t testing.TB, ca *tlstest.CA, name string) Config {
	cfg := testConfig()
	cfg.TLS.Enabled = true
	cfg.TLS.CertPath, cfg.TLS.KeyPath = ca.Issue(t, name, name)
	cfg.TLS.CAPath = ca.CertPath
	return cfg
}

// startTLSCluster starts n members over TLS, each with its own certificate from ca, all joining the first.
func startTLSCluster(t *testing.T, ca *tlstest.CA, n int) []*KV {
	t.Helper()
	kvs := []*KV{startKV(t, tlsTestConfig(t, ca, "member-0"))}
	for i := 1; i < n; i++ {
		kvs = append(kvs, startKV(t, tlsTestConfig(t, ca, "member-"+strconv.Itoa(i)), kvs[0].Addr()))
	}
	require.Eventually(t, func() bool {
		for _, k := range kvs {
			if k.numMembers() != n {
				return false
			}
		}
		return true
	}, convergeTimeout, 20*time.Millisecond, "members did not all see each other over TLS")
	return kvs
}

func TestKV_TLSClusterConvergesAndPropagatesChanges(t *testing.T) {
	ca := tlstest.NewCA(t, t.TempDir(), "gossip-ca")
	kvs := startTLSCluster(t, ca, 3)

	require.NoError(t, ringClient(kvs[1]).CAS(context.Background(), ringKey, addInstance("ingester-1")))
	require.Eventually(t, func() bool {
		return converged(t, kvs, func(d *ring.Desc) bool { _, ok := d.Instances["ingester-1"]; return ok })
	}, convergeTimeout, 20*time.Millisecond)
	require.NoError(t, ringClient(kvs[2]).CAS(context.Background(), ringKey, removeInstance("ingester-1")))
	require.Eventually(t, func() bool {
		return converged(t, kvs, func(d *ring.Desc) bool { return d.Instances["ingester-1"].State == ring.LEFT })
	}, convergeTimeout, 20*time.Millisecond)

	for _, k := range kvs {
		rejected := k.transportMetrics.rejectedConns
		require.Zero(t, testutil.ToFloat64(rejected.WithLabelValues(rejectTLS)), "no member refused another")
		require.Zero(t, testutil.ToFloat64(rejected.WithLabelValues(rejectProtocol)))
	}
}

func TestKV_TLSClusterRefusesACertificateFromAnotherCA(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "gossip-ca")
	kvs := startTLSCluster(t, ca, 2)

	// The outsider trusts the cluster's CA, so only its own certificate, from another CA, is wrong.
	other := tlstest.NewCA(t, dir, "other-ca")
	cfg := tlsTestConfig(t, other, "outsider")
	cfg.TLS.CAPath = ca.CertPath
	requireJoinFails(t, cfg, kvs[0].Addr())

	// Counted once the server's handshake returns, which may be just after the joiner saw it fail.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(kvs[0].transportMetrics.rejectedConns.WithLabelValues(rejectTLS)) > 0
	}, 10*time.Second, 10*time.Millisecond)
	for _, k := range kvs {
		require.Equal(t, 2, k.numMembers())
	}
}

func TestKV_TLSClusterRefusesPlainTextMembers(t *testing.T) {
	ca := tlstest.NewCA(t, t.TempDir(), "gossip-ca")
	kvs := startTLSCluster(t, ca, 2)
	requireJoinFails(t, testConfig(), kvs[0].Addr())
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(kvs[0].transportMetrics.rejectedConns.WithLabelValues(rejectTLS)) > 0
	}, 10*time.Second, 10*time.Millisecond, "the plain-text join stream failed the TLS handshake")
	for _, k := range kvs {
		require.Equal(t, 2, k.numMembers())
	}
}

// requireJoinFails starts a member with cfg that must fail to join addr.
func requireJoinFails(t *testing.T, cfg Config, addr string) {
	t.Helper()
	cfg.AbortIfJoinFails = true
	cfg.MaxJoinRetries = 2
	cfg.Join = AddressList{addr}
	k := newTestKV(t, cfg)
	err := k.Start(context.Background())
	require.ErrorContains(t, err, "abort-if-join-fails")
	require.NoError(t, k.Stop(context.Background()))
}

func TestConfig_ValidateTLS(t *testing.T) {
	tests := map[string]struct {
		enabled, insecure bool
		cert, key, ca     string
		wantErr           string
	}{
		"off":                   {},
		"cert key and CA":       {enabled: true, cert: "c", key: "k", ca: "ca"},
		"no CA, insecure":       {enabled: true, cert: "c", key: "k", insecure: true},
		"no certificate":        {enabled: true, ca: "ca", wantErr: "every member is a TLS server"},
		"no CA":                 {enabled: true, cert: "c", key: "k", wantErr: "needs -memberlist.tls-ca-path"},
		"cert without key":      {enabled: true, cert: "c", ca: "ca", wantErr: "-memberlist.tls-cert-path and -memberlist.tls-key-path go together"},
		"paths without enabled": {cert: "c", key: "k", ca: "ca", wantErr: "-memberlist.tls-enabled is false"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.TLS.Enabled, cfg.TLS.InsecureSkipVerify = tc.enabled, tc.insecure
			cfg.TLS.CertPath, cfg.TLS.KeyPath, cfg.TLS.CAPath = tc.cert, tc.key, tc.ca
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestNewKV_TLSFilesAreReadAtStart(t *testing.T) {
	cfg := testConfig()
	cfg.TLS.Enabled, cfg.TLS.CertPath, cfg.TLS.KeyPath, cfg.TLS.CAPath = true, "/nonexistent.crt", "/nonexistent.key", "/nonexistent.ca"
	_, err := NewKV(cfg, nil, nil, nil)
	require.ErrorContains(t, err, "/nonexistent.crt")
}

// startTestTransport starts a transport on 127.0.0.1 with short timeouts, shut down when the test ends.
func startTestTransport(t *testing.T, serverTLS *tls.Config, clientTLS func(string) *tls.Config, maxInbound int) *tcpTransport {
	t.Helper()
	tr, err := newTCPTransport(transportConfig{
		bindAddr: "127.0.0.1", serverTLS: serverTLS, clientTLS: clientTLS,
		timeout: 300 * time.Millisecond, idleTimeout: time.Second, maxConnAge: time.Hour, maxInbound: maxInbound,
	}, newTransportMetrics(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tr.Shutdown()) })
	return tr
}

// requireClosedByPeer waits until the transport closes conn.
func requireClosedByPeer(t *testing.T, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := io.Copy(io.Discard, conn) // nil at EOF; a reset is an error too, but not a timeout
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatalf("connection not closed by the transport: %v", err)
	}
}

// requireNoInbound waits until the transport holds no inbound connection: none was leaked.
func requireNoInbound(t *testing.T, tr *tcpTransport) {
	t.Helper()
	require.Eventually(t, func() bool { return len(tr.inbound) == 0 }, 10*time.Second, 10*time.Millisecond)
}

func TestTCPTransport_PacketsAndStreamsReachTheOtherSide(t *testing.T) {
	a := startTestTransport(t, nil, nil, 0)
	b := startTestTransport(t, nil, nil, 0)
	ip, port, err := b.FinalAdvertiseAddr("", 0)
	require.NoError(t, err)
	bAddr := net.JoinHostPort(ip.String(), strconv.Itoa(port))

	for _, msg := range []string{"first", "second", "third"} {
		_, err := a.WriteTo([]byte(msg), bAddr)
		require.NoError(t, err)
	}
	for _, want := range []string{"first", "second", "third"} {
		select {
		case p := <-b.PacketCh():
			require.Equal(t, want, string(p.Buf), "packets to one peer keep their order")
		case <-time.After(10 * time.Second):
			t.Fatal("packet not received")
		}
	}
	require.Len(t, b.inbound, 1, "the packets shared one connection")

	conn, err := a.DialTimeout(bAddr, time.Second)
	require.NoError(t, err)
	_, err = conn.Write([]byte("stream"))
	require.NoError(t, err)
	select {
	case in := <-b.StreamCh():
		got := make([]byte, 6)
		_, err := io.ReadFull(in, got)
		require.NoError(t, err)
		require.Equal(t, "stream", string(got))
		require.NoError(t, in.Close())
	case <-time.After(10 * time.Second):
		t.Fatal("stream not received")
	}
	require.NoError(t, conn.Close())
}

func TestTCPTransport_DropsHostilePeers(t *testing.T) {
	hugeLength := binary.BigEndian.AppendUint32([]byte{connKindPacket}, 0xFFFFFFFF)
	tests := map[string]struct {
		send       []byte
		wantReason string
	}{
		"garbage kind byte":      {send: []byte("GET / HTTP/1.1\r\n\r\n"), wantReason: rejectProtocol},
		"huge packet length":     {send: hugeLength, wantReason: rejectProtocol},
		"zero packet length":     {send: []byte{connKindPacket, 0, 0, 0, 0}, wantReason: rejectProtocol},
		"length and no payload":  {send: []byte{connKindPacket, 0, 0, 1, 0, 'x'}, wantReason: rejectProtocol},
		"nothing at all":         {send: nil, wantReason: rejectProtocol},
		"plain text to TLS port": {send: []byte{connKindStream, 1, 2, 3}, wantReason: rejectTLS},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var serverTLS *tls.Config
			if tc.wantReason == rejectTLS {
				serverTLS, _ = memberTLS(t)
			}
			tr := startTestTransport(t, serverTLS, nil, 0)
			conn, err := net.Dial("tcp", tr.listener.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			if tc.send != nil {
				_, err = conn.Write(tc.send)
				require.NoError(t, err)
			}
			requireClosedByPeer(t, conn)
			require.Eventually(t, func() bool {
				return testutil.ToFloat64(tr.metrics.rejectedConns.WithLabelValues(tc.wantReason)) == 1
			}, 10*time.Second, 10*time.Millisecond)
			requireNoInbound(t, tr)
			select {
			case p := <-tr.PacketCh():
				t.Fatalf("a packet was passed on: %q", p.Buf)
			default:
			}
		})
	}
}

func TestTCPTransport_AuthenticatedPeerSendingAHugeLengthIsDropped(t *testing.T) {
	serverTLS, clientTLS := memberTLS(t)
	tr := startTestTransport(t, serverTLS, clientTLS, 0)
	client := startTestTransport(t, serverTLS, clientTLS, 0)
	conn, err := client.dial(tr.listener.Addr().String(), connKindPacket, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write(binary.BigEndian.AppendUint32(nil, maxPacketSize+1))
	require.NoError(t, err)
	requireClosedByPeer(t, conn)
	require.Equal(t, 1.0, testutil.ToFloat64(tr.metrics.rejectedConns.WithLabelValues(rejectProtocol)))
	requireNoInbound(t, tr)
}

func TestTCPTransport_RefusesConnectionsBeyondTheLimit(t *testing.T) {
	// A timeout long enough that the two held connections are still open when the third arrives, on a
	// loaded machine too.
	tr, err := newTCPTransport(transportConfig{
		bindAddr: "127.0.0.1", timeout: 2 * time.Second, idleTimeout: time.Second, maxConnAge: time.Hour, maxInbound: 2,
	}, newTransportMetrics(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tr.Shutdown()) })
	addr := tr.listener.Addr().String()
	var held []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		held = append(held, conn)
	}
	require.Eventually(t, func() bool { return len(tr.inbound) == 2 }, 10*time.Second, 10*time.Millisecond)
	extra, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer extra.Close()
	requireClosedByPeer(t, extra)
	require.Equal(t, 1.0, testutil.ToFloat64(tr.metrics.rejectedConns.WithLabelValues(rejectLimit)))
	// The silent ones are closed after the timeout, which frees their places.
	for _, c := range held {
		requireClosedByPeer(t, c)
	}
	requireNoInbound(t, tr)
}

func TestTCPTransport_UnreachablePeerDoesNotBlockWrites(t *testing.T) {
	// A listener that never accepts: dials succeed at the TCP level but the TLS handshake never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	serverTLS, clientTLS := memberTLS(t)
	tr := startTestTransport(t, serverTLS, clientTLS, 0)
	start := time.Now()
	for range packetQueueSize + 10 {
		_, err := tr.WriteToAddress([]byte("ping"), hashicorp.Address{Addr: l.Addr().String()})
		require.NoError(t, err)
	}
	require.Less(t, time.Since(start), time.Second, "WriteTo queues and returns")
	require.Eventually(t, func() bool { return testutil.ToFloat64(tr.metrics.droppedPackets) >= 10 },
		10*time.Second, 10*time.Millisecond, "the packets beyond the queue are dropped")
}

// memberTLS returns the server and client TLS of a member with a certificate from a fresh CA.
func memberTLS(t testing.TB) (server *tls.Config, client func(string) *tls.Config) {
	t.Helper()
	cfg := tlsTestConfig(t, tlstest.NewCA(t, t.TempDir(), "ca"), "member")
	server, client, err := cfg.tlsConfigs()
	require.NoError(t, err)
	return server, client
}

func TestTCPTransport_RotatedCertificateAppliesToBusyConnections(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	untrusted := tlstest.NewCA(t, dir, "untrusted")
	tlsOf := func(name string) (server *tls.Config, client func(string) *tls.Config) {
		cfg := testConfig()
		cfg.TLS.Enabled, cfg.TLS.CAPath = true, ca.CertPath
		cfg.TLS.CertPath, cfg.TLS.KeyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		server, client, err := cfg.tlsConfigs()
		require.NoError(t, err)
		return server, client
	}
	ca.Issue(t, "receiver", "receiver")
	ca.Issue(t, "sender", "sender")
	receiverServer, receiverClient := tlsOf("receiver")
	receiver := startTestTransport(t, receiverServer, receiverClient, 0)
	senderServer, senderClient := tlsOf("sender")
	sender, err := newTCPTransport(transportConfig{
		bindAddr: "127.0.0.1", serverTLS: senderServer, clientTLS: senderClient,
		timeout: time.Second, idleTimeout: time.Hour, maxConnAge: 200 * time.Millisecond,
	}, newTransportMetrics(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sender.Shutdown()) })
	to := receiver.listener.Addr().String()

	_, err = sender.WriteTo([]byte("before"), to)
	require.NoError(t, err)
	select {
	case p := <-receiver.PacketCh():
		require.Equal(t, "before", string(p.Buf))
	case <-time.After(10 * time.Second):
		t.Fatal("packet not received")
	}

	// The sender's certificate is replaced by one the receiver does not trust; the sender keeps talking.
	untrusted.Issue(t, "sender", "sender")
	rejected := func() float64 { return testutil.ToFloat64(receiver.metrics.rejectedConns.WithLabelValues(rejectTLS)) }
	require.Eventually(t, func() bool {
		_, err := sender.WriteTo([]byte("after"), to)
		require.NoError(t, err)
		return rejected() >= 1
	}, 10*time.Second, 20*time.Millisecond, "the busy connection was never replaced by one with the new certificate")
}

func TestTCPTransport_ShutdownDoesNotWaitForADialToASilentPeer(t *testing.T) {
	// A listener that never accepts: the TCP connection succeeds, the TLS handshake never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	serverTLS, clientTLS := memberTLS(t)
	tr, err := newTCPTransport(transportConfig{
		bindAddr: "127.0.0.1", serverTLS: serverTLS, clientTLS: clientTLS,
		timeout: time.Minute, idleTimeout: time.Minute, maxConnAge: time.Hour,
	}, newTransportMetrics(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = tr.WriteTo([]byte("ping"), l.Addr().String())
	require.NoError(t, err)
	// Once the sender is in its handshake, Shutdown must cut it short rather than wait out the minute.
	require.Eventually(t, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.senders) == 1
	}, 10*time.Second, 10*time.Millisecond)
	start := time.Now()
	require.NoError(t, tr.Shutdown())
	require.Less(t, time.Since(start), 5*time.Second)
}
