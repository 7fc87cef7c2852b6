package memberlist

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring"
	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/ring/kv/kvtest"
)

func TestKV_CASOnOneMemberIsSeenByGetAndWatchKeyOnOthers(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(strconv.Itoa(n)+" members", func(t *testing.T) { testCASIsSeenByOthers(t, n) })
	}
}

func testCASIsSeenByOthers(t *testing.T, members int) {
	kvs := startCluster(t, members, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	seen := make(chan *ring.Desc, 100)
	var watchers sync.WaitGroup
	for _, k := range kvs[1:] {
		watchers.Go(func() {
			ringClient(k).WatchKey(ctx, ringKey, func(v any) bool {
				d := v.(*ring.Desc)
				seen <- d
				_, ok := d.Instances["ingester-1"]
				return !ok
			})
		})
	}
	require.NoError(t, ringClient(kvs[0]).CAS(ctx, ringKey, addInstance("ingester-1")))

	for _, k := range kvs[1:] {
		require.Eventually(t, func() bool {
			_, ok := getDesc(t, k).Instances["ingester-1"]
			return ok
		}, convergeTimeout, 10*time.Millisecond)
	}
	// Each watcher stops once it has seen the instance: it was told about the gossiped change.
	done := make(chan struct{})
	go func() { watchers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(convergeTimeout):
		t.Fatal("watchers were not notified of the gossiped change")
	}
	require.GreaterOrEqual(t, testutil.ToFloat64(kvs[0].metrics.sentBroadcasts.WithLabelValues(transportUDP)), 1.0)
	require.GreaterOrEqual(t, testutil.ToFloat64(kvs[1].metrics.receivedBroadcasts), 1.0)
}

func TestKV_ConcurrentCASOnDifferentMembersMergesEverything(t *testing.T) {
	// As below: the periodic full-state exchange repairs gossip packets dropped under CPU starvation.
	kvs := startCluster(t, 3, func(c *Config) { c.PushPullInterval = time.Second })
	const perMember = 5
	var wg sync.WaitGroup
	for i, k := range kvs {
		wg.Go(func() {
			for j := range perMember {
				id := "ingester-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)
				assert.NoError(t, ringClient(k).CAS(context.Background(), ringKey, addInstance(id)))
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		return converged(t, kvs, func(d *ring.Desc) bool { return len(d.Instances) == len(kvs)*perMember })
	}, convergeTimeout, 20*time.Millisecond)
}

func TestKV_TenMembersConvergeAfterAddsAndRemoves(t *testing.T) {
	// A gossip packet (UDP) can be dropped, as happens when the machine is starved of CPU; the periodic
	// full-state exchange repairs that, here at a test-sized interval instead of the default 30 s.
	kvs := startCluster(t, 10, func(c *Config) { c.PushPullInterval = time.Second })
	id := func(i int) string { return "ingester-" + strconv.Itoa(i) }

	var wg sync.WaitGroup
	for i, k := range kvs {
		wg.Go(func() { assert.NoError(t, ringClient(k).CAS(context.Background(), ringKey, addInstance(id(i)))) })
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		return converged(t, kvs, func(d *ring.Desc) bool { return len(d.Instances) == len(kvs) })
	}, convergeTimeout, 20*time.Millisecond, "adds did not converge")

	for i, k := range kvs[:5] {
		wg.Go(func() { assert.NoError(t, ringClient(k).CAS(context.Background(), ringKey, removeInstance(id(i)))) })
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		return converged(t, kvs, func(d *ring.Desc) bool {
			left := 0
			for _, inst := range d.Instances {
				if inst.State == ring.LEFT {
					left++
				}
			}
			return len(d.Instances) == len(kvs) && left == 5
		})
	}, convergeTimeout, 20*time.Millisecond, "removals did not converge")

	// Converged means identical: compare whole descriptors, tokens and all.
	want := getDesc(t, kvs[0])
	for i, inst := range want.Instances {
		if inst.State == ring.LEFT {
			require.Less(t, i, id(5), "only the first five removed themselves")
		}
	}
	for _, k := range kvs[1:] {
		require.Equal(t, want.Instances, getDesc(t, k).Instances)
	}
}

func TestKV_LateJoinerReceivesFullState(t *testing.T) {
	kvs := startCluster(t, 2, nil)
	require.NoError(t, ringClient(kvs[0]).CAS(context.Background(), ringKey, addInstance("ingester-1")))
	require.Eventually(t, func() bool { return len(getDesc(t, kvs[1]).Instances) == 1 }, convergeTimeout, 10*time.Millisecond)
	// Once nothing is queued for gossip any more, only the join's state exchange can bring the value.
	require.Eventually(t, func() bool {
		return kvs[0].broadcasts.len() == 0 && kvs[1].broadcasts.len() == 0
	}, convergeTimeout, 10*time.Millisecond)

	cfg := testConfig()
	cfg.AbortIfJoinFails = true // Start returns after the join, so the state must already be here
	late := startKV(t, cfg, kvs[1].Addr())
	d := getDesc(t, late)
	require.Contains(t, d.Instances, "ingester-1")
	require.GreaterOrEqual(t, testutil.ToFloat64(late.metrics.fullStateSyncs), 1.0)
}

func TestKV_JoinsThroughDNSName(t *testing.T) {
	first := startKV(t, testConfig())
	_, port, err := net.SplitHostPort(first.Addr())
	require.NoError(t, err)
	second := startKV(t, testConfig(), net.JoinHostPort("localhost", port))
	require.Eventually(t, func() bool { return first.numMembers() == 2 && second.numMembers() == 2 },
		convergeTimeout, 10*time.Millisecond)
}

func TestKV_UnreachableJoinAddressDoesNotBlockStartAndIsRetried(t *testing.T) {
	// Find a free port, then leave it closed: nothing answers there until the second KV binds it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	first := startKV(t, testConfig(), net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.Equal(t, 1, first.numMembers(), "Start returned alone")

	cfg := testConfig()
	cfg.BindPort = port
	second := startKV(t, cfg)
	require.Eventually(t, func() bool { return first.numMembers() == 2 && second.numMembers() == 2 },
		convergeTimeout, 10*time.Millisecond, "the join was not retried")
}

func TestKV_AbortIfJoinFailsFailsStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	cfg := testConfig()
	cfg.AbortIfJoinFails = true
	cfg.MaxJoinRetries = 2
	cfg.Join = AddressList{addr}
	k := newTestKV(t, cfg)
	err = k.Start(context.Background())
	require.ErrorContains(t, err, "abort-if-join-fails")
	require.ErrorContains(t, err, "after 2 attempts")
	require.NoError(t, k.Stop(context.Background()), "stopping a KV that failed to start is harmless")
}

func TestKV_StopLeavesTheCluster(t *testing.T) {
	kvs := startCluster(t, 3, nil)
	require.NoError(t, kvs[2].Stop(context.Background()))
	require.Eventually(t, func() bool { return kvs[0].numMembers() == 2 && kvs[1].numMembers() == 2 },
		convergeTimeout, 10*time.Millisecond)
	require.NoError(t, kvs[2].Stop(context.Background()), "Stop is idempotent")
}

func TestKV_ChangesTooLargeForAPacketGoOverTCP(t *testing.T) {
	cfg := testConfig()
	a, b := newTestKV(t, cfg), newTestKV(t, cfg)
	a.maxPacketMessage, b.maxPacketMessage = 10, 10
	for _, k := range []*KV{a, b} {
		require.NoError(t, k.Start(context.Background()))
		t.Cleanup(func() { _ = k.Stop(context.Background()) })
	}
	n, err := b.ml.Load().Join([]string{a.Addr()})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	// b's Join returns once it has a's state; a adds b when it merges b's, which can be later. A change
	// made before that has no one to go to (push-pull, every 30 s, would repair it).
	require.Eventually(t, func() bool { return a.numMembers() == 2 }, convergeTimeout, 10*time.Millisecond)

	require.NoError(t, ringClient(a).CAS(context.Background(), ringKey, addInstance("ingester-1")))
	require.Eventually(t, func() bool { return len(getDesc(t, b).Instances) == 1 }, convergeTimeout, 10*time.Millisecond)
	// a counts the send once SendReliable has returned, which can be after b has merged the change.
	sentOverTCP := func() float64 { return testutil.ToFloat64(a.metrics.sentBroadcasts.WithLabelValues(transportTCP)) }
	require.Eventually(t, func() bool { return sentOverTCP() >= 1 }, convergeTimeout, 10*time.Millisecond)
	require.Equal(t, 1.0, sentOverTCP())
	require.Zero(t, a.broadcasts.len())
}

func TestKV_TombstonesAreRemovedAfterTimeout(t *testing.T) {
	k := newTestKV(t, testConfig())
	c := ringClient(k)
	ctx := context.Background()
	require.NoError(t, c.CAS(ctx, ringKey, addInstance("stays")))
	require.NoError(t, c.CAS(ctx, ringKey, addInstance("leaves")))
	require.NoError(t, c.CAS(ctx, ringKey, removeInstance("leaves")))
	require.Equal(t, ring.LEFT, getDesc(t, k).Instances["leaves"].State)

	k.removeOldTombstones()
	require.Contains(t, getDesc(t, k).Instances, "leaves", "a fresh tombstone is kept")

	_, _, changed, err := k.snapshot(ringKey, ring.DescCodec{})
	require.NoError(t, err)
	k.now = func() time.Time { return time.Now().Add(k.cfg.LeftIngestersTimeout + time.Second) }
	k.removeOldTombstones()
	d := getDesc(t, k)
	require.NotContains(t, d.Instances, "leaves")
	require.Contains(t, d.Instances, "stays", "live instances are never removed")
	require.Equal(t, 1.0, testutil.ToFloat64(k.metrics.tombstonesRemoved))
	select {
	case <-changed:
	default:
		t.Fatal("watchers were not woken by the removal")
	}
}

func TestKV_TombstoneRemovalRunsPeriodically(t *testing.T) {
	cfg := testConfig()
	cfg.LeftIngestersTimeout = 50 * time.Millisecond
	k := startKV(t, cfg)
	c := ringClient(k)
	ctx := context.Background()
	require.NoError(t, c.CAS(ctx, ringKey, addInstance("leaves")))
	require.NoError(t, c.CAS(ctx, ringKey, removeInstance("leaves")))
	require.Eventually(t, func() bool { return len(getDesc(t, k).Instances) == 0 }, convergeTimeout, 10*time.Millisecond)
}

func TestClient_Conformance(t *testing.T) {
	kvtest.RunClientConformance(t, func(t *testing.T, codec kv.Codec) kv.Client {
		// A started member, so CAS also queues its changes for gossip as it does in production.
		return startKV(t, testConfig()).Client(codec)
	}, kvtest.Options{MaxCASRetries: maxCASRetries})
}

func TestClient_CASCountsAttemptsAndFailures(t *testing.T) {
	k := newTestKV(t, testConfig())
	c, ctx := ringClient(k), context.Background()
	attempts := func() float64 { return testutil.ToFloat64(k.metrics.casAttempts) }
	failures := func() float64 { return testutil.ToFloat64(k.metrics.casFailures) }

	calls := 0
	require.NoError(t, c.CAS(ctx, ringKey, func(in any) (any, bool, error) {
		calls++
		if calls < 3 {
			return nil, true, errors.New("not yet")
		}
		return addInstance("a")(in)
	}))
	require.Equal(t, 3.0, attempts(), "every call of f is an attempt, retried ones included")
	require.Zero(t, failures())

	err := c.CAS(ctx, ringKey, func(any) (any, bool, error) { return nil, true, errors.New("never") })
	require.ErrorIs(t, err, kv.ErrTooManyCASRetries)
	require.Equal(t, float64(3+maxCASRetries), attempts())
	require.Equal(t, 1.0, failures())

	err = c.CAS(ctx, ringKey, func(any) (any, bool, error) { return nil, false, errors.New("boom") })
	require.ErrorContains(t, err, "boom")
	require.Equal(t, 2.0, failures(), "an error from f is a failure too")
}

// stringCodec stores plain strings, which cannot be merged.
type stringCodec struct{}

func (stringCodec) Name() string                 { return "string" }
func (stringCodec) Encode(v any) ([]byte, error) { return []byte(v.(string)), nil }
func (stringCodec) Decode(b []byte) (any, error) { return string(b), nil }

func TestClient_RejectsValuesThatCannotMerge(t *testing.T) {
	k := newTestKV(t, testConfig())
	err := k.Client(stringCodec{}).CAS(context.Background(), "k", func(any) (any, bool, error) { return "v", false, nil })
	require.ErrorContains(t, err, "not kv.Mergeable")

	// A received value that does not merge is dropped and counted.
	(&delegate{kv: k}).NotifyMsg(encodeMessage("k", "string", []byte("v")))
	require.Equal(t, 1.0, testutil.ToFloat64(k.metrics.invalidBroadcasts))
	require.Zero(t, k.numValues())
}

func TestClient_KeyHoldsOneCodec(t *testing.T) {
	k := newTestKV(t, testConfig())
	ctx := context.Background()
	require.NoError(t, ringClient(k).CAS(ctx, ringKey, addInstance("a")))
	_, err := k.Client(stringCodec{}).Get(ctx, ringKey)
	require.ErrorContains(t, err, "holds ring.Desc/json values")
}

func TestDelegate_DropsInvalidMessages(t *testing.T) {
	k := newTestKV(t, testConfig())
	d := &delegate{kv: k}
	for _, msg := range [][]byte{
		nil,
		[]byte("garbage"),
		encodeMessage(ringKey, "no-such-codec", []byte("{}")),
		encodeMessage(ringKey, ring.DescCodec{}.Name(), []byte("not json")),
	} {
		d.NotifyMsg(msg)
	}
	d.MergeRemoteState([]byte("garbage"), false)
	require.Equal(t, 5.0, testutil.ToFloat64(k.metrics.invalidBroadcasts))
	require.Zero(t, k.numValues())
}

func TestDelegate_MergeRemoteStateMergesAndPassesChangesOn(t *testing.T) {
	src := newTestKV(t, testConfig())
	require.NoError(t, ringClient(src).CAS(context.Background(), ringKey, addInstance("a")))
	dst := newTestKV(t, testConfig())
	require.NoError(t, ringClient(dst).CAS(context.Background(), ringKey, addInstance("b")))
	queued := dst.broadcasts.len()

	(&delegate{kv: dst}).MergeRemoteState((&delegate{kv: src}).LocalState(false), false)
	require.Equal(t, []string{"a", "b"}, getDesc(t, dst).MergeContent())
	require.Equal(t, queued+1, dst.broadcasts.len(), "what was new is gossiped on")

	// Merging the same state again changes nothing and sends nothing.
	(&delegate{kv: dst}).MergeRemoteState((&delegate{kv: src}).LocalState(false), false)
	require.Equal(t, queued+1, dst.broadcasts.len())
}

func TestKV_NewKVRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig()
	cfg.GossipNodes = 0
	_, err := NewKV(cfg, nil, nil, nil)
	require.ErrorContains(t, err, "-memberlist.gossip-nodes")
}

func TestKV_NodeNameIsRandomized(t *testing.T) {
	cfg := testConfig()
	cfg.NodeName = "ingester"
	a, b := newTestKV(t, cfg), newTestKV(t, cfg)
	require.NotEqual(t, a.NodeName(), b.NodeName())
	require.Regexp(t, `^ingester-[a-z0-9]{8}$`, a.NodeName())

	cfg.RandomizeNodeName = false
	require.Equal(t, "ingester", newTestKV(t, cfg).NodeName())
}

func TestKV_ResolveJoinAddresses(t *testing.T) {
	cfg := testConfig()
	cfg.Join = AddressList{"members.example:7946", "10.0.0.9:7000", "gone.example:7946", "[::1]:7946"}
	k := newTestKV(t, cfg)
	k.lookupHost = func(_ context.Context, host string) ([]string, error) {
		if host == "members.example" {
			return []string{"10.0.0.1", "10.0.0.2", "fd00::3"}, nil
		}
		return nil, errors.New("no such host")
	}
	addrs, err := k.resolveJoinAddresses(context.Background())
	require.Equal(t, []string{"10.0.0.1:7946", "10.0.0.2:7946", "[fd00::3]:7946", "10.0.0.9:7000", "[::1]:7946"}, addrs,
		"every address of a name is joined; IP addresses are used as they are")
	require.ErrorContains(t, err, "resolve gone.example", "a name that does not resolve is reported, the rest still tried")
}
