package ring

// Operation says what a replication set is for; it decides which instance states are healthy.
type Operation int

const (
	// Write sends new samples: only ACTIVE instances take them, and the set extends past JOINING, PENDING
	// and LEAVING instances so that each series still gets ReplicationFactor ACTIVE candidates.
	Write Operation = iota
	// Read queries recent data: ACTIVE and LEAVING instances hold it. The set extends past JOINING and
	// PENDING instances, which writes skipped too, so they hold no replicas.
	Read
	// BlocksSync decides which store-gateways hold a block: JOINING instances count, so a store-gateway
	// loads its blocks before it turns ACTIVE and queriers (Read) start asking it.
	BlocksSync
	// Owner picks the one instance that does a key's work (a ruler evaluating a rule group): the set
	// extends past every instance that is not ACTIVE or has missed its heartbeats, so a key moves to the
	// next instance as soon as its owner is found dead, not when it is forgotten.
	Owner
)

// String names the operation for errors and logs.
func (op Operation) String() string {
	switch op {
	case Write:
		return "write"
	case Read:
		return "read"
	case BlocksSync:
		return "blocks-sync"
	case Owner:
		return "owner"
	default:
		return "unknown"
	}
}

// healthyState reports whether an instance in state s can serve op (its heartbeat is checked separately).
func (op Operation) healthyState(s InstanceState) bool {
	switch op {
	case Write:
		return s == ACTIVE
	case Read:
		return s == ACTIVE || s == LEAVING
	case BlocksSync:
		return s == JOINING || s == ACTIVE || s == LEAVING
	case Owner:
		return s == ACTIVE
	default:
		return false
	}
}

// extendsPast reports whether a replication set for op skips an instance in state s and takes one more
// instance in its place, rather than counting it as a failed replica.
func (op Operation) extendsPast(s InstanceState) bool {
	switch op {
	case Write:
		return s != ACTIVE
	case Read:
		return s == JOINING || s == PENDING
	case BlocksSync:
		return s == PENDING
	case Owner:
		return s != ACTIVE
	default:
		return false
	}
}
