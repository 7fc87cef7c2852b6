// Package inmemory is a kv.Client that lives in the process: the ring store of a single-process Strata and
// of tests. Values are kept encoded, exactly as a remote store would keep them, so callers never alias each
// other's values.
package inmemory

import (
	"context"
	"fmt"
	"sync"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// maxCASRetries bounds how often CAS re-runs a function that asks to be retried.
const maxCASRetries = 10

// Client is an in-process kv.Client. The zero value is not usable; use New.
type Client struct {
	codec kv.Codec

	casMu   sync.Mutex // serialises CAS calls
	mu      sync.Mutex // guards entries
	entries map[string]*entry
}

// entry is one key. changed is closed and replaced on every write, which wakes all watchers at once.
type entry struct {
	data    []byte // nil when the key does not exist
	changed chan struct{}
}

var _ kv.Client = (*Client)(nil)

// New returns an empty store whose values are encoded with codec.
func New(codec kv.Codec) *Client {
	return &Client{codec: codec, entries: map[string]*entry{}}
}

// entryLocked returns the entry of key, creating an empty one so watchers can wait on keys not yet written.
func (c *Client) entryLocked(key string) *entry {
	e, ok := c.entries[key]
	if !ok {
		e = &entry{changed: make(chan struct{})}
		c.entries[key] = e
	}
	return e
}

// snapshot returns the encoded value of key and the channel closed on its next change.
func (c *Client) snapshot(key string) ([]byte, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entryLocked(key)
	return e.data, e.changed
}

func (c *Client) decode(data []byte) (any, error) {
	if data == nil {
		return nil, nil
	}
	v, err := c.codec.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("inmemory: decode with %s: %w", c.codec.Name(), err)
	}
	return v, nil
}

// Get implements kv.Client.
func (c *Client) Get(ctx context.Context, key string) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, _ := c.snapshot(key)
	return c.decode(data)
}

// CAS implements kv.Client. CAS calls are serialised (an in-process store has no reason to make writers
// race), and f runs without the read lock, so it may call Get but must not call CAS.
func (c *Client) CAS(ctx context.Context, key string, f func(in any) (out any, retry bool, err error)) error {
	c.casMu.Lock()
	defer c.casMu.Unlock()
	for range maxCASRetries {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, _ := c.snapshot(key)
		in, err := c.decode(data)
		if err != nil {
			return err
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
		encoded, err := c.codec.Encode(out)
		if err != nil {
			return fmt.Errorf("inmemory: encode with %s: %w", c.codec.Name(), err)
		}
		c.write(key, encoded)
		return nil
	}
	return fmt.Errorf("inmemory: key %q: %w", key, kv.ErrTooManyCASRetries)
}

func (c *Client) write(key string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entryLocked(key)
	e.data = data
	close(e.changed)
	e.changed = make(chan struct{})
}

// WatchKey implements kv.Client.
func (c *Client) WatchKey(ctx context.Context, key string, f func(any) bool) {
	data, changed := c.snapshot(key)
	for {
		if data != nil {
			v, err := c.decode(data)
			// A value that does not decode was written by a broken writer; skip it and wait for the next.
			if err == nil && !f(v) {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		data, changed = c.snapshot(key)
	}
}
