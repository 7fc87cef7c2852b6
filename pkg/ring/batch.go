package ring

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// QuorumError is returned by DoBatch when some keys were not acknowledged by a quorum of their replicas.
// It is a failure a retry can fix (HTTP 5xx); Err is the instance error that broke the first quorum.
type QuorumError struct {
	// FailedKeys counts the keys known to have missed quorum when DoBatch returned (at least one: DoBatch
	// returns at the first).
	FailedKeys int
	TotalKeys  int
	Err        error
}

// Error implements error.
func (e *QuorumError) Error() string {
	return fmt.Sprintf("ring: quorum not reached for %d of %d keys: %v", e.FailedKeys, e.TotalKeys, e.Err)
}

// Unwrap returns the instance error that broke the quorum.
func (e *QuorumError) Unwrap() error { return e.Err }

// keyTracker counts one key's acknowledgements against its quorum.
type keyTracker struct {
	needed    int32 // successes to reach quorum
	tolerated int32 // failures allowed
	succeeded atomic.Int32
	failed    atomic.Int32
}

// instanceBatch is the work for one instance: the key indexes passed to the callback, and a private copy
// used for bookkeeping so a callback that modifies its slice cannot corrupt the counts.
type instanceBatch struct {
	inst    InstanceDesc
	indexes []int
	tracked []int
}

// batchState is shared by DoBatch's callbacks.
type batchState struct {
	trackers  []keyTracker
	pending   atomic.Int32 // keys neither at quorum nor failed
	done      chan struct{}
	closeOnce sync.Once

	mu          sync.Mutex
	clientErr   error // first client error
	quorumErr   error // instance error that made the first key fail
	failedKeys  int
	quorumBroke bool
}

func (s *batchState) finish() { s.closeOnce.Do(func() { close(s.done) }) }

// record applies one instance's outcome to the keys it was sent. A key decides once: when its successes
// reach quorum or its failures exceed the tolerated number, whichever comes first.
func (s *batchState) record(indexes []int, err error, isClientError func(error) bool) {
	success := err == nil || isClientError(err)
	if err != nil && success {
		s.mu.Lock()
		if s.clientErr == nil {
			s.clientErr = err
		}
		s.mu.Unlock()
	}
	for _, i := range indexes {
		t := &s.trackers[i]
		if success {
			if t.succeeded.Add(1) == t.needed && s.pending.Add(-1) == 0 {
				s.finish()
			}
			continue
		}
		if t.failed.Add(1) == t.tolerated+1 {
			s.mu.Lock()
			s.failedKeys++
			if !s.quorumBroke {
				s.quorumBroke, s.quorumErr = true, err
			}
			s.mu.Unlock()
			// One key without quorum fails the whole request; nothing left to wait for.
			s.finish()
		}
	}
}

// DoBatch sends keys to their replicas with quorum: the distributor's write path. For each key it gets the
// replication set for op, groups key indexes by instance, and calls callback once per instance, in
// parallel, with the indexes (into keys) that instance must receive. Each key succeeds when a quorum of
// its replicas succeeds.
//
// An error for which isClientError is true means the instance got the request and rejected some of it as
// bad input (HTTP 4xx): it counts as a success towards quorum, since retrying would not help, and the first
// one is returned when every key reached quorum. If any key misses its quorum, DoBatch returns a
// *QuorumError. A ring lookup error (too few healthy replicas) is returned as is, before any callback runs.
//
// DoBatch returns as soon as the outcome is decided (every key at quorum, or one key failed, or ctx done),
// so callbacks to slow instances may still be running after it returns. Callbacks must therefore own what
// they read (the caller must not recycle request buffers they use) and should not use a context that ends
// when the caller returns unless cancelling those late writes is intended.
//
// cleanup, when not nil, is called once every callback has returned, which may be after DoBatch itself
// returned, or at once when no callback runs: the moment request buffers the callbacks read can be
// recycled.
func DoBatch(ctx context.Context, op Operation, r ReadRing, keys []uint32, callback func(inst InstanceDesc, indexes []int) error, isClientError func(error) bool, cleanup func()) error {
	if cleanup == nil {
		cleanup = func() {}
	}
	if len(keys) == 0 {
		cleanup()
		return nil
	}
	if isClientError == nil {
		isClientError = func(error) bool { return false }
	}

	s := &batchState{trackers: make([]keyTracker, len(keys)), done: make(chan struct{})}
	batches := map[string]*instanceBatch{}
	// Each instance gets about its share of the keys' replicas; sized for that (and a margin, since
	// tokens are not spread evenly), its list of indexes rarely grows.
	perInstance := len(keys)
	if n := r.InstancesCount(); n > r.ReplicationFactor() {
		perInstance = min(len(keys), len(keys)*r.ReplicationFactor()/n*5/4+16)
	}
	var buf []InstanceDesc
	for i, key := range keys {
		rs, err := r.Get(key, op, buf[:0])
		if err != nil {
			cleanup()
			return err
		}
		buf = rs.Instances
		s.trackers[i].needed = int32(len(rs.Instances) - rs.MaxErrors)
		s.trackers[i].tolerated = int32(rs.MaxErrors)
		for _, inst := range rs.Instances {
			b, ok := batches[inst.ID]
			if !ok {
				b = &instanceBatch{inst: inst, indexes: make([]int, 0, perInstance)}
				batches[inst.ID] = b
			}
			b.indexes = append(b.indexes, i)
		}
	}
	for _, b := range batches {
		b.tracked = slices.Clone(b.indexes)
	}
	s.pending.Store(int32(len(keys)))

	var running sync.WaitGroup
	running.Add(len(batches))
	for _, b := range batches {
		go func() {
			defer running.Done()
			err := callback(b.inst, b.indexes)
			s.record(b.tracked, err, isClientError)
		}()
	}
	go func() {
		running.Wait()
		cleanup()
	}()

	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quorumBroke {
		return &QuorumError{FailedKeys: s.failedKeys, TotalKeys: len(keys), Err: s.quorumErr}
	}
	return s.clientErr
}
