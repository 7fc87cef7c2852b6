package memberlist

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// maxCASRetries bounds how often CAS re-runs f, whether f asked for it or gossip changed the value under it.
const maxCASRetries = 10

// client is the kv.Client view of a KV for one codec.
type client struct {
	kv    *KV
	codec kv.Codec
}

var _ kv.Client = (*client)(nil)

// Get implements kv.Client: it returns a copy of the local value, which reflects every change gossip has
// brought so far.
func (c *client) Get(ctx context.Context, key string) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, _, _, err := c.kv.snapshot(key, c.codec)
	if err != nil || v == nil {
		return nil, err
	}
	return v, nil
}

// CAS implements kv.Client. f runs on a copy of the local value; its result is merged into the local value
// as a local CAS (entries f removed become tombstones) and only the change is gossiped. Local CAS calls are
// serialised; if gossip changes the value while f runs, f runs again on the new value, as it could
// otherwise delete entries it never saw.
func (c *client) CAS(ctx context.Context, key string, f func(in any) (out any, retry bool, err error)) error {
	err := c.cas(ctx, key, f)
	if err != nil {
		c.kv.metrics.casFailures.Inc()
	}
	return err
}

func (c *client) cas(ctx context.Context, key string, f func(in any) (out any, retry bool, err error)) error {
	c.kv.casMu.Lock()
	defer c.kv.casMu.Unlock()
	for range maxCASRetries {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.kv.metrics.casAttempts.Inc()
		cur, version, _, err := c.kv.snapshot(key, c.codec)
		if err != nil {
			return err
		}
		var in any
		if cur != nil {
			in = cur
		}
		out, retry, err := f(in)
		if err != nil {
			if retry {
				continue
			}
			return err
		}
		if out == nil {
			return nil
		}
		m, ok := out.(kv.Mergeable)
		if !ok {
			return fmt.Errorf("memberlist: key %q: CAS produced %T, which is not kv.Mergeable", key, out)
		}
		err = c.kv.mergeCAS(key, c.codec, m, version)
		if errors.Is(err, errConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("memberlist: key %q: %w", key, kv.ErrTooManyCASRetries)
}

// WatchKey implements kv.Client. It is woken by every change of the local value, whether from a local CAS
// or from gossip, and always reads the value afresh, so it never reports a stale one.
func (c *client) WatchKey(ctx context.Context, key string, f func(any) bool) {
	for {
		v, _, changed, err := c.kv.snapshot(key, c.codec)
		if err != nil {
			c.kv.logger.Error("cannot watch key", "key", key, "err", err)
			return
		}
		if v != nil && !f(v) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
