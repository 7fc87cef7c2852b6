package multi

import (
	"context"
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
	"github.com/strata-metrics/strata/pkg/ring/kv/kvtest"
)

// set is a CAS function that replaces the value with v.
func set(v kvtest.Counters) func(any) (any, bool, error) {
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
	p, s := inmemory.New(kvtest.CountersCodec{}), inmemory.New(kvtest.CountersCodec{})
	m := New(cfg, p, s, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	return &fixture{multi: m, primary: p, secondary: s, mirrors: m.metrics.mirrorWrites, mirrorFails: m.metrics.mirrorFailures}
}

func get(t *testing.T, c kv.Client, key string) any {
	t.Helper()
	v, err := c.Get(t.Context(), key)
	require.NoError(t, err)
	return v
}

func TestClient_Conformance(t *testing.T) {
	// Multi gives up when its primary does, so it retries as often as an inmemory client.
	primaryRetries := 0
	err := inmemory.New(kvtest.CountersCodec{}).CAS(t.Context(), "k", func(any) (any, bool, error) {
		primaryRetries++
		return nil, true, errors.New("retry")
	})
	require.ErrorIs(t, err, kv.ErrTooManyCASRetries)

	tests := map[string]bool{"mirroring": true, "no mirroring": false}
	for name, mirror := range tests {
		t.Run(name, func(t *testing.T) {
			kvtest.RunClientConformance(t, func(t *testing.T, codec kv.Codec) kv.Client {
				cfg := Config{Primary: "etcd", Secondary: "memberlist", MirrorEnabled: mirror, MirrorTimeout: time.Second}
				require.NoError(t, cfg.Validate())
				return New(cfg, inmemory.New(codec), inmemory.New(codec), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
			}, kvtest.Options{MaxCASRetries: primaryRetries})
		})
	}
}

func TestClient_ReadsFromPrimary(t *testing.T) {
	ctx := t.Context()
	fx := newFixture(t, false)
	require.NoError(t, fx.primary.CAS(ctx, "k", set(kvtest.Counters{"primary": 1})))
	require.NoError(t, fx.secondary.CAS(ctx, "k", set(kvtest.Counters{"secondary": 1})))
	require.NoError(t, fx.secondary.CAS(ctx, "only-secondary", set(kvtest.Counters{"secondary": 1})))

	require.Equal(t, kvtest.Counters{"primary": 1}, get(t, fx.multi, "k"))
	require.Nil(t, get(t, fx.multi, "only-secondary"))

	var watched any
	fx.multi.WatchKey(ctx, "k", func(v any) bool { watched = v; return false })
	require.Equal(t, kvtest.Counters{"primary": 1}, watched)
}

func TestClient_CASWithoutMirroringWritesOnlyPrimary(t *testing.T) {
	fx := newFixture(t, false)
	require.NoError(t, fx.multi.CAS(t.Context(), "k", kvtest.Increment("n")))
	require.Equal(t, kvtest.Counters{"n": 1}, get(t, fx.primary, "k"))
	require.Nil(t, get(t, fx.secondary, "k"))
	require.Zero(t, testutil.ToFloat64(fx.mirrors))
}

func TestClient_CASMirrorsPrimaryValueToSecondary(t *testing.T) {
	ctx := t.Context()
	fx := newFixture(t, true)
	require.NoError(t, fx.primary.CAS(ctx, "k", set(kvtest.Counters{"n": 5})))
	require.NoError(t, fx.secondary.CAS(ctx, "k", set(kvtest.Counters{"stale": 1})))

	require.NoError(t, fx.multi.CAS(ctx, "k", kvtest.Increment("n")))
	// The secondary gets what the primary holds, not f applied to the secondary's own value.
	require.Equal(t, kvtest.Counters{"n": 6}, get(t, fx.primary, "k"))
	require.Equal(t, kvtest.Counters{"n": 6}, get(t, fx.secondary, "k"))
	require.Equal(t, 1.0, testutil.ToFloat64(fx.mirrors))
	require.Zero(t, testutil.ToFloat64(fx.mirrorFails))
}

// textCodec stores strings. They are not kv.Mergeable, which stores other than memberlist do not need.
type textCodec struct{}

func (textCodec) Name() string                 { return "text" }
func (textCodec) Encode(v any) ([]byte, error) { return []byte(v.(string)), nil }
func (textCodec) Decode(b []byte) (any, error) { return string(b), nil }

func TestClient_CASMirrorsValuesThatAreNotMergeable(t *testing.T) {
	cfg := Config{Primary: "etcd", Secondary: "memberlist", MirrorEnabled: true, MirrorTimeout: time.Second}
	primary, secondary := inmemory.New(textCodec{}), inmemory.New(textCodec{})
	m := New(cfg, primary, secondary, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, m.CAS(t.Context(), "k", func(any) (any, bool, error) { return "v1", false, nil }))
	require.Equal(t, "v1", get(t, secondary, "k"))
	require.Zero(t, testutil.ToFloat64(m.metrics.mirrorFailures))
}

func TestClient_CASThatWritesNothingIsNotMirrored(t *testing.T) {
	ctx := t.Context()
	fx := newFixture(t, true)
	require.NoError(t, fx.primary.CAS(ctx, "k", set(kvtest.Counters{"n": 5})))
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
	require.ErrorIs(t, m.CAS(t.Context(), "k", kvtest.Increment("n")), errStoreDown)
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
				primary := inmemory.New(kvtest.CountersCodec{})
				secondary.Client = inmemory.New(kvtest.CountersCodec{})
				cfg := Config{Primary: "etcd", Secondary: "memberlist", MirrorEnabled: true, MirrorTimeout: 2 * time.Second}
				m := New(cfg, primary, secondary, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))

				start := time.Now()
				require.NoError(t, m.CAS(t.Context(), "k", kvtest.Increment("n")))
				require.LessOrEqual(t, time.Since(start), cfg.MirrorTimeout, "a hanging secondary delays the write by at most the timeout")
				require.Equal(t, kvtest.Counters{"n": 1}, get(t, primary, "k"))
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
	require.NoError(t, fx.multi.CAS(ctx, "k", kvtest.Increment("n")))
	fx.multi.SetMirrorEnabled(false)
	require.NoError(t, fx.multi.CAS(ctx, "k", kvtest.Increment("n")))
	require.Equal(t, kvtest.Counters{"n": 2}, get(t, fx.primary, "k"))
	require.Equal(t, kvtest.Counters{"n": 1}, get(t, fx.secondary, "k"))
}

func TestClient_SetPrimarySwitchesReadsAndWrites(t *testing.T) {
	ctx := t.Context()
	fx := newFixture(t, true)
	require.NoError(t, fx.multi.CAS(ctx, "k", kvtest.Increment("n")))
	require.NoError(t, fx.secondary.CAS(ctx, "k", kvtest.Increment("only-secondary")))

	require.ErrorContains(t, fx.multi.SetPrimary("consul"), `unknown store "consul"`)
	require.Equal(t, "etcd", fx.multi.Primary())
	require.NoError(t, fx.multi.SetPrimary("memberlist"))
	require.Equal(t, "memberlist", fx.multi.Primary())
	require.Equal(t, 1.0, testutil.ToFloat64(fx.multi.metrics.primary.WithLabelValues("memberlist")))
	require.Equal(t, 0.0, testutil.ToFloat64(fx.multi.metrics.primary.WithLabelValues("etcd")))

	require.Equal(t, kvtest.Counters{"n": 1, "only-secondary": 1}, get(t, fx.multi, "k"))
	// Writes now start at the new primary and are mirrored back to the old one, so a rollback loses nothing.
	require.NoError(t, fx.multi.CAS(ctx, "k", kvtest.Increment("n")))
	require.Equal(t, kvtest.Counters{"n": 2, "only-secondary": 1}, get(t, fx.secondary, "k"))
	require.Equal(t, kvtest.Counters{"n": 2, "only-secondary": 1}, get(t, fx.primary, "k"))

	require.NoError(t, fx.multi.SetPrimary("memberlist"), "switching to the current primary is a no-op")
	require.NoError(t, fx.multi.SetPrimary("etcd"))
	require.Equal(t, "etcd", fx.multi.Primary())
}

func TestClient_WatchKeyFollowsPrimarySwitch(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	fx := newFixture(t, false)
	require.NoError(t, fx.primary.CAS(ctx, "k", set(kvtest.Counters{"etcd": 1})))
	require.NoError(t, fx.secondary.CAS(ctx, "k", set(kvtest.Counters{"memberlist": 1})))

	seen := make(chan kvtest.Counters, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fx.multi.WatchKey(ctx, "k", func(v any) bool { seen <- v.(kvtest.Counters); return true })
	}()
	next := func() kvtest.Counters {
		t.Helper()
		select {
		case v := <-seen:
			return v
		case <-time.After(10 * time.Second):
			t.Fatal("watcher delivered nothing")
			return nil
		}
	}
	require.Equal(t, kvtest.Counters{"etcd": 1}, next())

	require.NoError(t, fx.multi.SetPrimary("memberlist"))
	require.Equal(t, kvtest.Counters{"memberlist": 1}, next(), "the new primary's current value comes first")
	// Only the new primary's changes are delivered now: the old one's write, made first, never shows.
	require.NoError(t, fx.primary.CAS(ctx, "k", set(kvtest.Counters{"etcd": 2})))
	require.NoError(t, fx.secondary.CAS(ctx, "k", set(kvtest.Counters{"memberlist": 2})))
	require.Equal(t, kvtest.Counters{"memberlist": 2}, next())

	require.NoError(t, fx.multi.SetPrimary("etcd"))
	require.Equal(t, kvtest.Counters{"etcd": 2}, next())

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
	require.NoError(t, fx.primary.CAS(ctx, "k", kvtest.Increment("n")))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not stop when f returned false")
	}
	require.Equal(t, 1, calls)
	// A later switch must not revive the finished watch.
	require.NoError(t, fx.multi.SetPrimary("memberlist"))
	require.NoError(t, fx.secondary.CAS(ctx, "k", kvtest.Increment("n")))
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
	primary, secondary := inmemory.New(kvtest.CountersCodec{}), inmemory.New(kvtest.CountersCodec{})
	require.NoError(t, secondary.CAS(ctx, "k", set(kvtest.Counters{"newer": 1})))
	var m *Client
	hooked := getHookClient{Client: primary, onGet: func() { require.NoError(t, m.SetPrimary("memberlist")) }}
	cfg := Config{Primary: "etcd", Secondary: "memberlist", MirrorEnabled: true, MirrorTimeout: time.Second}
	m = New(cfg, hooked, secondary, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))

	require.NoError(t, m.CAS(ctx, "k", kvtest.Increment("old")))
	require.Equal(t, kvtest.Counters{"old": 1}, get(t, primary, "k"))
	require.Equal(t, kvtest.Counters{"newer": 1}, get(t, secondary, "k"), "the new primary's value must not be overwritten")
	require.Equal(t, 1.0, testutil.ToFloat64(m.metrics.mirrorFailures))
}
