package kvtest

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// Counters is the value the conformance suite stores: named counts. It is a map, so a backend that hands
// two callers the same decoded value is caught, and it is a kv.Mergeable, so gossip backends (memberlist)
// can store it too. As a CRDT it is grow-only: a merge keeps the higher count of each name, so a CAS that
// lowers a count or drops a name is undone by the merge on those backends.
type Counters map[string]int

var _ kv.Mergeable = Counters(nil)

// Merge implements kv.Mergeable: each name takes the higher of the two counts. Counts only grow, so
// localCAS changes nothing: a name missing from other was not deleted, merely not incremented.
func (c Counters) Merge(other kv.Mergeable, _ bool) (kv.Mergeable, error) {
	o, ok := other.(Counters)
	if !ok {
		return nil, fmt.Errorf("kvtest: cannot merge %T into Counters", other)
	}
	change := Counters{}
	for name, n := range o {
		if cur, ok := c[name]; !ok || n > cur {
			c[name] = n
			change[name] = n
		}
	}
	if len(change) == 0 {
		return nil, nil // a nil Counters would be a non-nil kv.Mergeable
	}
	return change, nil
}

// MergeContent implements kv.Mergeable: the names, sorted.
func (c Counters) MergeContent() []string { return slices.Sorted(maps.Keys(c)) }

// RemoveTombstones implements kv.Mergeable. Counters has no tombstones, as it never deletes.
func (c Counters) RemoveTombstones(time.Time) (total, removed int) { return 0, 0 }

// Clone implements kv.Mergeable.
func (c Counters) Clone() kv.Mergeable { return maps.Clone(c) }

// CountersCodec is the kv.Codec of Counters. It writes JSON, so a stored value can be read with the
// backend's own tools (etcdctl, the memberlist status page).
type CountersCodec struct{}

// Name implements kv.Codec.
func (CountersCodec) Name() string { return "counters.json" }

// Encode implements kv.Codec. Only Counters can be encoded, so a test writing the wrong type fails loudly.
func (c CountersCodec) Encode(v any) ([]byte, error) { return kv.EncodeJSON[Counters](c.Name(), v) }

// Decode implements kv.Codec.
func (c CountersCodec) Decode(b []byte) (any, error) {
	counters, err := kv.DecodeJSON(c.Name(), "counters", b, &Counters{})
	if err != nil {
		return nil, err
	}
	return *counters, nil
}

// Increment returns a CAS function that adds one to the count called name, creating the value when the
// key has none.
func Increment(name string) func(in any) (out any, retry bool, err error) {
	return func(in any) (any, bool, error) {
		c, ok := in.(Counters)
		if in != nil && !ok {
			return nil, false, fmt.Errorf("kvtest: key holds %T, want Counters", in)
		}
		if c == nil {
			c = Counters{}
		}
		c[name]++
		return c, false, nil
	}
}
