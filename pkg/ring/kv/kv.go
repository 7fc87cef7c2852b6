package kv

import (
	"context"
	"errors"
	"time"
)

// Client reads, updates and watches values stored under string keys. Implementations are safe for
// concurrent use and return freshly decoded values, so callers may modify what they get.
type Client interface {
	// Get returns the current value of key, or nil if the key does not exist.
	Get(ctx context.Context, key string) (any, error)

	// CAS atomically replaces the value of key with the one f derives from the current value (nil when the
	// key does not exist). If f returns a nil out, nothing is written. If f returns an error, CAS stops and
	// returns it, unless retry is true, in which case f is called again on a fresh value. When another
	// writer changes the key between the read and the write, f is called again on the newer value.
	CAS(ctx context.Context, key string, f func(in any) (out any, retry bool, err error)) error

	// WatchKey calls f with the current value of key (if it exists) and then with the new value after every
	// change, until f returns false or ctx is done. Rapid successive changes may be coalesced: f always sees
	// the latest value, never a stale one, but not necessarily every intermediate one.
	WatchKey(ctx context.Context, key string, f func(any) bool)
}

// Codec turns values into bytes and back, so backends that ship bytes (etcd, memberlist) can store them.
type Codec interface {
	// Name identifies the codec; memberlist uses it to route received bytes to the right decoder.
	Name() string
	Encode(v any) ([]byte, error)
	Decode(b []byte) (any, error)
}

// Mergeable is a value that gossip-based backends (memberlist) can combine without coordination: it is a
// state-based CRDT. Merge must be commutative, associative and idempotent, so that replicas exchanging
// values in any order and any number of times converge. Deletions are represented by tombstones (entries
// marked deleted, with a timestamp) that win over older entries and are dropped after a grace period.
type Mergeable interface {
	// Merge folds other into the receiver and returns the part of the receiver that changed (nil when
	// nothing did), so that only changes need to be gossiped further.
	//
	// localCAS is true when other is the result of a local CAS on a copy of the receiver: entries present in
	// the receiver but missing from other were then deleted by the CAS, and become tombstones instead of
	// being kept. Remote merges pass false, as a missing entry there only means the sender does not know it.
	Merge(other Mergeable, localCAS bool) (change Mergeable, err error)

	// MergeContent lists the IDs of the entries in the value (tombstones included).
	MergeContent() []string

	// RemoveTombstones drops tombstones last updated before limit and reports how many tombstones there
	// were and how many were removed. A zero limit removes all of them.
	RemoveTombstones(limit time.Time) (total, removed int)

	// Clone returns a deep copy, so a backend can merge into its copy without racing readers.
	Clone() Mergeable
}

// ErrTooManyCASRetries is returned by CAS when concurrent writers kept changing the key under it.
var ErrTooManyCASRetries = errors.New("kv: too many compare-and-swap retries")
