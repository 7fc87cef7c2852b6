package distributor

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/strata-metrics/strata/pkg/ring/kv"
)

// ReplicaDesc is the elected replica of one HA cluster, as the distributors agree on it in the KV store.
type ReplicaDesc struct {
	Replica string `json:"replica"`
	// ReceivedAt is when a distributor last recorded samples from Replica, in unix milliseconds. It is
	// written at most every -distributor.ha-tracker.update-timeout, so it lags the replica's last push by
	// up to that much.
	ReceivedAt int64 `json:"received_at"`
	// ElectedAt is when Replica was elected, in unix milliseconds.
	ElectedAt int64 `json:"elected_at"`
	// ElectedChanges counts the elections of the cluster, the first included.
	ElectedChanges int64 `json:"elected_changes"`
	// DeletedAt, when not zero, makes the entry a tombstone: the cluster was removed at that time, in unix
	// milliseconds. Tombstones let a removal win memberlist merges; the tracker treats them as absent.
	DeletedAt int64 `json:"deleted_at,omitempty"`
}

// version is the entry's time of last change, which orders versions of it in merges.
func (r *ReplicaDesc) version() int64 { return max(r.ReceivedAt, r.DeletedAt) }

func (r *ReplicaDesc) deleted() bool { return r.DeletedAt != 0 }

// compareReplicaVersions orders two versions of a cluster's entry; the greater one wins a merge. The later
// change wins, a removal wins a tie, and the remaining fields break ties so that the order is total, which
// is what makes Merge commutative and associative when two distributors elect different replicas in the
// same millisecond.
func compareReplicaVersions(a, b *ReplicaDesc) int {
	return cmp.Or(
		cmp.Compare(a.version(), b.version()),
		cmp.Compare(a.DeletedAt, b.DeletedAt),
		cmp.Compare(a.ReceivedAt, b.ReceivedAt),
		cmp.Compare(a.ElectedAt, b.ElectedAt),
		cmp.Compare(a.ElectedChanges, b.ElectedChanges),
		cmp.Compare(a.Replica, b.Replica),
	)
}

// HAClusters is the value the HA tracker stores per tenant: the elected replica of each of its clusters,
// tombstones included. One key per tenant keeps a CAS small and lets ha_max_clusters be counted from
// what every distributor writes.
type HAClusters struct {
	Clusters map[string]ReplicaDesc `json:"clusters"`
}

var _ kv.Mergeable = (*HAClusters)(nil)

// haClustersFrom converts a value read from the KV store; nil (a missing key) becomes an empty value.
func haClustersFrom(v any) (*HAClusters, error) {
	switch c := v.(type) {
	case nil:
		return &HAClusters{Clusters: map[string]ReplicaDesc{}}, nil
	case *HAClusters:
		if c == nil {
			return &HAClusters{Clusters: map[string]ReplicaDesc{}}, nil
		}
		if c.Clusters == nil {
			c.Clusters = map[string]ReplicaDesc{}
		}
		return c, nil
	default:
		return nil, fmt.Errorf("ha tracker: KV value is %T, want *distributor.HAClusters", v)
	}
}

// live returns the clusters that are not tombstones.
func (h *HAClusters) live() int {
	n := 0
	for _, r := range h.Clusters {
		if !r.deleted() {
			n++
		}
	}
	return n
}

// Clone implements kv.Mergeable.
func (h *HAClusters) Clone() kv.Mergeable {
	return &HAClusters{Clusters: maps.Clone(h.Clusters)}
}

// Merge implements kv.Mergeable: per cluster, the version compareReplicaVersions orders last wins. With
// localCAS, clusters the CAS removed become tombstones so that the removal spreads through gossip.
func (h *HAClusters) Merge(other kv.Mergeable, localCAS bool) (kv.Mergeable, error) {
	o, ok := other.(*HAClusters)
	if !ok {
		return nil, fmt.Errorf("ha tracker: cannot merge %T into *distributor.HAClusters", other)
	}
	if h.Clusters == nil {
		h.Clusters = map[string]ReplicaDesc{}
	}
	change := &HAClusters{Clusters: map[string]ReplicaDesc{}}
	if o != nil {
		for cluster, theirs := range o.Clusters {
			ours, exists := h.Clusters[cluster]
			if exists && compareReplicaVersions(&theirs, &ours) <= 0 {
				continue
			}
			h.Clusters[cluster] = theirs
			change.Clusters[cluster] = theirs
		}
	}
	if localCAS {
		now := time.Now().UnixMilli()
		for cluster, ours := range h.Clusters {
			if ours.deleted() {
				continue
			}
			if o != nil {
				if _, kept := o.Clusters[cluster]; kept {
					continue
				}
			}
			ours.DeletedAt = max(now, ours.version()+1)
			h.Clusters[cluster] = ours
			change.Clusters[cluster] = ours
		}
	}
	if len(change.Clusters) == 0 {
		return nil, nil
	}
	return change, nil
}

// MergeContent implements kv.Mergeable.
func (h *HAClusters) MergeContent() []string {
	return slices.Sorted(maps.Keys(h.Clusters))
}

// RemoveTombstones implements kv.Mergeable.
func (h *HAClusters) RemoveTombstones(limit time.Time) (total, removed int) {
	for cluster, r := range h.Clusters {
		if !r.deleted() {
			continue
		}
		total++
		if limit.IsZero() || r.DeletedAt < limit.UnixMilli() {
			delete(h.Clusters, cluster)
			removed++
		}
	}
	return total, removed
}

// HAClustersCodec encodes *HAClusters as JSON, readable with etcdctl and on the memberlist page.
type HAClustersCodec struct{}

var _ kv.Codec = HAClustersCodec{}

// Name implements kv.Codec.
func (HAClustersCodec) Name() string { return "distributor.HAClusters/json" }

// Encode implements kv.Codec.
func (c HAClustersCodec) Encode(v any) ([]byte, error) {
	return kv.EncodeJSON[*HAClusters](c.Name(), v)
}

// Decode implements kv.Codec.
func (c HAClustersCodec) Decode(b []byte) (any, error) {
	h, err := kv.DecodeJSON(c.Name(), "clusters", b, &HAClusters{})
	if err != nil {
		return nil, err
	}
	return haClustersFrom(h)
}
