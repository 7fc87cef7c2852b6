package ring

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/ring/kv/inmemory"
)

func TestLifecycler_TokensFileGivesTokensBackAfterTheRingForgotTheInstance(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	cfg := testLifecyclerConfig("ing-1")
	cfg.TokensFilePath = filepath.Join(t.TempDir(), "tokens", "tokens.json")

	first := newTestLifecycler(t, cfg, inmemory.New(DescCodec{}), clock)
	require.NoError(t, first.Start(ctx))
	require.NoError(t, first.Stop(ctx))
	require.FileExists(t, cfg.TokensFilePath)

	// A brand-new ring (the old entry is gone) still gets the same tokens back from the file.
	store := inmemory.New(DescCodec{})
	second := newTestLifecycler(t, cfg, store, clock)
	require.NoError(t, second.Start(ctx))
	defer func() { require.NoError(t, second.Stop(ctx)) }()
	require.Equal(t, first.Tokens(), second.Tokens())
	require.Equal(t, first.Tokens(), readDesc(t, store).Instances["ing-1"].Tokens)
}

func TestLifecycler_CorruptTokensFileIsAnError(t *testing.T) {
	cfg := testLifecyclerConfig("ing-1")
	cfg.TokensFilePath = filepath.Join(t.TempDir(), "tokens.json")
	require.NoError(t, os.WriteFile(cfg.TokensFilePath, []byte("not json"), 0o644))
	l := newTestLifecycler(t, cfg, inmemory.New(DescCodec{}), newTestClock())
	require.ErrorContains(t, l.Start(context.Background()), "tokens file")
}

// recordingKV remembers every state the instance had in the ring.
type recordingKV struct {
	kv.Client
	states []InstanceState
}

func (r *recordingKV) CAS(ctx context.Context, key string, f func(in any) (out any, retry bool, err error)) error {
	return r.Client.CAS(ctx, key, func(in any) (any, bool, error) {
		out, retry, err := f(in)
		if d, ok := out.(*Desc); ok && err == nil {
			r.states = append(r.states, d.Instances["ing-1"].State)
		}
		return out, retry, err
	})
}

func TestLifecycler_GoesThroughPendingJoiningActiveLeaving(t *testing.T) {
	ctx := context.Background()
	store := &recordingKV{Client: inmemory.New(DescCodec{})}
	cfg := testLifecyclerConfig("ing-1")
	cfg.UnregisterOnShutdown = false
	l := newTestLifecycler(t, cfg, store, newTestClock())
	require.NoError(t, l.Start(ctx))
	require.NoError(t, l.ChangeState(ctx, ACTIVE))
	require.NoError(t, l.Stop(ctx))
	require.Equal(t, []InstanceState{PENDING, JOINING, ACTIVE, LEAVING}, store.states)
}

func TestLifecycler_RestartKeepsTokensWhilePending(t *testing.T) {
	ctx := context.Background()
	store := &recordingKV{Client: inmemory.New(DescCodec{})}
	cfg := testLifecyclerConfig("ing-1")
	cfg.UnregisterOnShutdown = false
	clock := newTestClock()
	first := newTestLifecycler(t, cfg, store, clock)
	require.NoError(t, first.Start(ctx))
	require.NoError(t, first.Stop(ctx))

	second := newTestLifecycler(t, cfg, &tokensWhilePending{Client: store, t: t, want: first.Tokens()}, clock)
	require.NoError(t, second.Start(ctx))
	require.Equal(t, first.Tokens(), second.Tokens())
}

// tokensWhilePending checks that the PENDING entry written on restart still holds the old tokens.
type tokensWhilePending struct {
	kv.Client
	t    *testing.T
	want []uint32
}

func (c *tokensWhilePending) CAS(ctx context.Context, key string, f func(in any) (out any, retry bool, err error)) error {
	return c.Client.CAS(ctx, key, func(in any) (any, bool, error) {
		out, retry, err := f(in)
		if d, ok := out.(*Desc); ok && d.Instances["ing-1"].State == PENDING {
			require.Equal(c.t, c.want, d.Instances["ing-1"].Tokens)
		}
		return out, retry, err
	})
}

func TestLifecycler_AutoForgetsInstancesUnhealthyTooLong(t *testing.T) {
	ctx := context.Background()
	store := inmemory.New(DescCodec{})
	clock := newTestClock()

	dead := newTestLifecycler(t, testLifecyclerConfig("dead"), store, clock)
	require.NoError(t, dead.Start(ctx))
	dead.cancel() // dies without leaving: no more heartbeats

	cfg := testLifecyclerConfig("alive")
	cfg.AutoForgetAfter = 10 * time.Minute
	alive := newTestLifecycler(t, cfg, store, clock)
	require.NoError(t, alive.Start(ctx))
	defer func() { require.NoError(t, alive.Stop(ctx)) }()

	clock.advance(9 * time.Minute)
	require.NoError(t, alive.heartbeat(ctx))
	require.Contains(t, readDesc(t, store).Instances, "dead", "not unhealthy for long enough yet")

	clock.advance(2 * time.Minute)
	require.NoError(t, alive.heartbeat(ctx))
	require.NotContains(t, readDesc(t, store).Instances, "dead")
	require.Contains(t, readDesc(t, store).Instances, "alive")
}

func TestLifecycler_PrepareShutdownMakesStopUnregister(t *testing.T) {
	ctx := context.Background()
	store := inmemory.New(DescCodec{})
	cfg := testLifecyclerConfig("ing-1")
	cfg.UnregisterOnShutdown = false
	l := newTestLifecycler(t, cfg, store, newTestClock())
	require.NoError(t, l.Start(ctx))
	l.SetUnregisterOnShutdown(true)
	require.True(t, l.UnregisterOnShutdown())
	require.NoError(t, l.Stop(ctx))
	require.NotContains(t, readDesc(t, store).Instances, "ing-1")
}
