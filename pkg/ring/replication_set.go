package ring

import (
	"context"
	"fmt"
	"strings"
)

// ReplicationSet is a set of instances to send a request to, with how many of them may fail.
type ReplicationSet struct {
	Instances []InstanceDesc
	// MaxErrors is how many instances may fail with the request still succeeding.
	MaxErrors int
	// MaxUnavailableZones, when positive, lets the request succeed however many instances fail, as long as
	// they are in at most this many zones (zone-aware sets for whole-ring reads).
	MaxUnavailableZones int
	// Excluded names the instances (or zones) left out of the set as unhealthy; they already used part of
	// the error budget, so a failure report names them too.
	Excluded []string
}

// InstanceError is one instance's failure within a ReplicationSet.Do.
type InstanceError struct {
	ID   string
	Addr string
	Err  error
}

// DoError is returned by ReplicationSet.Do when more instances failed than the set tolerates.
type DoError struct {
	Failures  []InstanceError
	Instances int // size of the set
	MaxErrors int
	Excluded  []string // unhealthy instances or zones left out of the set beforehand
}

// Error lists every failed instance with its address and error.
func (e *DoError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d instances failed (at most %d tolerated):", len(e.Failures), e.Instances, e.MaxErrors)
	for i, f := range e.Failures {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s (%s): %v", f.ID, f.Addr, f.Err)
	}
	if len(e.Excluded) > 0 {
		fmt.Fprintf(&b, "; already unhealthy in the ring: %s", strings.Join(e.Excluded, ", "))
	}
	return b.String()
}

// Unwrap exposes the instances' errors to errors.Is and errors.As.
func (e *DoError) Unwrap() []error {
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f.Err
	}
	return errs
}

// Tolerates reports whether a request to the set still succeeds after these failures, for callers that
// learn of failures one by one (a streamed read) rather than through Do.
func (rs ReplicationSet) Tolerates(failures []InstanceError) bool {
	if len(failures) <= rs.MaxErrors || rs.MaxUnavailableZones <= 0 {
		return len(failures) <= rs.MaxErrors
	}
	zoneOf := make(map[string]string, len(rs.Instances))
	for _, inst := range rs.Instances {
		zoneOf[inst.ID] = inst.Zone
	}
	return rs.tolerates(failures, zoneOf)
}

// tolerates reports whether the set still succeeds after these failures.
func (rs *ReplicationSet) tolerates(failures []InstanceError, zoneOf map[string]string) bool {
	if len(failures) <= rs.MaxErrors {
		return true
	}
	if rs.MaxUnavailableZones <= 0 {
		return false
	}
	zones := map[string]struct{}{}
	for _, f := range failures {
		zones[zoneOf[f.ID]] = struct{}{}
	}
	return len(zones) <= rs.MaxUnavailableZones
}

// Do calls f on every instance in parallel and returns the successful results, in instance order, once all
// calls have returned, provided the failures are within the set's budget. As soon as the budget is
// exceeded it cancels the remaining calls' context and returns a *DoError naming the failed instances;
// calls still running then finish in the background.
func (rs ReplicationSet) Do(ctx context.Context, f func(ctx context.Context, inst *InstanceDesc) (any, error)) ([]any, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type result struct {
		index int
		value any
		err   error
	}
	// Buffered so that calls finishing after an early return never block.
	results := make(chan result, len(rs.Instances))
	for i := range rs.Instances {
		go func() {
			v, err := f(ctx, &rs.Instances[i])
			results <- result{i, v, err}
		}()
	}

	var zoneOf map[string]string
	if rs.MaxUnavailableZones > 0 {
		zoneOf = make(map[string]string, len(rs.Instances))
		for _, inst := range rs.Instances {
			zoneOf[inst.ID] = inst.Zone
		}
	}
	values := make([]any, len(rs.Instances))
	ok := make([]bool, len(rs.Instances))
	var failures []InstanceError
	for range rs.Instances {
		res := <-results
		if res.err == nil {
			values[res.index], ok[res.index] = res.value, true
			continue
		}
		inst := &rs.Instances[res.index]
		failures = append(failures, InstanceError{ID: inst.ID, Addr: inst.Addr, Err: res.err})
		if !rs.tolerates(failures, zoneOf) {
			return nil, &DoError{Failures: failures, Instances: len(rs.Instances), MaxErrors: rs.MaxErrors, Excluded: rs.Excluded}
		}
	}
	out := make([]any, 0, len(rs.Instances)-len(failures))
	for i, v := range values {
		if ok[i] {
			out = append(out, v)
		}
	}
	return out, nil
}
