package memberlist

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// entry is one key of the local store. changed is closed and replaced on every change, which wakes all
// watchers at once without a goroutine per watcher.
type entry struct {
	codec   kv.Codec     // nil until the key has a value
	value   kv.Mergeable // nil until the key has a value; owned by the store, never handed out
	version uint64       // bumped on every change, so CAS notices changes made while f ran
	changed chan struct{}
}

// errConflict tells CAS that the value changed between its read and its merge.
var errConflict = errors.New("value changed concurrently")

// entryLocked returns the entry of key, creating an empty one so watchers can wait on keys not yet written.
func (k *KV) entryLocked(key string) *entry {
	e, ok := k.values[key]
	if !ok {
		e = &entry{changed: make(chan struct{})}
		k.values[key] = e
	}
	return e
}

func checkCodec(key string, e *entry, codec string) error {
	if e.codec != nil && e.codec.Name() != codec {
		return fmt.Errorf("memberlist: key %q holds %s values, not %s", key, e.codec.Name(), codec)
	}
	return nil
}

// snapshot returns a copy of the value of key (nil if none), its version, and the channel closed on the
// next change.
func (k *KV) snapshot(key string, codec kv.Codec) (kv.Mergeable, uint64, <-chan struct{}, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.entryLocked(key)
	if err := checkCodec(key, e, codec.Name()); err != nil {
		return nil, 0, nil, err
	}
	if e.value == nil {
		return nil, e.version, e.changed, nil
	}
	return e.value.Clone(), e.version, e.changed, nil
}

// mergeLocked merges in into the entry of key and returns the encoded change to broadcast (nil when nothing
// changed) with the entries it carries. The store takes ownership of in.
func (k *KV) mergeLocked(key string, e *entry, codec kv.Codec, in kv.Mergeable, localCAS bool) ([]byte, []string, error) {
	var change kv.Mergeable
	if e.value == nil {
		e.value, e.codec = in, codec
		change = in
	} else {
		var err error
		if change, err = e.value.Merge(in, localCAS); err != nil {
			return nil, nil, fmt.Errorf("memberlist: merge key %q: %w", key, err)
		}
		if change == nil {
			return nil, nil, nil
		}
	}
	e.version++
	close(e.changed)
	e.changed = make(chan struct{})

	// Encode under the lock: the change may share memory with the stored value.
	data, err := codec.Encode(change)
	if err != nil {
		return nil, nil, fmt.Errorf("memberlist: encode change of key %q with %s: %w", key, codec.Name(), err)
	}
	return encodeMessage(key, codec.Name(), data), change.MergeContent(), nil
}

// mergeCAS merges the result of a local CAS, unless the value changed since the CAS read it at version:
// the CAS would then turn entries it never saw into tombstones.
func (k *KV) mergeCAS(key string, codec kv.Codec, out kv.Mergeable, version uint64) error {
	k.mu.Lock()
	e := k.entryLocked(key)
	if e.version != version {
		k.mu.Unlock()
		return errConflict
	}
	if err := checkCodec(key, e, codec.Name()); err != nil {
		k.mu.Unlock()
		return err
	}
	msg, content, err := k.mergeLocked(key, e, codec, out.Clone(), true)
	k.mu.Unlock()
	if err != nil || msg == nil {
		return err
	}
	k.broadcast(key, content, msg)
	return nil
}

// mergeReceived merges a message from another member and passes on what was new to us, so the change keeps
// spreading from every member it reaches until everyone has it.
func (k *KV) mergeReceived(msg []byte) error {
	key, codecName, data, err := decodeMessage(msg)
	if err != nil {
		return err
	}
	codec := k.codec(codecName)
	if codec == nil {
		return fmt.Errorf("key %q: unknown codec %q", key, codecName)
	}
	v, err := codec.Decode(data)
	if err != nil {
		return fmt.Errorf("key %q: decode with %s: %w", key, codecName, err)
	}
	in, ok := v.(kv.Mergeable)
	if !ok {
		return fmt.Errorf("key %q: codec %s decoded %T, which is not kv.Mergeable", key, codecName, v)
	}

	k.mu.Lock()
	e := k.entryLocked(key)
	if err := checkCodec(key, e, codecName); err != nil {
		k.mu.Unlock()
		return err
	}
	change, content, err := k.mergeLocked(key, e, codec, in, false)
	k.mu.Unlock()
	if err != nil || change == nil {
		return err
	}
	k.broadcast(key, content, change)
	return nil
}

// removeOldTombstones drops tombstones older than -memberlist.left-ingesters-timeout from every value.
// Every member does the same with the same limit, so a removed tombstone is not brought back by push-pull.
func (k *KV) removeOldTombstones() {
	limit := k.now().Add(-k.cfg.LeftIngestersTimeout)
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, e := range k.values {
		if e.value == nil {
			continue
		}
		if _, removed := e.value.RemoveTombstones(limit); removed > 0 {
			e.version++
			close(e.changed)
			e.changed = make(chan struct{})
			k.metrics.tombstonesRemoved.Add(float64(removed))
			k.logger.Debug("removed old tombstones", "key", key, "removed", removed)
		}
	}
}

// runTombstoneRemoval removes old tombstones periodically; checking ten times per timeout keeps
// tombstones at most 10% past their timeout.
func (k *KV) runTombstoneRemoval(stop <-chan struct{}) {
	t := time.NewTicker(max(k.cfg.LeftIngestersTimeout/10, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			k.removeOldTombstones()
		}
	}
}

// encodedValue is a key's full value as sent in push-pull and shown on the status page.
type encodedValue struct {
	key     string
	codec   string
	version uint64
	data    []byte
}

// encodeAll encodes every value, sorted by key for a stable page.
func (k *KV) encodeAll() []encodedValue {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]encodedValue, 0, len(k.values))
	for key, e := range k.values {
		if e.value == nil {
			continue
		}
		data, err := e.codec.Encode(e.value)
		if err != nil {
			k.logger.Error("encode value", "key", key, "codec", e.codec.Name(), "err", err)
			continue
		}
		out = append(out, encodedValue{key: key, codec: e.codec.Name(), version: e.version, data: data})
	}
	slices.SortFunc(out, func(a, b encodedValue) int { return strings.Compare(a.key, b.key) })
	return out
}

func (k *KV) numValues() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, e := range k.values {
		if e.value != nil {
			n++
		}
	}
	return n
}
