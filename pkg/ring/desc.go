package ring

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// InstanceState is where an instance is in its life in the ring.
type InstanceState int

// Instance states, in the order an instance goes through them. The numeric order matters: when two
// versions of an entry have the same timestamp, the later state wins the merge.
const (
	// PENDING instances are registered but own no tokens yet.
	PENDING InstanceState = iota
	// JOINING instances own tokens but do not take writes yet (e.g. replaying a WAL).
	JOINING
	// ACTIVE instances take writes and reads.
	ACTIVE
	// LEAVING instances are shutting down: they still answer reads but take no new writes.
	LEAVING
	// LEFT marks a removed instance: a tombstone that lets removals win merges in gossip-based stores.
	LEFT
)

var stateNames = [...]string{"PENDING", "JOINING", "ACTIVE", "LEAVING", "LEFT"}

// String returns the state's upper-case name.
func (s InstanceState) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("InstanceState(%d)", int(s))
	}
	return stateNames[s]
}

// MarshalText encodes the state by name, so stored descriptors and the HTTP page stay readable.
func (s InstanceState) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("unknown instance state %d", int(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes a state name written by MarshalText.
func (s *InstanceState) UnmarshalText(b []byte) error {
	i := slices.Index(stateNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("unknown instance state %q", b)
	}
	*s = InstanceState(i)
	return nil
}

// InstanceDesc is one instance's entry in the ring. Values returned by a Ring share their Tokens slice with
// the Ring's own copy: callers must not modify it.
type InstanceDesc struct {
	ID    string        `json:"id"`
	Addr  string        `json:"addr"`
	Zone  string        `json:"zone,omitempty"`
	State InstanceState `json:"state"`
	// Tokens are sorted ascending.
	Tokens []uint32 `json:"tokens,omitempty"`
	// Timestamp is the last heartbeat (or state change), in unix milliseconds. Milliseconds rather than
	// seconds so that a heartbeat and a state change in the same second still order correctly in merges.
	Timestamp int64 `json:"timestamp"`
	// RegisteredTimestamp is when the instance first joined the ring, in unix milliseconds.
	RegisteredTimestamp int64 `json:"registered_timestamp,omitempty"`
}

// HeartbeatTime returns Timestamp as a time.
func (i *InstanceDesc) HeartbeatTime() time.Time { return time.UnixMilli(i.Timestamp) }

// clone copies the instance, including its tokens.
func (i InstanceDesc) clone() InstanceDesc {
	i.Tokens = slices.Clone(i.Tokens)
	return i
}

// compareVersions orders two versions of the same instance's entry; the greater one wins a merge. Newer
// timestamps win; ties are broken on every other field so the order is total, which is what makes Merge
// commutative and associative even when replicas wrote different entries in the same millisecond.
func compareVersions(a, b *InstanceDesc) int {
	return cmp.Or(
		cmp.Compare(a.Timestamp, b.Timestamp),
		cmp.Compare(a.State, b.State),
		cmp.Compare(a.RegisteredTimestamp, b.RegisteredTimestamp),
		cmp.Compare(a.Addr, b.Addr),
		cmp.Compare(a.Zone, b.Zone),
		cmp.Compare(a.ID, b.ID),
		slices.Compare(a.Tokens, b.Tokens),
	)
}

// Desc is the ring descriptor stored in the KV store: every instance by ID, tombstones (LEFT) included.
type Desc struct {
	Instances map[string]InstanceDesc `json:"instances"`
}

var _ kv.Mergeable = (*Desc)(nil)

// NewDesc returns an empty descriptor.
func NewDesc() *Desc {
	return &Desc{Instances: map[string]InstanceDesc{}}
}

// descFrom converts a value read from the KV store; nil (a missing key) becomes an empty descriptor.
func descFrom(v any) (*Desc, error) {
	switch d := v.(type) {
	case nil:
		return NewDesc(), nil
	case *Desc:
		if d == nil {
			return NewDesc(), nil
		}
		if d.Instances == nil {
			d.Instances = map[string]InstanceDesc{}
		}
		return d, nil
	default:
		return nil, fmt.Errorf("ring: KV value is %T, want *ring.Desc", v)
	}
}

// Clone implements kv.Mergeable.
func (d *Desc) Clone() kv.Mergeable {
	out := &Desc{Instances: make(map[string]InstanceDesc, len(d.Instances))}
	for id, inst := range d.Instances {
		out.Instances[id] = inst.clone()
	}
	return out
}

// Merge implements kv.Mergeable: per instance, the version that compareVersions orders last wins. With
// localCAS, instances the CAS deleted become LEFT tombstones so the removal propagates through gossip.
func (d *Desc) Merge(other kv.Mergeable, localCAS bool) (kv.Mergeable, error) {
	o, ok := other.(*Desc)
	if !ok {
		return nil, fmt.Errorf("ring: cannot merge %T into *ring.Desc", other)
	}
	if d.Instances == nil {
		d.Instances = map[string]InstanceDesc{}
	}
	change := NewDesc()
	if o != nil {
		for id, theirs := range o.Instances {
			ours, exists := d.Instances[id]
			if exists && compareVersions(&theirs, &ours) <= 0 {
				continue
			}
			d.Instances[id] = theirs.clone()
			change.Instances[id] = theirs.clone()
		}
	}
	if localCAS {
		now := time.Now().UnixMilli()
		for id, ours := range d.Instances {
			if ours.State == LEFT {
				continue
			}
			if o != nil {
				if _, kept := o.Instances[id]; kept {
					continue
				}
			}
			tomb := InstanceDesc{ID: id, Addr: ours.Addr, Zone: ours.Zone, State: LEFT,
				Timestamp: max(now, ours.Timestamp+1), RegisteredTimestamp: ours.RegisteredTimestamp}
			d.Instances[id] = tomb
			change.Instances[id] = tomb
		}
	}
	if len(change.Instances) == 0 {
		return nil, nil
	}
	return change, nil
}

// MergeContent implements kv.Mergeable.
func (d *Desc) MergeContent() []string {
	return slices.Sorted(maps.Keys(d.Instances))
}

// RemoveTombstones implements kv.Mergeable.
func (d *Desc) RemoveTombstones(limit time.Time) (total, removed int) {
	for id, inst := range d.Instances {
		if inst.State != LEFT {
			continue
		}
		total++
		if limit.IsZero() || inst.Timestamp < limit.UnixMilli() {
			delete(d.Instances, id)
			removed++
		}
	}
	return total, removed
}

// DescCodec encodes a *Desc as JSON. JSON keeps stored descriptors readable (etcdctl get, curl); the
// descriptor is small and changes only on heartbeats, so its size does not matter.
type DescCodec struct{}

var _ kv.Codec = DescCodec{}

// Name implements kv.Codec.
func (DescCodec) Name() string { return "ring.Desc/json" }

// Encode implements kv.Codec.
func (c DescCodec) Encode(v any) ([]byte, error) { return kv.EncodeJSON[*Desc](c.Name(), v) }

// Decode implements kv.Codec.
func (c DescCodec) Decode(b []byte) (any, error) {
	d, err := kv.DecodeJSON(c.Name(), "descriptor", b, NewDesc())
	if err != nil {
		return nil, err
	}
	return descFrom(d)
}
