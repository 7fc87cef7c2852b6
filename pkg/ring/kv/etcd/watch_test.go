package etcd

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-metrics/strata/pkg/ring/kv/kvtest"
)

// Deleting a key delivers nothing to its watchers (f takes values, not absences); the next write does.
func TestClient_WatchKeySkipsDeletionAndDeliversTheNextWrite(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startEtcd(t)
	c := newTestClient(t, s.testConfig())
	require.NoError(t, c.CAS(ctx, "k", kvtest.Increment("n")))
	w := kvtest.WatchCounter(t, ctx, c, "k", "n", 0)
	w.WaitFor(t, 1)

	_, err := s.adminClient(t, "", "").Delete(ctx, "k")
	require.NoError(t, err)
	require.NoError(t, c.CAS(ctx, "k", func(in any) (any, bool, error) {
		if in != nil {
			return nil, false, fmt.Errorf("CAS after the deletion got %v, want no value", in)
		}
		return kvtest.Counters{"n": 7}, false, nil
	}))
	require.Equal(t, 7, w.Next(t), "nothing is delivered for the deletion")
}

func TestClient_WatchKeyStopsWhenClientCloses(t *testing.T) {
	t.Parallel()
	s := startEtcd(t)
	c := newTestClient(t, s.testConfig())
	w := kvtest.WatchCounter(t, testContext(t), c, "k", "n", 0)
	require.NoError(t, c.Close())
	w.WaitStopped(t, "when the client was closed")
}

// A compaction between WatchKey's read and its watch makes the watch's start revision unavailable; the
// watcher must start over and still deliver the latest value, never an older one.
func TestClient_WatchKeyStartsOverAfterCompaction(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startEtcd(t)
	c, writer := newTestClient(t, s.testConfig()), newTestClient(t, s.testConfig())
	admin := s.adminClient(t, "", "")
	require.NoError(t, writer.CAS(ctx, "k", kvtest.Increment("n")))

	compacted := false
	c.beforeWatch = func() {
		if compacted {
			return
		}
		compacted = true
		// This runs in the watcher's goroutine, where require must not stop the test.
		for range 3 {
			if err := writer.CAS(ctx, "k", kvtest.Increment("n")); err != nil {
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
	w := kvtest.WatchCounter(t, ctx, c, "k", "n", 0)
	require.Equal(t, 1, w.Next(t))
	w.WaitFor(t, 4)
	require.GreaterOrEqual(t, testutil.ToFloat64(c.metrics.watchRestarts), 1.0)

	// The restarted watch keeps working.
	require.NoError(t, writer.CAS(ctx, "k", kvtest.Increment("n")))
	w.WaitFor(t, 5)
}

// When etcd goes away and comes back, the watcher reconnects and sees writes made after the restart.
func TestClient_WatchKeySurvivesEtcdRestart(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := startEtcd(t)
	c, writer := newTestClient(t, s.testConfig()), newTestClient(t, s.testConfig())
	require.NoError(t, writer.CAS(ctx, "k", kvtest.Increment("n")))
	w := kvtest.WatchCounter(t, ctx, c, "k", "n", 0)
	w.WaitFor(t, 1)

	s.stop()
	s.start()
	// The writer may need a few attempts while its connection comes back.
	require.Eventually(t, func() bool { return writer.CAS(ctx, "k", kvtest.Increment("n")) == nil }, 30*time.Second, 100*time.Millisecond)
	w.WaitFor(t, 2)
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
	require.NoError(t, c.CAS(ctx, "ring", kvtest.Increment("n")))
	v, err := c.Get(ctx, "ring")
	require.NoError(t, err)
	require.Equal(t, kvtest.Counters{"n": 1}, v)
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
			c, err := New(cfg, kvtest.CountersCodec{}, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				return // rejected while connecting: fine too
			}
			defer c.Close()
			_, err = c.Get(ctx, "ring")
			require.Error(t, err)
		})
	}
}
