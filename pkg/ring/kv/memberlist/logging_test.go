package memberlist

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// recordingHandler keeps the records it is given; memberlist logs from several goroutines.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}

// atLeast returns the messages of the records at level or above.
func (h *recordingHandler) atLeast(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var msgs []string
	for _, r := range h.records {
		if r.Level >= level {
			msgs = append(msgs, r.Message)
		}
	}
	return msgs
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func TestMemberlistLogger_MapsLevelsAndStripsPrefixes(t *testing.T) {
	h := &recordingHandler{}
	l := newMemberlistLogger(slog.New(h), &atomic.Bool{})
	l.Printf("[DEBUG] memberlist: Stream connection from=%s", "127.0.0.1:1")
	l.Printf("[WARN] memberlist: Was able to connect to x but other probes failed")
	l.Printf("[ERR] memberlist: Failed to send gossip")
	l.Printf("no level at all")

	want := []struct {
		level slog.Level
		msg   string
	}{
		{slog.LevelDebug, "Stream connection from=127.0.0.1:1"},
		{slog.LevelWarn, "Was able to connect to x but other probes failed"},
		{slog.LevelError, "Failed to send gossip"},
		{slog.LevelInfo, "no level at all"},
	}
	require.Len(t, h.records, len(want))
	for i, w := range want {
		require.Equal(t, w.level, h.records[i].Level)
		require.Equal(t, w.msg, h.records[i].Message)
	}
}

func TestMemberlistLogger_ClosedConnectionIsQuietOnlyWhileShuttingDown(t *testing.T) {
	const closedConn = "[ERR] memberlist: Failed to send gossip to 127.0.0.1:7946: write udp 127.0.0.1:7947->127.0.0.1:7946: use of closed network connection"
	tests := []struct {
		name         string
		shuttingDown bool
		line         string
		want         slog.Level
	}{
		{"closed connection while running is a real error", false, closedConn, slog.LevelError},
		{"closed connection after Stop is expected", true, closedConn, slog.LevelDebug},
		{"other errors after Stop still log", true, "[ERR] memberlist: Failed to decode ping request: EOF", slog.LevelError},
		{"warnings about closed connections after Stop are quiet too", true, "[WARN] memberlist: Was able to connect to x over TCP but UDP probes failed: use of closed network connection", slog.LevelDebug},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recordingHandler{}
			var shuttingDown atomic.Bool
			shuttingDown.Store(tt.shuttingDown)
			newMemberlistLogger(slog.New(h), &shuttingDown).Print(tt.line)
			require.Len(t, h.records, 1)
			require.Equal(t, tt.want, h.records[0].Level)
		})
	}
}

// A clean shutdown races memberlist's gossip against its closing sockets (memberlist closes its transport
// before it stops gossiping). Changes retransmitted many times, gossip every millisecond and a short leave
// timeout keep gossip sending while the sockets close, so the race comes up in most rounds.
func TestKV_CleanShutdownLogsNoErrors(t *testing.T) {
	for round := range 10 {
		h := &recordingHandler{}
		cfg := testConfig()
		cfg.GossipInterval = time.Millisecond
		cfg.RetransmitFactor = 1000
		cfg.LeaveTimeout = 20 * time.Millisecond
		newKV := func(join ...string) *KV {
			cfg.Join = join
			k, err := NewKV(cfg, []kv.Codec{ring.DescCodec{}}, prometheus.NewRegistry(), slog.New(h))
			require.NoError(t, err)
			require.NoError(t, k.Start(context.Background()))
			return k
		}
		first := newKV()
		second := newKV(first.Addr())
		require.Eventually(t, func() bool { return first.numMembers() == 2 && second.numMembers() == 2 },
			convergeTimeout, 5*time.Millisecond, "the two members did not see each other")
		for i := range 20 {
			require.NoError(t, ringClient(second).CAS(context.Background(), ringKey, addInstance(fmt.Sprint("ingester-", i))))
		}
		require.NoError(t, second.Stop(context.Background()))
		require.NoError(t, first.Stop(context.Background()))
		require.Empty(t, h.atLeast(slog.LevelError), "round %d", round)
	}
}
