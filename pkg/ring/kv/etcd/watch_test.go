package etcd

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchCounter runs WatchKey on key in the background, sending every delivered value of counter "n" to
// the returned channel; done is closed when WatchKey returns. It fails the test if values go backwards.
func watchCounter(t *testing.T, ctx context.Context, c *Client, key string, stopAt int) (seen <-chan int, done <-chan struct{}) {
	seenCh, doneCh := make(chan int, 1000), make(chan struct{})
	go func() {
		defer close(doneCh)
		last := 0
		c.WatchKey(ctx, key, func(v any) bool {
			n := v.(counters)["n"]
			if n <= last {
				t.Errorf("watcher got stale value %d after %d", n, last)
			}
			last = n
			seenCh <- n
			return stopAt == 0 || n < stopAt
		})
	}()
	return seenCh, doneCh
}

// waitFor reads seen until it yields want, failing the test if that takes too long.
func waitFor(t *testing.T, seen <-chan int, want int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case n := <-seen:
			if n == want {
				return
			}
		case <-deadline:
			t.Fatalf("watcher never saw value %d", want)
		}
	}
}

func waitClosed(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("watcher did not stop %s", what)
	}
}

func TestClient_WatchKeySeesCurrentAndLatestValues(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startEtcd(t)
	c, writer := newTestClient(t, s.testConfig()), newTestClient(t, s.testConfig())
	require.NoError(t, writer.CAS(ctx, "k", increment("n")))

	seen, done := watchCounter(t, ctx, c, "k", 5)
	require.Equal(t, 1, <-seen, "the current value comes first")
	for range 4 {
		require.NoError(t, writer.CAS(ctx, "k", increment("n")))
	}
	waitFor(t, seen, 5)
	waitClosed(t, done, "when f returned false")
}

func TestClient_WatchKeyWaitsForMissingKeyAndStopsOnContext(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startEtcd(t)
	c := newTestClient(t, s.testConfig())
	watchCtx, cancel := context.WithCancel(ctx)
	seen, done := watchCounter(t, watchCtx, c, "later", 0)

	// Deleting a key delivers nothing; the next write is delivered.
	require.NoError(t, c.CAS(ctx, "later", increment("n")))
	waitFor(t, seen, 1)
	_, err := s.adminClient(t, "", "").Delete(ctx, "later")
	require.NoError(t, err)
	require.NoError(t, c.CAS(ctx, "later", func(any) (any, bool, error) { return counters{"n": 7}, false, nil }))
	waitFor(t, seen, 7)

	cancel()
	waitClosed(t, done, "on context cancellation")
}

func TestClient_WatchKeyStopsWhenClientCloses(t *testing.T) {
	t.Parallel()
	s := startEtcd(t)
	c := newTestClient(t, s.testConfig())
	_, done := watchCounter(t, testContext(t), c, "k", 0)
	require.NoError(t, c.Close())
	waitClosed(t, done, "when the client was closed")
}

// A compaction between WatchKey's read and its watch makes the watch's start revision unavailable; the
// watcher must start over and still deliver the latest value, never an older one.
func TestClient_WatchKeyStartsOverAfterCompaction(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startEtcd(t)
	c, writer := newTestClient(t, s.testConfig()), newTestClient(t, s.testConfig())
	admin := s.adminClient(t, "", "")
	require.NoError(t, writer.CAS(ctx, "k", increment("n")))

	compacted := false
	c.beforeWatch = func() {
		if compacted {
			return
		}
		compacted = true
		// This runs in the watcher's goroutine, where require must not stop the test.
		for range 3 {
			if err := writer.CAS(ctx, "k", increment("n")); err != nil {
				t.Error(err)
			}
		}
		resp, err := admin.Get(ctx, "k")
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := admin.Compact(ctx, resp.Header.Revision); err != nil {
			t.Error(err)
		}
	}
	seen, _ := watchCounter(t, ctx, c, "k", 0)
	require.Equal(t, 1, <-seen)
	waitFor(t, seen, 4)
	require.GreaterOrEqual(t, testutil.ToFloat64(c.metrics.watchRestarts), 1.0)

	// The restarted watch keeps working.
	require.NoError(t, writer.CAS(ctx, "k", increment("n")))
	waitFor(t, seen, 5)
}

// When etcd goes away and comes back, the watcher reconnects and sees writes made after the restart.
func TestClient_WatchKeySurvivesEtcdRestart(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startEtcd(t)
	c, writer := newTestClient(t, s.testConfig()), newTestClient(t, s.testConfig())
	require.NoError(t, writer.CAS(ctx, "k", increment("n")))
	seen, _ := watchCounter(t, ctx, c, "k", 0)
	waitFor(t, seen, 1)

	s.stop()
	s.start()
	// The writer may need a few attempts while its connection comes back.
	require.Eventually(t, func() bool { return writer.CAS(ctx, "k", increment("n")) == nil }, 30*time.Second, 100*time.Millisecond)
	waitFor(t, seen, 2)
}

func TestClient_UsernameAndPassword(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startEtcd(t)
	admin := s.adminClient(t, "", "")
	_, err := admin.UserAdd(ctx, "root", "rootpw")
	require.NoError(t, err)
	_, err = admin.UserGrantRole(ctx, "root", "root")
	require.NoError(t, err)
	// A user that may only touch the ring's key, as an operator would set it up.
	_, err = admin.RoleAdd(ctx, "ring")
	require.NoError(t, err)
	_, err = admin.RoleGrantPermission(ctx, "ring", "ring", "", clientv3.PermissionType(clientv3.PermReadWrite))
	require.NoError(t, err)
	_, err = admin.UserAdd(ctx, "strata", "s3cret")
	require.NoError(t, err)
	_, err = admin.UserGrantRole(ctx, "strata", "ring")
	require.NoError(t, err)
	_, err = admin.AuthEnable(ctx)
	require.NoError(t, err)

	cfg := s.testConfig()
	cfg.Username, cfg.Password.Value = "strata", "s3cret"
	c := newTestClient(t, cfg)
	require.NoError(t, c.CAS(ctx, "ring", increment("n")))
	v, err := c.Get(ctx, "ring")
	require.NoError(t, err)
	require.Equal(t, counters{"n": 1}, v)
	_, err = c.Get(ctx, "other")
	require.Error(t, err, "the user has no permission outside its key")

	tests := map[string]struct{ user, password string }{
		"wrong password": {"strata", "wrong"},
		"no credentials": {"", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := s.testConfig()
			cfg.Username, cfg.Password.Value = tc.user, tc.password
			c, err := New(cfg, countersCodec{}, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				return // rejected while connecting: fine too
			}
			defer c.Close()
			_, err = c.Get(ctx, "ring")
			require.Error(t, err)
		})
	}
}
