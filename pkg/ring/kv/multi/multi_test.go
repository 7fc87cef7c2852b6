package multi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
)

// counters is the test value: a map, so aliasing between callers would show.
type counters map[string]int

type countersCodec struct{}

func (countersCodec) Name() string                 { return "counters.json" }
func (countersCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }
func (countersCodec) Decode(b []byte) (any, error) {
	var c counters
	err := json.Unmarshal(b, &c)
	return c, err
}

func increment(name string) func(any) (any, bool, error) {
	return func(in any) (any, bool, error) {
		c, _ := in.(counters)
		if c == nil {
			c = counters{}
		}
		c[name]++
		return c, false, nil
	}
}

func set(v counters) func(any) (any, bool, error) {
	return func(any) (any, bool, error) { return v, false, nil }
}

// failingClient is a store whose writes fail or, with hang, wait until their context is done.
type failingClient struct {
	kv.Client
	hang bool
}

var errStoreDown = errors.New("store is down")

func (f failingClient) CAS(ctx context.Context, _ string, _ func(any) (any, bool, error)) error {
	if f.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return errStoreDown
}

type fixture struct {
	multi                *Client
	primary, secondary   *inmemory.Client
	mirrors, mirrorFails prometheus.Counter
}

func newFixture(t *testing.T, mirror bool) *fixture {
	t.Helper()
	cfg := Config{Primary: "etcd", Secondary: "memberlist", MirrorEnabled: mirror, MirrorTimeout: time.Second}
	require.NoError(t, cfg.Validate())
	p, s := inmemory.New(countersCodec{}), inmemory.New(countersCodec{})
	m := New(cfg, p, s, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	return &fixture{multi: m, primary: p, secondary: s, mirrors: m.metrics.mirrorWrites, mirrorFails: m.metrics.mirrorFailures}
}

func get(t *testing.T, c kv.Client, key string) any {
	t.Helper()
	v, err := c.Get(t.Context(), key)
	require.NoError(t, err)
	return v
}

func TestClient_ReadsFromPrimary(t *testing.T) {
	ctx := t.Context()
	fx := newFixture(t, false)
	require.NoError(t, fx.primary.CAS(ctx, "k", set(counters{"primary": 1})))
	require.NoError(t, fx.secondary.CAS(ctx, "k", set(counters{"secondary": 1})))
	require.NoError(t, fx.secondary.CAS(ctx, "only-secondary", set(counters{"secondary": 1})))

	require.Equal(t, counters{"primary": 1}, get(t, fx.multi, "k"))
	require.Nil(t, get(t, fx.multi, "only-secondary"))

	var watched any
	fx.multi.WatchKey(ctx, "k", func(v any) bool { watched = v; return false })
	require.Equal(t, counters{"primary": 1}, watched)
}

func TestClient_CASWithoutMirroringWritesOnlyPrimary(t *testing.T) {
	fx := newFixture(t, false)
	require.NoError(t, fx.multi.CAS(t.Context(), "k", increment("n")))
	require.Equal(t, counters{"n": 1}, get(t, fx.primary, "k"))
	require.Nil(t, get(t, fx.secondary, "k"))
	require.Zero(t, testutil.ToFloat64(fx.mirrors))
}

func TestClient_CASMirrorsPrimaryValueToSecondary(t *testing.T) {
	ctx := t.Context()
	fx := newFixture(t, true)
	require.NoError(t, fx.primary.CAS(ctx, "k", set(counters{"n": 5})))
	require.NoError(t, fx.secondary.CAS(ctx, "k", set(counters{"stale": 1})))

	require.NoError(t, fx.multi.CAS(ctx, "k", increment("n")))
	// The secondary gets what the primary holds, not f applied to the secondary's own value.
	require.Equal(t, counters{"n": 6}, get(t, fx.primary, "k"))
	require.Equal(t, counters{"n": 6}, get(t, fx.secondary, "k"))
	require.Equal(t, 1.0, testutil.ToFloat64(fx.mirrors))
	require.Zero(t, testutil.ToFloat64(fx.mirrorFails))
}

func TestClient_CASThatWritesNothingIsNotMirrored(t *testing.T) {
	ctx := t.Context()
	fx := newFixture(t, true)
	require.NoError(t, fx.primary.CAS(ctx, "k", set(counters{"n": 5})))
	require.NoError(t, fx.multi.CAS(ctx, "k", func(any) (any, bool, error) { return nil, false, nil }))
	require.Nil(t, get(t, fx.secondary, "k"))
	require.Zero(t, testutil.ToFloat64(fx.mirrors))
}

func TestClient_CASPrimaryErrorIsReturnedAndNotMirrored(t *testing.T) {
	fx := newFixture(t, true)
	boom := errors.New("boom")
	err := fx.multi.CAS(t.Context(), "k", func(any) (any, bool, error) { return nil, false, boom })
	require.ErrorIs(t, err, boom)

	m := New(Config{Primary: "a", Secondary: "b", MirrorEnabled: true, MirrorTimeout: time.Second},
		failingClient{}, fx.secondary, nil, slog.New(slog.DiscardHandler))
	require.ErrorIs(t, m.CAS(t.Context(), "k", increment("n")), errStoreDown)
	require.Nil(t, get(t, fx.secondary, "k"))
}

func TestClient_MirrorFailureDoesNotFailCAS(t *testing.T) {
	tests := map[string]failingClient{
		"secondary fails": {},
		"secondary hangs": {hang: true}, // cut off by the mirror timeout
	}
	for name, secondary := range tests {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				primary := inmemory.New(countersCodec{})
				secondary.Client = inmemory.New(countersCodec{})
				cfg := Config{Primary: "etcd", Secondary: "memberlist", MirrorEnabled: true, MirrorTimeout: 2 * time.Second}
				m := New(cfg, primary, secondary, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))

				start := time.Now()
				require.NoError(t, m.CAS(t.Context(), "k", increment("n")))
				require.LessOrEqual(t, time.Since(start), cfg.MirrorTimeout, "a hanging secondary delays the write by at most the timeout")
				require.Equal(t, counters{"n": 1}, get(t, primary, "k"))
				require.Equal(t, 1.0, testutil.ToFloat64(m.metrics.mirrorWrites))
				require.Equal(t, 1.0, testutil.ToFloat64(m.metrics.mirrorFailures))
			})
		})
	}
}

func TestClient_MirroringCanBeToggled(t *testing.T) {
	ctx := t.Context()
	fx := newFixture(t, false)
	fx.multi.SetMirrorEnabled(true)
	require.NoError(t, fx.multi.CAS(ctx, "k", increment("n")))
	fx.multi.SetMirrorEnabled(false)
	require.NoError(t, fx.multi.CAS(ctx, "k", increment("n")))
	require.Equal(t, counters{"n": 2}, get(t, fx.primary, "k"))
	require.Equal(t, counters{"n": 1}, get(t, fx.secondary, "k"))
}

func TestClient_SetPrimarySwitchesReadsAndWrites(t *testing.T) {
	ctx := t.Context()
	fx := newFixture(t, true)
	require.NoError(t, fx.multi.CAS(ctx, "k", increment("n")))
	require.NoError(t, fx.secondary.CAS(ctx, "k", increment("only-secondary")))

	require.ErrorContains(t, fx.multi.SetPrimary("consul"), `unknown store "consul"`)
	require.Equal(t, "etcd", fx.multi.Primary())
	require.NoError(t, fx.multi.SetPrimary("memberlist"))
	require.Equal(t, "memberlist", fx.multi.Primary())
	require.Equal(t, 1.0, testutil.ToFloat64(fx.multi.metrics.primary.WithLabelValues("memberlist")))
	require.Equal(t, 0.0, testutil.ToFloat64(fx.multi.metrics.primary.WithLabelValues("etcd")))

	require.Equal(t, counters{"n": 1, "only-secondary": 1}, get(t, fx.multi, "k"))
	// Writes now start at the new primary and are mirrored back to the old one, so a rollback loses nothing.
	require.NoError(t, fx.multi.CAS(ctx, "k", increment("n")))
	require.Equal(t, counters{"n": 2, "only-secondary": 1}, get(t, fx.secondary, "k"))
	require.Equal(t, counters{"n": 2, "only-secondary": 1}, get(t, fx.primary, "k"))

	require.NoError(t, fx.multi.SetPrimary("memberlist"), "switching to the current primary is a no-op")
	require.NoError(t, fx.multi.SetPrimary("etcd"))
	require.Equal(t, "etcd", fx.multi.Primary())
}

func TestClient_WatchKeyFollowsPrimarySwitch(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	fx := newFixture(t, false)
	require.NoError(t, fx.primary.CAS(ctx, "k", set(counters{"etcd": 1})))
	require.NoError(t, fx.secondary.CAS(ctx, "k", set(counters{"memberlist": 1})))

	seen := make(chan counters, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fx.multi.WatchKey(ctx, "k", func(v any) bool { seen <- v.(counters); return true })
	}()
	next := func() counters {
		t.Helper()
		select {
		case v := <-seen:
			return v
		case <-time.After(10 * time.Second):
			t.Fatal("watcher delivered nothing")
			return nil
		}
	}
	require.Equal(t, counters{"etcd": 1}, next())

	require.NoError(t, fx.multi.SetPrimary("memberlist"))
	require.Equal(t, counters{"memberlist": 1}, next(), "the new primary's current value comes first")
	// Only the new primary's changes are delivered now: the old one's write, made first, never shows.
	require.NoError(t, fx.primary.CAS(ctx, "k", set(counters{"etcd": 2})))
	require.NoError(t, fx.secondary.CAS(ctx, "k", set(counters{"memberlist": 2})))
	require.Equal(t, counters{"memberlist": 2}, next())

	require.NoError(t, fx.multi.SetPrimary("etcd"))
	require.Equal(t, counters{"etcd": 2}, next())

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not stop on context cancellation")
	}
}

func TestClient_WatchKeyStopsWhenFReturnsFalseAcrossSwitch(t *testing.T) {
	ctx := t.Context()
	fx := newFixture(t, false)
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		fx.multi.WatchKey(ctx, "k", func(any) bool { calls++; return false })
	}()
	require.NoError(t, fx.primary.CAS(ctx, "k", increment("n")))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not stop when f returned false")
	}
	require.Equal(t, 1, calls)
	// A later switch must not revive the finished watch.
	require.NoError(t, fx.multi.SetPrimary("memberlist"))
	require.NoError(t, fx.secondary.CAS(ctx, "k", increment("n")))
	require.Equal(t, 1, calls)
}

// getHookClient runs onGet before every Get.
type getHookClient struct {
	kv.Client
	onGet func()
}

func (h getHookClient) Get(ctx context.Context, key string) (any, error) {
	h.onGet()
	return h.Client.Get(ctx, key)
}

func TestClient_CopyIsDroppedWhenPrimarySwitchesDuringIt(t *testing.T) {
	ctx := t.Context()
	primary, secondary := inmemory.New(countersCodec{}), inmemory.New(countersCodec{})
	require.NoError(t, secondary.CAS(ctx, "k", set(counters{"newer": 1})))
	var m *Client
	hooked := getHookClient{Client: primary, onGet: func() { require.NoError(t, m.SetPrimary("memberlist")) }}
	cfg := Config{Primary: "etcd", Secondary: "memberlist", MirrorEnabled: true, MirrorTimeout: time.Second}
	m = New(cfg, hooked, secondary, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))

	require.NoError(t, m.CAS(ctx, "k", increment("old")))
	require.Equal(t, counters{"old": 1}, get(t, primary, "k"))
	require.Equal(t, counters{"newer": 1}, get(t, secondary, "k"), "the new primary's value must not be overwritten")
	require.Equal(t, 1.0, testutil.ToFloat64(m.metrics.mirrorFailures))
}
