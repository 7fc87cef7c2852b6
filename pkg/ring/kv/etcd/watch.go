package etcd

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Backoff between attempts to re-establish a failed watch: quick enough to recover from a leader
// election without a visible gap, slow enough not to hammer a cluster that is down.
const (
	watchBackoffMin = 100 * time.Millisecond
	watchBackoffMax = 10 * time.Second
)

// WatchKey implements kv.Client. It reads the current value, delivers it, and watches for changes from
// the revision of that read on, so no change in between is missed. When the watch fails (connection lost,
// leader lost, the revision compacted away) it starts over with a fresh read after a backoff, until ctx is
// done or the client is closed. Values are delivered in revision order only: after a restart, a value
// older than or equal to one already delivered is skipped. A deleted key delivers nothing until it is
// written again, as f takes values, not absences.
func (c *Client) WatchKey(ctx context.Context, key string, f func(any) bool) {
	ctx, cancel := c.withClientContext(ctx)
	defer cancel()
	w := &keyWatch{c: c, key: key, f: f}
	b := backoff{min: watchBackoffMin, max: watchBackoffMax}
	for {
		err := w.run(ctx, &b)
		if w.stopped || ctx.Err() != nil {
			return
		}
		c.metrics.watchRestarts.Inc()
		delay := b.next()
		c.logger.Warn("etcd watch failed, starting it again", "key", key, "err", err, "backoff", delay)
		if !sleep(ctx, delay) {
			return
		}
	}
}

// keyWatch is the state of one WatchKey call that survives the watch's restarts.
type keyWatch struct {
	c         *Client
	key       string
	f         func(any) bool
	delivered int64 // ModRevision of the last value given to f
	stopped   bool  // f returned false
}

// run reads the key, delivers its value and watches it until the watch fails, f returns false or ctx is
// done. It returns why the watch failed.
func (w *keyWatch) run(ctx context.Context, b *backoff) error {
	resp, err := w.c.get(ctx, w.key)
	if err != nil {
		return err
	}
	if len(resp.Kvs) > 0 && !w.deliver(resp.Kvs[0]) {
		return nil
	}
	if w.c.beforeWatch != nil {
		w.c.beforeWatch()
	}
	// Watching from just after the read's revision misses nothing: the read reflects every earlier one.
	// WithRequireLeader ends the watch when its member loses the leader, whose view may be stale, so the
	// restart can reach a member that still has one.
	watchCtx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wresp := range w.c.cli.Watch(watchCtx, w.key, clientv3.WithRev(resp.Header.Revision+1)) {
		if err := wresp.Err(); err != nil {
			return err
		}
		b.reset()
		// Only the last event matters: f wants the latest value, and if the key was deleted last, an
		// earlier value in the batch is no longer current.
		if n := len(wresp.Events); n > 0 {
			if ev := wresp.Events[n-1]; ev.Type == mvccpb.PUT && !w.deliver(ev.Kv) {
				return nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch channel closed")
}

// deliver hands kv's value to f unless it is not newer than what f already saw, and reports whether to
// keep watching.
func (w *keyWatch) deliver(kv *mvccpb.KeyValue) bool {
	if kv.ModRevision <= w.delivered {
		return true
	}
	w.delivered = kv.ModRevision
	v, err := w.c.decode(kv.Value)
	if err != nil {
		// A value that does not decode was written by a broken or newer writer; wait for the next one.
		w.c.logger.Warn("skipping etcd value that does not decode", "key", w.key, "err", err)
		return true
	}
	if !w.f(v) {
		w.stopped = true
		return false
	}
	return true
}

// backoff yields exponentially growing, jittered delays.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

// next returns the delay before the next attempt: a random duration in [cur/2, cur], cur doubling from
// min up to max. The jitter keeps many watchers from reconnecting in lockstep after an etcd restart.
func (b *backoff) next() time.Duration {
	b.cur = min(max(2*b.cur, b.min), b.max)
	return b.cur/2 + rand.N(b.cur/2+1)
}

// reset starts the delays from min again, once an attempt worked.
func (b *backoff) reset() { b.cur = 0 }

// sleep waits for d and reports whether it did, false when ctx was done first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
