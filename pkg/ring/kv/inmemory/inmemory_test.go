package inmemory

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/ring/kv"
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

func TestClient_GetMissingKeyIsNil(t *testing.T) {
	c := New(countersCodec{})
	v, err := c.Get(context.Background(), "missing")
	require.NoError(t, err)
	require.Nil(t, v)
}

func TestClient_CASWritesAndValuesAreNotAliased(t *testing.T) {
	ctx := context.Background()
	c := New(countersCodec{})
	require.NoError(t, c.CAS(ctx, "k", increment("a")))

	v, err := c.Get(ctx, "k")
	require.NoError(t, err)
	got := v.(counters)
	require.Equal(t, counters{"a": 1}, got)

	got["a"] = 100 // must not leak into the store
	v, err = c.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, counters{"a": 1}, v.(counters))
}

func TestClient_CASOutcomes(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	tests := map[string]struct {
		f       func(calls *int) func(any) (any, bool, error)
		wantErr error
		want    any
		calls   int
	}{
		"nil out writes nothing": {
			f: func(calls *int) func(any) (any, bool, error) {
				return func(any) (any, bool, error) { *calls++; return nil, false, nil }
			},
			want: nil, calls: 1,
		},
		"error without retry stops": {
			f: func(calls *int) func(any) (any, bool, error) {
				return func(any) (any, bool, error) { *calls++; return nil, false, boom }
			},
			wantErr: boom, calls: 1,
		},
		"retry then success": {
			f: func(calls *int) func(any) (any, bool, error) {
				return func(any) (any, bool, error) {
					*calls++
					if *calls < 3 {
						return nil, true, boom
					}
					return counters{"x": 1}, false, nil
				}
			},
			want: counters{"x": 1}, calls: 3,
		},
		"retry forever gives up": {
			f: func(calls *int) func(any) (any, bool, error) {
				return func(any) (any, bool, error) { *calls++; return nil, true, boom }
			},
			wantErr: kv.ErrTooManyCASRetries, calls: maxCASRetries,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := New(countersCodec{})
			calls := 0
			err := c.CAS(ctx, "k", tc.f(&calls))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.calls, calls)
			v, err := c.Get(ctx, "k")
			require.NoError(t, err)
			if tc.want == nil {
				require.Nil(t, v)
			} else {
				require.Equal(t, tc.want, v)
			}
		})
	}
}

func TestClient_ConcurrentCASLosesNoUpdate(t *testing.T) {
	ctx := context.Background()
	c := New(countersCodec{})
	const writers, perWriter = 8, 50
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range perWriter {
				require.NoError(t, c.CAS(ctx, "k", increment("n")))
			}
		})
	}
	wg.Wait()
	v, err := c.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, writers*perWriter, v.(counters)["n"])
}

func TestClient_WatchKeySeesCurrentAndLatestValues(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := New(countersCodec{})
	require.NoError(t, c.CAS(ctx, "k", increment("n")))

	seen := make(chan int, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.WatchKey(ctx, "k", func(v any) bool {
			n := v.(counters)["n"]
			seen <- n
			return n < 5
		})
	}()
	require.Equal(t, 1, <-seen, "the current value comes first")
	for range 4 {
		require.NoError(t, c.CAS(ctx, "k", increment("n")))
	}
	// Changes may be coalesced, but the watcher must reach the latest value and then stop.
	deadline := time.After(5 * time.Second)
	for last := 1; last < 5; {
		select {
		case last = <-seen:
		case <-deadline:
			t.Fatal("watcher never saw the latest value")
		}
	}
	select {
	case <-done:
	case <-deadline:
		t.Fatal("watcher did not stop when f returned false")
	}
}

func TestClient_WatchKeyStopsOnContextAndWaitsForMissingKey(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := New(countersCodec{})
	calls := make(chan any, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.WatchKey(ctx, "later", func(v any) bool { calls <- v; return true })
	}()
	require.NoError(t, c.CAS(ctx, "later", increment("n")))
	select {
	case v := <-calls:
		require.Equal(t, counters{"n": 1}, v)
	case <-time.After(5 * time.Second):
		t.Fatal("watcher of a missing key was not told when it appeared")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("watcher did not stop on context cancellation")
	}
}
