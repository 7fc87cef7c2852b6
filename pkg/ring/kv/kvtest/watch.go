package kvtest

import (
	"context"
	"testing"
	"time"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// waitTimeout bounds how long the helpers wait for a watcher. It is generous because tests share a
// small machine and gossip or etcd round trips can be slow there; a working backend never needs it.
const waitTimeout = 30 * time.Second

// CounterWatch is a WatchKey call running in the background on a key holding Counters, recording the
// count of one name each time f is called.
type CounterWatch struct {
	seen chan int
	done chan struct{}
}

// WatchCounter starts c.WatchKey(ctx, key, …) in the background. Its f records the count called name,
// fails t if that count is not higher than the last one delivered (a stale or repeated value), and returns
// false, ending the watch, once the count reaches stopAt (never when stopAt is 0). When t ends, the watch
// is cancelled and waited for.
func WatchCounter(t *testing.T, ctx context.Context, c kv.Client, key, name string, stopAt int) *CounterWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	w := &CounterWatch{seen: make(chan int, 1000), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := 0
		c.WatchKey(ctx, key, func(v any) bool {
			c, ok := v.(Counters)
			if !ok {
				t.Errorf("watcher of %q got %T, want Counters", key, v)
				return false
			}
			n := c[name]
			if n <= last {
				t.Errorf("watcher of %q got count %d after %d", key, n, last)
			}
			last = n
			w.seen <- n
			return stopAt == 0 || n < stopAt
		})
	}()
	// Stop the watch before t completes: its f reports to t, which must not happen after the test ends.
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(waitTimeout):
			t.Error("watcher did not stop when its context was cancelled")
		}
	})
	return w
}

// Next returns the next count delivered, failing t if none comes within 30s.
func (w *CounterWatch) Next(t *testing.T) int {
	t.Helper()
	select {
	case n := <-w.seen:
		return n
	case <-time.After(waitTimeout):
		t.Fatal("watcher delivered nothing")
		return 0
	}
}

// WaitFor reads delivered counts until want comes, failing t if it does not within 30s. Counts
// in between may be skipped, as WatchKey may coalesce changes.
func (w *CounterWatch) WaitFor(t *testing.T, want int) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case n := <-w.seen:
			if n == want {
				return
			}
		case <-deadline:
			t.Fatalf("watcher never saw count %d", want)
		}
	}
}

// WaitStopped waits for WatchKey to return, failing t (with why, as in "when f returned false") if it
// does not within 30s.
func (w *CounterWatch) WaitStopped(t *testing.T, why string) {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(waitTimeout):
		t.Fatalf("watcher did not stop %s", why)
	}
}
