package etcd

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestDebugTiming(t *testing.T) {
	ctx := testContext(t)
	s := startEtcd(t)
	c, _ := New(s.testConfig(), countersCodec{}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	writer := newTestClient(t, s.testConfig())
	require.NoError(t, writer.CAS(ctx, "k", increment("n")))
	seen, _ := watchCounter(t, ctx, c, "k", 0)
	waitFor(t, seen, 1)
	st := time.Now()
	s.stop()
	t.Log("stopped", time.Since(st))
	s.start()
	t.Log("restarted", time.Since(st))
	require.Eventually(t, func() bool { return writer.CAS(ctx, "k", increment("n")) == nil }, 30*time.Second, 100*time.Millisecond)
	t.Log("written", time.Since(st))
	waitFor(t, seen, 2)
	t.Log("seen", time.Since(st))
}
