package distributor

import (
	"context"
	"flag"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/ring/kv/memberlist"
)

// startGossip starts a memberlist KV on 127.0.0.1 that joins join, stopped when the test ends.
func startGossip(t *testing.T, join ...string) *memberlist.KV {
	t.Helper()
	var cfg memberlist.Config
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.PanicOnError))
	cfg.BindAddr, cfg.BindPort = "127.0.0.1", 0
	cfg.GossipInterval = 50 * time.Millisecond
	cfg.MinJoinBackoff, cfg.MaxJoinBackoff = 20*time.Millisecond, 200*time.Millisecond
	cfg.LeaveTimeout = time.Second
	cfg.RandomizeNodeName = true
	cfg.Join = join
	k, err := memberlist.NewKV(cfg, []kv.Codec{HAClustersCodec{}}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, k.Start(context.Background()))
	t.Cleanup(func() { _ = k.Stop(context.Background()) })
	return k
}

// Two distributors gossiping their elections in memberlist: one's election reaches the other, and two
// elections made at once, before any gossip, converge on the same replica in both.
func TestHATracker_DistributorsOverMemberlistAgree(t *testing.T) {
	first := startGossip(t)
	second := startGossip(t, first.Addr())
	clock := &fakeClock{now: testNow}
	a := newTestTracker(t, first.Client(HAClustersCodec{}), clock)
	b := newTestTracker(t, second.Client(HAClustersCodec{}), clock)
	ctx := context.Background()

	requireElected(t, a.checkReplica(ctx, "t", "c", "r1", 0))
	require.Eventually(t, func() bool {
		v, err := second.Client(HAClustersCodec{}).Get(ctx, haKeyPrefix+"t")
		return err == nil && v != nil
	}, 30*time.Second, 10*time.Millisecond, "the election gossiped to the second member")
	requireNotElected(t, b.checkReplica(ctx, "t", "c", "r2", 0), "r1")

	// A race: each distributor elects the replica it hears first, in the same millisecond.
	requireElected(t, a.checkReplica(ctx, "t", "race", "r1", 0))
	requireElected(t, b.checkReplica(ctx, "t", "race", "r2", 0))
	for name, tr := range map[string]*HATracker{"a": a, "b": b} {
		require.Eventually(t, func() bool {
			r, ok := tr.cached("t", "race")
			return ok && r.Replica == "r2"
		}, 30*time.Second, 10*time.Millisecond, "%s converges on the greater entry", name)
	}
	requireNotElected(t, a.checkReplica(ctx, "t", "race", "r1", 0), "r2")
}
