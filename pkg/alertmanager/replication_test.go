package alertmanager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/silence"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertmanagerpb"
	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// clusterConfig is testConfig with the timers of a cluster short enough for tests.
func clusterConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.PeerTimeout = 100 * time.Millisecond
	cfg.RingCheckPeriod = 10 * time.Millisecond
	return cfg
}

// silenceIDs returns the IDs of the tenant's silences that n holds, nil if it does not run the tenant.
func (n *node) silenceIDs(tenantID string) []string {
	inst := n.am.instance(tenantID)
	if inst == nil {
		return nil
	}
	sils, _, err := inst.silences.Query(context.Background())
	require.NoError(n.t, err)
	ids := make([]string, 0, len(sils))
	for _, s := range sils {
		ids = append(ids, s.Id)
	}
	slices.Sort(ids)
	return ids
}

func TestReplication_SilenceCreatedOnOneReplicaMutesOnAll(t *testing.T) {
	c := newCluster(t, 3, clusterConfig(t))
	hook := newWebhook(t)
	c.setConfig("t1", webhookConfig(hook.srv.URL))

	id := c.nodes[1].createSilence("t1", "alertname", "Silenced")
	for i, n := range c.nodes {
		eventually(t, func() bool { return slices.Equal(n.silenceIDs("t1"), []string{id}) }, fmt.Sprintf("node %d has the silence", i))
	}
	c.nodes[0].postAlert("t1", map[string]string{"alertname": "Silenced"})
	for i, n := range c.nodes {
		eventually(t, func() bool {
			a := n.alerts("t1")
			return len(a) == 1 && a[0].Status.State == "suppressed" && slices.Equal(a[0].Status.SilencedBy, []string{id})
		}, fmt.Sprintf("node %d mutes the alert", i))
	}

	eventually(t, func() bool {
		return testutil.ToFloat64(c.nodes[1].am.metrics.stateReplications.WithLabelValues("success")) >= 2
	}, "the creation was sent to each of the other two replicas")

	// Expiring it on another replica expires it everywhere.
	code, body := c.nodes[2].do("t1", "DELETE", PathPrefix+"/api/v2/silence/"+id, "")
	require.Equal(t, 200, code, body)
	for i, n := range c.nodes {
		eventually(t, func() bool {
			s := n.silences("t1")
			return len(s) == 1 && s[0].Status.State == "expired"
		}, fmt.Sprintf("node %d has the silence expired", i))
	}
}

// notifyGroupInterval is the group interval of repeatingConfig.
const notifyGroupInterval = time.Second

// repeatingConfig notifies a group every repeat interval. The group interval is longer than the waits
// of the replicas behind the first (2 peer timeouts) with room for a change of the notification log to
// reach them, as Alertmanager's defaults (5m and 15s) have: the replicas then decide on the same flush
// of a group one after the other, never on different flushes at once.
func repeatingConfig(url string, repeat time.Duration) alertstore.AlertConfig {
	return alertstore.AlertConfig{AlertmanagerConfig: fmt.Sprintf(`
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 50ms
  group_interval: %s
  repeat_interval: %s
receivers:
  - name: hook
    webhook_configs:
      - url: %s
        send_resolved: false
`, notifyGroupInterval, repeat, url)}
}

// requireOncePerRepeat checks that the notifications at come one per repeat interval: none closer
// than repeat (a duplicate), none later than the next flush after it plus the waits of every
// replica.
func requireOncePerRepeat(t *testing.T, at []time.Time, repeat time.Duration, cfg Config) {
	t.Helper()
	most := repeat + notifyGroupInterval + 3*cfg.PeerTimeout + 500*time.Millisecond
	for i := 1; i < len(at); i++ {
		gap := at[i].Sub(at[i-1])
		require.GreaterOrEqual(t, gap, repeat-50*time.Millisecond, "notification %d came %s after the one before: a duplicate", i, gap)
		require.LessOrEqual(t, gap, most, "notification %d came %s after the one before: one was missed", i, gap)
	}
}

func TestReplication_NotifiesOncePerRepeatIntervalAndFailsOver(t *testing.T) {
	const repeat = 2 * time.Second
	cfg := clusterConfig(t)
	// A notification waits 0, 200 or 400ms on the three replicas: the one ahead has 200ms to send
	// it and replicate its log entry, the group interval leaves 600ms after the last.
	cfg.PeerTimeout = 200 * time.Millisecond
	c := newCluster(t, 3, cfg)
	hook := newWebhook(t)
	c.setConfig("t1", repeatingConfig(hook.srv.URL, repeat))
	c.nodes[1].postAlert("t1", map[string]string{"alertname": "Firing"})
	notified := func(n int) func() bool {
		return func() bool { return len(hook.receivedAt("Firing")) >= n }
	}
	deadline := func(n int) time.Duration { return time.Duration(n+1) * (repeat + notifyGroupInterval + time.Second) }

	// All healthy: the first replica notifies, the others find it in the notification log.
	require.Eventually(t, notified(3), deadline(3), 10*time.Millisecond)
	requireOncePerRepeat(t, hook.receivedAt("Firing"), repeat, cfg)

	// The first replica dies between two notifications (not between a send and its log entry, which
	// would send that one twice); the ring has not noticed yet. The second replica, which waits one
	// peer timeout, finds no notification logged and sends it.
	sent := hook.receivedAt("Firing")
	last := sent[len(sent)-1]
	eventually(t, func() bool {
		for _, n := range c.nodes {
			if !n.notificationLogged("t1", "Firing", last) {
				return false
			}
		}
		return true
	}, "the last notification logged on every replica")
	c.nodes[0].kill()
	require.Eventually(t, notified(5), deadline(2), 10*time.Millisecond)
	requireOncePerRepeat(t, hook.receivedAt("Firing"), repeat, cfg)

	// The ring leaves it out: the second replica becomes the first.
	c.ring.markDead(c.nodes[0].addr)
	eventually(t, func() bool { return c.nodes[1].am.instance("t1").Position() == 0 }, "the second replica moves up")
	require.Eventually(t, notified(7), deadline(2), 10*time.Millisecond)
	requireOncePerRepeat(t, hook.receivedAt("Firing"), repeat, cfg)
	require.Positive(t, testutil.ToFloat64(c.nodes[1].am.metrics.stateReplications.WithLabelValues("failure")),
		"sends to the dead replica failed")
	at := hook.receivedAt("Firing")
	gaps := make([]time.Duration, 0, len(at))
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, at[i].Sub(at[i-1]).Round(time.Millisecond))
	}
	t.Logf("gaps between notifications: %v", gaps)
}

func TestReplication_RestartedReplicaCatchesUpBeforeServing(t *testing.T) {
	c := newCluster(t, 3, clusterConfig(t))
	c.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	before := c.nodes[0].createSilence("t1", "alertname", "A")
	for _, n := range c.nodes {
		eventually(t, func() bool { return len(n.silenceIDs("t1")) == 1 }, "replicated")
	}

	c.nodes[2].kill()
	during := c.nodes[0].createSilence("t1", "alertname", "B")
	eventually(t, func() bool { return len(c.nodes[1].silenceIDs("t1")) == 2 }, "replicated to the live replica")
	_, err := c.nodes[0].store.GetState(context.Background(), "t1")
	require.ErrorIs(t, err, alertstore.ErrNotFound, "nothing persisted: the replicas are the only copies")

	restarted := c.restart(2)
	// Start has returned: the tenant's Alertmanager already serves with both silences, read from the
	// replicas (the bucket has none).
	want := []string{before, during}
	slices.Sort(want)
	require.Equal(t, want, restarted.silenceIDs("t1"))
	require.Len(t, restarted.silences("t1"), 2)
	require.Equal(t, 2.0, testutil.ToFloat64(restarted.am.metrics.stateFetches.WithLabelValues("success")))

	// It takes part again: a silence created on it reaches the others.
	after := restarted.createSilence("t1", "alertname", "C")
	for _, n := range c.nodes[:2] {
		eventually(t, func() bool { return slices.Contains(n.silenceIDs("t1"), after) }, "replicated from the restarted replica")
	}
}

func TestReplication_ClusterRestartReadsTheBucket(t *testing.T) {
	c := newCluster(t, 3, clusterConfig(t))
	c.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	id := c.nodes[0].createSilence("t1", "alertname", "A")
	for _, n := range c.nodes {
		eventually(t, func() bool { return len(n.silenceIDs("t1")) == 1 }, "replicated")
	}
	// Every replica stops cleanly (each persists), then they start again together.
	for _, n := range c.nodes {
		n.stop()
		n.srv.Stop()
	}
	for i := range c.nodes {
		c.restart(i)
	}
	for _, n := range c.nodes {
		require.Equal(t, []string{id}, n.silenceIDs("t1"))
	}
}

func TestReplication_FallbackTenantStartsOnEveryReplicaWithItsFirstChange(t *testing.T) {
	cfg := clusterConfig(t)
	cfg.FallbackConfigFile = filepath.Join(t.TempDir(), "fallback.yaml")
	require.NoError(t, os.WriteFile(cfg.FallbackConfigFile, []byte(webhookConfig("http://127.0.0.1:1/").AlertmanagerConfig), 0o644))
	c := newCluster(t, 3, cfg)

	// No sync starts a tenant without a configuration: its first request does, on the replica that
	// serves it, and its first change on the others.
	id := c.nodes[1].createSilence("newcomer", "alertname", "A")
	for i, n := range c.nodes {
		eventually(t, func() bool { return slices.Equal(n.silenceIDs("newcomer"), []string{id}) }, fmt.Sprintf("node %d has the silence", i))
	}
	require.Equal(t, "fallback", c.nodes[0].am.Tenants()[0].Config)
}

func TestReplication_UnreachableReplicaGetsTheFullStateLater(t *testing.T) {
	c := newCluster(t, 2, clusterConfig(t))
	c.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	c.ring.setUnreachable(c.nodes[1].addr, true)
	first := c.nodes[0].createSilence("t1", "alertname", "A")
	eventually(t, func() bool {
		return testutil.ToFloat64(c.nodes[0].am.metrics.stateReplications.WithLabelValues("failure")) == 1
	}, "the send failed")
	require.Empty(t, c.nodes[1].silenceIDs("t1"))

	// Reachable again: the next change goes with the full state, so the missed silence arrives too.
	c.ring.setUnreachable(c.nodes[1].addr, false)
	second := c.nodes[0].createSilence("t1", "alertname", "B")
	want := []string{first, second}
	slices.Sort(want)
	eventually(t, func() bool { return slices.Equal(c.nodes[1].silenceIDs("t1"), want) }, "both silences on the second replica")
}

func TestReplication_RingChangeMovesTenants(t *testing.T) {
	c := newCluster(t, 3, clusterConfig(t))
	c.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	id := c.nodes[0].createSilence("t1", "alertname", "A")
	eventually(t, func() bool { return len(c.nodes[2].silenceIDs("t1")) == 1 }, "replicated")

	// The third instance is no longer a replica: within the check period it stops the tenant, and
	// persists its state for whoever runs it next.
	c.ring.set(c.nodes[0].addr, c.nodes[1].addr)
	eventually(t, func() bool { return c.nodes[2].am.instance("t1") == nil }, "the tenant stops on the instance that left")
	eventually(t, func() bool {
		state, err := c.nodes[2].store.GetState(context.Background(), "t1")
		if err != nil {
			return false
		}
		sil, _, err := decodeState(state)
		return err == nil && strings.Contains(string(sil), id)
	}, "its state persisted")
	require.Equal(t, 1, c.nodes[1].am.instance("t1").Position())

	// It comes back, and catches up.
	c.ring.set(c.nodes[2].addr, c.nodes[0].addr, c.nodes[1].addr)
	eventually(t, func() bool { return slices.Equal(c.nodes[2].silenceIDs("t1"), []string{id}) }, "the tenant starts again")
	eventually(t, func() bool { return c.nodes[1].am.instance("t1").Position() == 2 }, "positions follow the ring")
}

func TestStateAPI_Errors(t *testing.T) {
	c := newCluster(t, 1, clusterConfig(t))
	c.setConfig("t1", webhookConfig("http://127.0.0.1:1/"))
	client, err := c.ring.view("").Client(c.nodes[0].addr)
	require.NoError(t, err)
	ctx := tenant.NewContext(context.Background(), "t1")

	_, err = client.UpdateState(context.Background(), &alertmanagerpb.StatePart{Key: stateKeySilences})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "no tenant")
	_, err = client.UpdateState(tenant.NewContext(context.Background(), "other"), &alertmanagerpb.StatePart{Key: stateKeySilences})
	require.Equal(t, codes.Unavailable, status.Code(err), "a tenant not running here")
	_, err = client.UpdateState(ctx, &alertmanagerpb.StatePart{Key: "alerts"})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "an unknown part")
	_, err = client.UpdateState(ctx, &alertmanagerpb.StatePart{Key: stateKeyNflog, Data: []byte{0xff, 0xff}})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "a part that does not decode")
	_, err = client.ReadState(tenant.NewContext(context.Background(), "other"), &alertmanagerpb.ReadStateRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))

	id := c.nodes[0].createSilence("t1", "alertname", "A")
	full, err := client.ReadState(ctx, &alertmanagerpb.ReadStateRequest{})
	require.NoError(t, err)
	require.Len(t, full.GetParts(), 2)
	s, err := silence.New(silence.Options{Retention: time.Hour, Metrics: prometheusRegistry()})
	require.NoError(t, err)
	require.NoError(t, s.Merge(full.GetParts()[0].GetData()))
	got, err := s.QueryOne(context.Background(), silence.QIDs(id))
	require.NoError(t, err)
	require.Equal(t, id, got.Id)
}

// blockingClient records the parts it is sent; the first send waits for release.
type blockingClient struct {
	alertmanagerpb.AlertmanagerClient
	started, release chan struct{}
	mtx              sync.Mutex
	got              []string
}

func (c *blockingClient) UpdateState(ctx context.Context, part *alertmanagerpb.StatePart, _ ...grpc.CallOption) (*alertmanagerpb.UpdateStateResponse, error) {
	c.mtx.Lock()
	first := len(c.got) == 0
	c.got = append(c.got, string(part.GetData()))
	c.mtx.Unlock()
	if first {
		close(c.started)
		<-c.release
	}
	return &alertmanagerpb.UpdateStateResponse{}, nil
}

func (c *blockingClient) parts() []string {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	return slices.Clone(c.got)
}

func TestStateSender_FullQueueIsReplacedByTheFullState(t *testing.T) {
	client := &blockingClient{started: make(chan struct{}), release: make(chan struct{})}
	results := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "results"}, []string{"result"})
	fullState := func() ([]*alertmanagerpb.StatePart, error) {
		return []*alertmanagerpb.StatePart{{Key: stateKeySilences, Data: []byte("full")}}, nil
	}
	s := newStateSender("t1", func(string) (alertmanagerpb.AlertmanagerClient, error) { return client, nil },
		func() []string { return []string{"replica"} }, fullState, results, discardLogger())
	defer s.stop()
	part := func(i int) *alertmanagerpb.StatePart {
		return &alertmanagerpb.StatePart{Key: stateKeyNflog, Data: []byte(strconv.Itoa(i))}
	}

	s.enqueue(part(0))
	<-client.started
	// The replica is slow: the queue fills, and the changes behind the first are dropped for the full
	// state; the enqueues never block.
	for i := 1; i <= stateQueueSize+2; i++ {
		s.enqueue(part(i))
	}
	close(client.release)
	// The full state is marshalled when it is sent, so it holds the changes queued behind the drop too.
	want := []string{"0", "full"}
	eventually(t, func() bool { return testutil.ToFloat64(results.WithLabelValues("success")) == 2 }, "two sends")
	require.Equal(t, want, client.parts())
	require.Equal(t, float64(stateQueueSize+1), testutil.ToFloat64(results.WithLabelValues("dropped")))

	// Then changes go one by one again.
	s.enqueue(part(-1))
	eventually(t, func() bool { return slices.Equal(client.parts(), append(want, "-1")) }, "the next change")
}
