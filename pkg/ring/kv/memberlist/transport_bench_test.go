package memberlist

import (
	"crypto/tls"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkTCPTransport_Packets measures a gossip packet (memberlist's largest, 1400 bytes) from queueing
// to delivery, over plain TCP and over TLS on a connection kept open.
func BenchmarkTCPTransport_Packets(b *testing.B) {
	for _, mode := range []string{"tcp", "tls"} {
		b.Run(mode, func(b *testing.B) {
			from, to := benchTransports(b, mode == "tls")
			addr := to.listener.Addr().String()
			packet := make([]byte, 1400)
			b.SetBytes(int64(len(packet)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				// One at a time: the queue would drop packets sent faster than delivered.
				if _, err := from.WriteTo(packet, addr); err != nil {
					b.Fatal(err)
				}
				<-to.PacketCh()
			}
		})
	}
}

// BenchmarkTCPTransport_Streams measures opening a stream (push-pull, a join), handshake included.
func BenchmarkTCPTransport_Streams(b *testing.B) {
	for _, mode := range []string{"tcp", "tls"} {
		b.Run(mode, func(b *testing.B) {
			from, to := benchTransports(b, mode == "tls")
			addr := to.listener.Addr().String()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				conn, err := from.DialTimeout(addr, 10*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				in := <-to.StreamCh()
				_ = conn.Close()
				_ = in.Close()
			}
		})
	}
}

// benchTransports starts two transports on 127.0.0.1, with TLS when withTLS.
func benchTransports(b *testing.B, withTLS bool) (from, to *tcpTransport) {
	var (
		server *tls.Config
		client func(string) *tls.Config
	)
	if withTLS {
		server, client = memberTLS(b)
	}
	start := func() *tcpTransport {
		tr, err := newTCPTransport(transportConfig{bindAddr: "127.0.0.1", serverTLS: server, clientTLS: client,
			timeout: 10 * time.Second, idleTimeout: time.Minute, maxConnAge: time.Hour}, newTransportMetrics(), slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = tr.Shutdown() })
		return tr
	}
	return start(), start()
}
