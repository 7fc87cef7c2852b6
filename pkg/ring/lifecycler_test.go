package ring

import (
	"context"
	"flag"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
)

// testClock is a settable clock shared by lifecyclers and rings in a test.
type testClock struct{ ms atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ms.Store(testNow.UnixMilli())
	return c
}

func (c *testClock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

func testLifecyclerConfig(id string) LifecyclerConfig {
	return LifecyclerConfig{ID: id, Addr: "10.0.0.1", Port: 9095, Zone: "z1", NumTokens: 16,
		HeartbeatPeriod: time.Hour, UnregisterOnShutdown: true}
}

func newTestLifecycler(t *testing.T, cfg LifecyclerConfig, store kv.Client, clock *testClock) *Lifecycler {
	t.Helper()
	l, err := NewLifecycler(cfg, "ingester", "ring", store, nil, nil)
	require.NoError(t, err)
	l.now = clock.now
	return l
}

func readDesc(t *testing.T, store kv.Client) *Desc {
	t.Helper()
	v, err := store.Get(context.Background(), "ring")
	require.NoError(t, err)
	d, err := descFrom(v)
	require.NoError(t, err)
	return d
}

func TestLifecyclerConfig_Flags(t *testing.T) {
	var cfg LifecyclerConfig
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlagsWithPrefix("ingester.ring.", fs)
	require.NoError(t, fs.Parse([]string{"-ingester.ring.instance-id=ing-7", "-ingester.ring.instance-port=9999"}))
	require.Equal(t, "ing-7", cfg.ID)
	require.Equal(t, 128, cfg.NumTokens)
	require.Equal(t, 15*time.Second, cfg.HeartbeatPeriod)
	require.True(t, cfg.UnregisterOnShutdown)
	require.NotEmpty(t, cfg.Addr)
	require.Equal(t, cfg.Addr+":9999", cfg.Address())
	require.NoError(t, cfg.Validate())
	for _, name := range []string{"num-tokens", "heartbeat-period", "instance-id", "instance-addr", "instance-port",
		"instance-availability-zone", "unregister-on-shutdown"} {
		require.NotNil(t, fs.Lookup("ingester.ring."+name), name)
	}

	var rc Config
	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	rc.RegisterFlags(fs)
	require.Equal(t, time.Minute, rc.HeartbeatTimeout)
	require.Equal(t, 10, rc.AutoForgetUnhealthyPeriods)
	require.Equal(t, 10*time.Minute, rc.AutoForgetAfter())
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	require.Equal(t, []string{"ring.auto-forget-unhealthy-periods", "ring.heartbeat-timeout"}, names)
}

func TestLifecyclerConfig_Validate(t *testing.T) {
	tests := map[string]func(*LifecyclerConfig){
		"empty id":        func(c *LifecyclerConfig) { c.ID = "" },
		"no tokens":       func(c *LifecyclerConfig) { c.NumTokens = 0 },
		"no heartbeat":    func(c *LifecyclerConfig) { c.HeartbeatPeriod = 0 },
		"negative tokens": func(c *LifecyclerConfig) { c.NumTokens = -1 },
		"negative period": func(c *LifecyclerConfig) { c.HeartbeatPeriod = -time.Second },
	}
	for name, breakIt := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testLifecyclerConfig("a")
			breakIt(&cfg)
			require.Error(t, cfg.Validate())
		})
	}
}

func TestLifecycler_LifeInTheRing(t *testing.T) {
	ctx := context.Background()
	store := inmemory.New(DescCodec{})
	clock := newTestClock()

	r, err := New(Config{HeartbeatTimeout: time.Minute, ReplicationFactor: 1}, "ingester", "ring", store, nil, nil)
	require.NoError(t, err)
	r.now = clock.now
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { require.NoError(t, r.Stop(ctx)) })

	l := newTestLifecycler(t, testLifecyclerConfig("ing-1"), store, clock)
	require.NoError(t, l.Start(ctx))
	require.Equal(t, JOINING, l.State())

	entry := readDesc(t, store).Instances["ing-1"]
	require.Equal(t, JOINING, entry.State)
	require.Equal(t, "10.0.0.1:9095", entry.Addr)
	require.Equal(t, "z1", entry.Zone)
	require.Len(t, entry.Tokens, 16)
	require.Equal(t, l.Tokens(), entry.Tokens)
	require.Eventually(t, func() bool { return r.InstancesCount() == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, 0, r.HealthyInstancesCount(Write), "JOINING takes no writes")

	require.NoError(t, l.ChangeState(ctx, ACTIVE))
	require.Equal(t, ACTIVE, l.State())
	require.Eventually(t, func() bool { return r.HealthyInstancesCount(Write) == 1 }, 5*time.Second, time.Millisecond)
	rs, err := r.Get(42, Write, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"ing-1"}, ids(rs.Instances))

	// Without heartbeats the instance goes stale; a heartbeat brings it back.
	clock.advance(2 * time.Minute)
	require.Equal(t, 0, r.HealthyInstancesCount(Write))
	require.NoError(t, l.heartbeat(ctx))
	require.Equal(t, clock.now().UnixMilli(), readDesc(t, store).Instances["ing-1"].Timestamp)
	require.Eventually(t, func() bool { return r.HealthyInstancesCount(Write) == 1 }, 5*time.Second, time.Millisecond)

	require.Error(t, l.ChangeState(ctx, LEFT), "LEFT is for tombstones only")

	require.NoError(t, l.Stop(ctx))
	require.NotContains(t, readDesc(t, store).Instances, "ing-1")
	require.Eventually(t, func() bool { return r.InstancesCount() == 0 }, 5*time.Second, time.Millisecond)
}

func TestLifecycler_HeartbeatsPeriodically(t *testing.T) {
	ctx := context.Background()
	store := inmemory.New(DescCodec{})
	clock := newTestClock()
	cfg := testLifecyclerConfig("ing-1")
	cfg.HeartbeatPeriod = time.Millisecond
	l := newTestLifecycler(t, cfg, store, clock)
	require.NoError(t, l.Start(ctx))
	defer func() { require.NoError(t, l.Stop(ctx)) }()

	clock.advance(time.Minute)
	want := clock.now().UnixMilli()
	require.Eventually(t, func() bool {
		return readDesc(t, store).Instances["ing-1"].Timestamp == want
	}, 5*time.Second, time.Millisecond)
}

func TestLifecycler_StopKeepsEntryWithoutUnregister(t *testing.T) {
	ctx := context.Background()
	store := inmemory.New(DescCodec{})
	clock := newTestClock()
	cfg := testLifecyclerConfig("ing-1")
	cfg.UnregisterOnShutdown = false
	l := newTestLifecycler(t, cfg, store, clock)
	require.NoError(t, l.Start(ctx))
	require.NoError(t, l.ChangeState(ctx, ACTIVE))
	tokens := l.Tokens()
	require.NoError(t, l.Stop(ctx))

	entry := readDesc(t, store).Instances["ing-1"]
	require.Equal(t, LEAVING, entry.State)

	// A restart with the same ID gets the same tokens back and joins again.
	clock.advance(time.Minute)
	l2 := newTestLifecycler(t, cfg, store, clock)
	require.NoError(t, l2.Start(ctx))
	defer func() { require.NoError(t, l2.Stop(ctx)) }()
	require.Equal(t, tokens, l2.Tokens())
	entry2 := readDesc(t, store).Instances["ing-1"]
	require.Equal(t, JOINING, entry2.State)
	require.Equal(t, entry.RegisteredTimestamp, entry2.RegisteredTimestamp)
}

func TestLifecycler_TokensAreUniqueAcrossInstancesAndResized(t *testing.T) {
	ctx := context.Background()
	store := inmemory.New(DescCodec{})
	clock := newTestClock()
	seen := map[uint32]string{}
	for _, id := range []string{"a", "b", "c"} {
		l := newTestLifecycler(t, testLifecyclerConfig(id), store, clock)
		require.NoError(t, l.Start(ctx))
		for _, tok := range l.Tokens() {
			require.NotContains(t, seen, tok)
			seen[tok] = id
		}
		require.NoError(t, l.cancelHeartbeats(ctx))
	}

	// Restarting with a different token count keeps the old tokens it still needs.
	old := readDesc(t, store).Instances["a"].Tokens
	for _, n := range []int{8, 32} {
		cfg := testLifecyclerConfig("a")
		cfg.NumTokens = n
		l := newTestLifecycler(t, cfg, store, clock)
		require.NoError(t, l.Start(ctx))
		got := l.Tokens()
		require.Len(t, got, n)
		require.Subset(t, got, old[:min(n, len(old))])
		require.NoError(t, l.cancelHeartbeats(ctx))
		old = got
	}
}

// cancelHeartbeats stops the heartbeat loop without leaving the ring, as a crash would.
func (l *Lifecycler) cancelHeartbeats(ctx context.Context) error {
	l.cancel()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestForget(t *testing.T) {
	ctx := context.Background()
	store := inmemory.New(DescCodec{})
	require.NoError(t, store.CAS(ctx, "ring", func(any) (any, bool, error) {
		return descOf(inst("a", ""), inst("b", "")), false, nil
	}))
	require.NoError(t, Forget(ctx, store, "ring", "a"))
	require.Equal(t, []string{"b"}, readDesc(t, store).MergeContent())
	require.ErrorContains(t, Forget(ctx, store, "ring", "a"), `"a" is not in the ring`)
}

func TestLifecycler_StopWithoutStartDoesNotRegister(t *testing.T) {
	store := inmemory.New(DescCodec{})
	l := newTestLifecycler(t, testLifecyclerConfig("ing-1"), store, newTestClock())
	require.NoError(t, l.Stop(context.Background()))
	require.Empty(t, readDesc(t, store).Instances)
}
