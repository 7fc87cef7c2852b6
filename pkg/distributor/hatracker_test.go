package distributor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
)

// fakeClock is a clock that tests move by hand, shared by several trackers.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingKV counts the CAS calls that wrote, and fails every call while failing is set.
type countingKV struct {
	kv.Client
	writes  atomic.Int64
	failing atomic.Bool
}

func (c *countingKV) CAS(ctx context.Context, key string, f func(in any) (any, bool, error)) error {
	if c.failing.Load() {
		return errors.New("kv store unreachable")
	}
	return c.Client.CAS(ctx, key, func(in any) (any, bool, error) {
		out, retry, err := f(in)
		if out != nil && err == nil {
			c.writes.Add(1)
		}
		return out, retry, err
	})
}

var testHAConfig = HATrackerConfig{Enable: true, FailoverTimeout: 30 * time.Second, UpdateTimeout: 15 * time.Second}

// newTestTracker returns a started tracker over store whose clock is clock.
func newTestTracker(t *testing.T, store kv.Client, clock *fakeClock) *HATracker {
	t.Helper()
	tr, err := NewHATracker(testHAConfig, store, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	tr.now = clock.Now
	require.NoError(t, tr.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, tr.Stop(context.Background())) })
	return tr
}

func requireElected(t *testing.T, err error) {
	t.Helper()
	require.NoError(t, err)
}

func requireNotElected(t *testing.T, err error, elected string) {
	t.Helper()
	var ne *errNotElected
	require.ErrorAs(t, err, &ne)
	require.Equal(t, elected, ne.elected)
}

func TestHATracker_FirstReplicaSeenIsElected(t *testing.T) {
	clock := &fakeClock{now: testNow}
	tr := newTestTracker(t, inmemory.New(HAClustersCodec{}), clock)
	ctx := context.Background()

	requireElected(t, tr.checkReplica(ctx, "t1", "c1", "r1", 0))
	requireNotElected(t, tr.checkReplica(ctx, "t1", "c1", "r2", 0), "r1")
	clock.Add(time.Second)
	requireElected(t, tr.checkReplica(ctx, "t1", "c1", "r1", 0))

	// Clusters and tenants are independent.
	requireElected(t, tr.checkReplica(ctx, "t1", "c2", "r2", 0))
	requireElected(t, tr.checkReplica(ctx, "t2", "c1", "r2", 0))
	requireNotElected(t, tr.checkReplica(ctx, "t2", "c1", "r1", 0), "r2")
}

func TestHATracker_FailsOverOnlyAfterTheFailoverTimeout(t *testing.T) {
	clock := &fakeClock{now: testNow}
	tr := newTestTracker(t, inmemory.New(HAClustersCodec{}), clock)
	ctx := context.Background()

	requireElected(t, tr.checkReplica(ctx, "t", "c", "r1", 0))
	clock.Add(testHAConfig.FailoverTimeout - time.Millisecond)
	requireNotElected(t, tr.checkReplica(ctx, "t", "c", "r2", 0), "r1")
	clock.Add(time.Millisecond)
	requireElected(t, tr.checkReplica(ctx, "t", "c", "r2", 0))
	// The old replica, back, is now the one dropped.
	requireNotElected(t, tr.checkReplica(ctx, "t", "c", "r1", 0), "r2")
	require.Equal(t, 1.0, testutil.ToFloat64(tr.electedChanges.WithLabelValues("t", "c")))
}

// An elected replica that keeps sending keeps its election however long the others send too.
func TestHATracker_SendingReplicaStaysElected(t *testing.T) {
	clock := &fakeClock{now: testNow}
	tr := newTestTracker(t, inmemory.New(HAClustersCodec{}), clock)
	ctx := context.Background()
	requireElected(t, tr.checkReplica(ctx, "t", "c", "r1", 0))
	for range 120 { // 4 fail-over timeouts
		clock.Add(time.Second)
		requireElected(t, tr.checkReplica(ctx, "t", "c", "r1", 0))
		requireNotElected(t, tr.checkReplica(ctx, "t", "c", "r2", 0), "r1")
	}
}

func TestHATracker_WritesTheElectedReplicaAtMostEveryUpdateTimeout(t *testing.T) {
	clock := &fakeClock{now: testNow}
	store := &countingKV{Client: inmemory.New(HAClustersCodec{})}
	tr := newTestTracker(t, store, clock)
	ctx := context.Background()

	requireElected(t, tr.checkReplica(ctx, "t", "c", "r1", 0))
	require.Equal(t, int64(1), store.writes.Load(), "the election")
	for range 14 {
		clock.Add(time.Second)
		requireElected(t, tr.checkReplica(ctx, "t", "c", "r1", 0))
		requireNotElected(t, tr.checkReplica(ctx, "t", "c", "r2", 0), "r1")
	}
	require.Equal(t, int64(1), store.writes.Load(), "nothing within the update timeout, whoever sends")
	clock.Add(time.Second)
	requireElected(t, tr.checkReplica(ctx, "t", "c", "r1", 0))
	require.Equal(t, int64(2), store.writes.Load(), "an update once the update timeout passed")

	stored := storedClusters(t, store, "t")
	require.Equal(t, ReplicaDesc{Replica: "r1", ReceivedAt: clock.Now().UnixMilli(), ElectedAt: testNow.UnixMilli(), ElectedChanges: 1}, stored.Clusters["c"])
}

func storedClusters(t *testing.T, store kv.Client, tenantID string) *HAClusters {
	t.Helper()
	v, err := store.Get(context.Background(), haKeyPrefix+tenantID)
	require.NoError(t, err)
	h, err := haClustersFrom(v)
	require.NoError(t, err)
	return h
}

func TestHATracker_JitterIsAddedToTheUpdateTimeoutOnce(t *testing.T) {
	cfg := testHAConfig
	cfg.UpdateTimeoutJitterMax = 5 * time.Second
	for range 20 {
		tr, err := NewHATracker(cfg, inmemory.New(HAClustersCodec{}), nil, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.GreaterOrEqual(t, tr.updateTimeout, cfg.UpdateTimeout)
		require.Less(t, tr.updateTimeout, cfg.UpdateTimeout+cfg.UpdateTimeoutJitterMax)
	}
}

func TestHATracker_MaxClusters(t *testing.T) {
	clock := &fakeClock{now: testNow}
	tr := newTestTracker(t, inmemory.New(HAClustersCodec{}), clock)
	ctx := context.Background()
	requireElected(t, tr.checkReplica(ctx, "t", "c1", "r1", 2))
	requireElected(t, tr.checkReplica(ctx, "t", "c2", "r1", 2))
	require.ErrorIs(t, tr.checkReplica(ctx, "t", "c3", "r1", 2), errTooManyClusters)
	// Known clusters go on, and the limit is the tenant's: another tenant has its own.
	requireElected(t, tr.checkReplica(ctx, "t", "c1", "r1", 2))
	requireElected(t, tr.checkReplica(ctx, "u", "c3", "r1", 2))
	// A raised limit lets the new cluster in.
	requireElected(t, tr.checkReplica(ctx, "t", "c3", "r1", 3))
}

func TestHATracker_KVFailure(t *testing.T) {
	clock := &fakeClock{now: testNow}
	store := &countingKV{Client: inmemory.New(HAClustersCodec{})}
	tr := newTestTracker(t, store, clock)
	ctx := context.Background()
	requireElected(t, tr.checkReplica(ctx, "t", "c", "r1", 0))

	store.failing.Store(true)
	require.Error(t, tr.checkReplica(ctx, "t", "new", "r1", 0), "no election without the KV store")
	clock.Add(testHAConfig.UpdateTimeout)
	requireElected(t, tr.checkReplica(ctx, "t", "c", "r1", 0))
	clock.Add(testHAConfig.FailoverTimeout)
	require.Error(t, tr.checkReplica(ctx, "t", "c", "r2", 0), "no fail-over without the KV store")
	require.Equal(t, 3.0, testutil.ToFloat64(tr.kvFailures), "each failed CAS is counted")
}

// Two distributors sharing one KV store agree on the elected replica whichever of them each replica
// sends to, and the fail-over one of them decides is seen by the other.
func TestHATracker_DistributorsSharingAStoreAgree(t *testing.T) {
	clock := &fakeClock{now: testNow}
	store := inmemory.New(HAClustersCodec{})
	a, b := newTestTracker(t, store, clock), newTestTracker(t, store, clock)
	ctx := context.Background()

	requireElected(t, a.checkReplica(ctx, "t", "c", "r1", 0))
	requireNotElected(t, b.checkReplica(ctx, "t", "c", "r2", 0), "r1")
	// r1 keeps sending to a, r2 to b: a's updates reach b, which keeps dropping r2.
	for range 90 {
		clock.Add(time.Second)
		requireElected(t, a.checkReplica(ctx, "t", "c", "r1", 0))
		requireNotElected(t, b.checkReplica(ctx, "t", "c", "r2", 0), "r1")
	}
	// r1 stops; b elects r2 once the fail-over timeout has passed since a last recorded r1.
	var failedOverAfter time.Duration
	for i := 1; ; i++ {
		clock.Add(time.Second)
		if b.checkReplica(ctx, "t", "c", "r2", 0) == nil {
			failedOverAfter = time.Duration(i) * time.Second
			break
		}
		require.Less(t, i, 60)
	}
	require.LessOrEqual(t, failedOverAfter, testHAConfig.FailoverTimeout)
	require.GreaterOrEqual(t, failedOverAfter, testHAConfig.FailoverTimeout-testHAConfig.UpdateTimeout)
	// a learns of it through its watch, without a write of its own: r1, back at a, is dropped.
	require.Eventually(t, func() bool {
		r, ok := a.cached("t", "c")
		return ok && r.Replica == "r2"
	}, 5*time.Second, 5*time.Millisecond)
	requireNotElected(t, a.checkReplica(ctx, "t", "c", "r1", 0), "r2")
}

func TestHATracker_RemovesClustersNotSeenForLong(t *testing.T) {
	clock := &fakeClock{now: testNow}
	store := inmemory.New(HAClustersCodec{})
	tr := newTestTracker(t, store, clock)
	ctx := context.Background()
	requireElected(t, tr.checkReplica(ctx, "t", "old", "r1", 1))
	clock.Add(haCleanupAfter - time.Minute)
	requireElected(t, tr.checkReplica(ctx, "u", "recent", "r1", 0))

	clock.Add(time.Minute + time.Second)
	tr.cleanup(ctx)
	require.Empty(t, storedClusters(t, store, "t").Clusters)
	require.Contains(t, storedClusters(t, store, "u").Clusters, "recent")
	tr.mu.RLock()
	require.NotContains(t, tr.tenants, "t", "a tenant left without clusters is no longer followed")
	require.Contains(t, tr.tenants, "u")
	tr.mu.RUnlock()
	// The removed cluster no longer counts against ha_max_clusters, and a new election starts.
	requireElected(t, tr.checkReplica(ctx, "t", "new", "r2", 1))
}

func TestHATrackerConfig_Validate(t *testing.T) {
	valid := HATrackerConfig{Enable: true, FailoverTimeout: 30 * time.Second, UpdateTimeout: 15 * time.Second, UpdateTimeoutJitterMax: 5 * time.Second}
	require.NoError(t, valid.Validate())
	for name, change := range map[string]func(*HATrackerConfig){
		"fail-over within update timeout and jitter": func(c *HATrackerConfig) { c.FailoverTimeout = 20 * time.Second },
		"no update timeout":                          func(c *HATrackerConfig) { c.UpdateTimeout = 0 },
		"negative jitter":                            func(c *HATrackerConfig) { c.UpdateTimeoutJitterMax = -time.Second },
		"unknown store":                              func(c *HATrackerConfig) { c.Store = "consul" },
	} {
		t.Run(name, func(t *testing.T) {
			c := valid
			change(&c)
			require.Error(t, c.Validate())
		})
	}
	off := HATrackerConfig{FailoverTimeout: time.Second, UpdateTimeout: time.Minute}
	require.NoError(t, off.Validate(), "timings are not checked while the tracker is off")
}
