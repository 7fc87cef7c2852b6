// Package kvtest is the conformance suite of kv.Client: the behaviours every ring store backend must
// have, written once and run by each backend's tests, with the test value and codec they share.
package kvtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// Options describe how a backend legitimately differs from the others.
type Options struct {
	// MaxCASRetries is how many times the client calls a CAS function that keeps asking to be retried
	// (counting the first call) before CAS gives up with kv.ErrTooManyCASRetries. It must be at least 3.
	MaxCASRetries int
}

// NewClientFunc returns a kv.Client whose values are encoded with codec, and arranges (t.Cleanup) for it
// to be released when t ends. Clients of different calls may share a store: the suite uses a key of its
// own in every subtest.
type NewClientFunc func(t *testing.T, codec kv.Codec) kv.Client

// RunClientConformance runs, as subtests of t, the behaviours every kv.Client must have: Get of a missing
// key, the outcomes of CAS, values not shared between callers, concurrent CAS losing no update, and
// WatchKey delivering current and later values and stopping. Values are Counters.
func RunClientConformance(t *testing.T, newClient NewClientFunc, opts Options) {
	t.Helper()
	if opts.MaxCASRetries < 3 {
		t.Fatalf("kvtest: Options.MaxCASRetries is %d; the suite needs at least 3, as one of its CAS functions asks to be retried twice", opts.MaxCASRetries)
	}
	s := suite{newClient: newClient, opts: opts}
	t.Run("GetMissingKeyIsNil", s.testGetMissingKeyIsNil)
	t.Run("CASOutcomes", s.testCASOutcomes)
	t.Run("ValuesAreNotSharedWithCallers", s.testValuesAreNotShared)
	t.Run("ConcurrentCASLosesNoUpdate", s.testConcurrentCASLosesNoUpdate)
	t.Run("WatchKeySeesCurrentAndLatestValuesAndStopsWhenFReturnsFalse", s.testWatchKeySeesCurrentAndLatest)
	t.Run("WatchKeyWaitsForMissingKeyAndStopsOnContext", s.testWatchKeyWaitsForMissingKey)
}

type suite struct {
	newClient NewClientFunc
	opts      Options
}

// setUp returns a fresh client, a context bounding the subtest, and the subtest's own key.
func (s suite) setUp(t *testing.T) (kv.Client, context.Context, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return s.newClient(t, CountersCodec{}), ctx, t.Name()
}

func get(t *testing.T, ctx context.Context, c kv.Client, key string) any {
	t.Helper()
	v, err := c.Get(ctx, key)
	require.NoError(t, err)
	return v
}

func (s suite) testGetMissingKeyIsNil(t *testing.T) {
	c, ctx, key := s.setUp(t)
	require.Nil(t, get(t, ctx, c, key))
}

func (s suite) testCASOutcomes(t *testing.T) {
	errBoom := errors.New("boom")
	tests := map[string]struct {
		f         func(call int) (out any, retry bool, err error) // call counts from 1
		wantErr   error
		want      Counters // nil: the key must still be missing
		wantCalls int
	}{
		"nil out writes nothing": {
			f:         func(int) (any, bool, error) { return nil, false, nil },
			wantCalls: 1,
		},
		"error without retry stops": {
			f:       func(int) (any, bool, error) { return nil, false, errBoom },
			wantErr: errBoom, wantCalls: 1,
		},
		"retry then success": {
			f: func(call int) (any, bool, error) {
				if call < 3 {
					return nil, true, errBoom
				}
				return Counters{"x": 1}, false, nil
			},
			want: Counters{"x": 1}, wantCalls: 3,
		},
		"retry forever gives up": {
			f:       func(int) (any, bool, error) { return nil, true, errBoom },
			wantErr: kv.ErrTooManyCASRetries, wantCalls: s.opts.MaxCASRetries,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, ctx, key := s.setUp(t)
			calls := 0
			err := c.CAS(ctx, key, func(any) (any, bool, error) {
				calls++
				return tc.f(calls)
			})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.wantCalls, calls)
			if tc.want == nil {
				require.Nil(t, get(t, ctx, c, key))
			} else {
				require.Equal(t, tc.want, get(t, ctx, c, key))
			}
		})
	}
}

// testValuesAreNotShared checks that neither what CAS was given nor what Get returned is kept by the
// store: changing them must not change the stored value.
func (s suite) testValuesAreNotShared(t *testing.T) {
	c, ctx, key := s.setUp(t)
	var out Counters
	require.NoError(t, c.CAS(ctx, key, func(in any) (any, bool, error) {
		v, retry, err := Increment("a")(in)
		out, _ = v.(Counters)
		return v, retry, err
	}))
	out["a"] = 100
	got, ok := get(t, ctx, c, key).(Counters)
	require.True(t, ok, "Get returns the value CAS wrote")
	require.Equal(t, Counters{"a": 1}, got, "changing what CAS wrote must not change the store")

	got["a"] = 200
	require.Equal(t, Counters{"a": 1}, get(t, ctx, c, key), "changing what Get returned must not change the store")

	require.NoError(t, c.CAS(ctx, key, Increment("b")))
	require.Equal(t, Counters{"a": 1, "b": 1}, get(t, ctx, c, key))
}

// testConcurrentCASLosesNoUpdate runs writers that each increment the same key. A CAS may give up with
// kv.ErrTooManyCASRetries when others keep winning (nothing is written then, so the writer tries again,
// as the ring's users do), but no successful CAS may be lost.
func (s suite) testConcurrentCASLosesNoUpdate(t *testing.T) {
	c, ctx, key := s.setUp(t)
	const writers, perWriter = 8, 20
	var wg sync.WaitGroup
	for w := range writers {
		name := []string{"a", "b"}[w%2]
		wg.Go(func() {
			for range perWriter {
				err := c.CAS(ctx, key, Increment(name))
				for errors.Is(err, kv.ErrTooManyCASRetries) {
					err = c.CAS(ctx, key, Increment(name))
				}
				if err != nil {
					t.Error(err) // not require: this is not the test's goroutine
					return
				}
			}
		})
	}
	wg.Wait()
	each := writers / 2 * perWriter
	require.Equal(t, Counters{"a": each, "b": each}, get(t, ctx, c, key))
}

func (s suite) testWatchKeySeesCurrentAndLatest(t *testing.T) {
	c, ctx, key := s.setUp(t)
	require.NoError(t, c.CAS(ctx, key, Increment("n")))
	w := WatchCounter(t, ctx, c, key, "n", 5)
	require.Equal(t, 1, w.Next(t), "the current value comes first")
	for range 4 {
		require.NoError(t, c.CAS(ctx, key, Increment("n")))
	}
	// Changes may be coalesced, but the watcher must reach the latest value and then stop.
	w.WaitFor(t, 5)
	w.WaitStopped(t, "when f returned false")
}

func (s suite) testWatchKeyWaitsForMissingKey(t *testing.T) {
	c, ctx, key := s.setUp(t)
	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := WatchCounter(t, watchCtx, c, key, "n", 0)
	require.NoError(t, c.CAS(ctx, key, Increment("n")))
	w.WaitFor(t, 1)
	require.NoError(t, c.CAS(ctx, key, Increment("n")))
	w.WaitFor(t, 2)
	cancel()
	w.WaitStopped(t, "on context cancellation")
}
