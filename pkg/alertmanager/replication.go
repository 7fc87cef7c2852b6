package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-metrics/strata/pkg/alertmanager/alertmanagerpb"
	"github.com/strata-metrics/strata/pkg/alertmanager/alertstore"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// Replication places each tenant's Alertmanager on replicas. Nil: this instance serves every tenant
// alone.
type Replication interface {
	// Replicas returns the gRPC addresses of the tenant's replicas that are alive, in the ring's order
	// (the first is the first to notify), and this instance's position among them, -1 if it is not one.
	Replicas(tenantID string) (addrs []string, position int, err error)
	// Client returns a client of the Alertmanager gRPC API at addr.
	Client(addr string) (alertmanagerpb.AlertmanagerClient, error)
	// Version changes whenever Replicas may answer differently, so tenants are re-synced at once.
	Version() uint64
}

// Keys of the two parts of a tenant's state in StatePart.Key.
const (
	stateKeySilences = "silences"
	stateKeyNflog    = "nflog"
)

const (
	// stateQueueSize bounds the changes of one tenant's state waiting to be sent to one replica. A
	// replica that falls this far behind gets the full state instead, once it answers again.
	stateQueueSize = 256
	// stateSendTimeout bounds one send of a state change to a replica; the changes behind it wait.
	stateSendTimeout = 5 * time.Second
	// stateFetchTimeout bounds the reads of the full state from the other replicas when a tenant's
	// Alertmanager starts here.
	stateFetchTimeout = 15 * time.Second
)

// replicaSet is where a tenant's Alertmanager runs, as Replication answered at the last sync: between
// two changes of its Version the answer stays the same, so it is not asked on every notification.
type replicaSet struct {
	addrs    []string // the live replicas, in the ring's order
	position int      // this instance's index in addrs, -1 if it is not one of them
}

// others returns the replicas other than this instance, in the ring's order.
func (s *replicaSet) others() []string {
	if s.position < 0 {
		return s.addrs
	}
	return slices.Delete(slices.Clone(s.addrs), s.position, s.position+1)
}

// waitPosition is how many peer timeouts a notification waits before it is sent: the replicas ahead
// of this one each get that long to send it first. An instance that runs the tenant without being one
// of its replicas (until the next sync stops it) goes after all of them.
func (s *replicaSet) waitPosition() int {
	if s.position < 0 {
		return len(s.addrs)
	}
	return s.position
}

// placement says whether this instance runs the tenant's Alertmanager, and with which replicas (nil
// without Replication).
func (am *MultitenantAlertmanager) placement(tenantID string) (bool, *replicaSet, error) {
	if am.Replication == nil {
		return am.Owns == nil || am.Owns(tenantID), nil, nil
	}
	addrs, position, err := am.Replication.Replicas(tenantID)
	if err != nil {
		return false, nil, fmt.Errorf("tenant %s: find its replicas: %w", tenantID, err)
	}
	if position < -1 || position >= len(addrs) {
		return false, nil, fmt.Errorf("tenant %s: position %d among %d replicas", tenantID, position, len(addrs))
	}
	return position >= 0, &replicaSet{addrs: addrs, position: position}, nil
}

// loadState merges into inst, before it serves, the tenant's state of every other replica that
// answers and the state persisted in the bucket. Both are merged because merging is safe whatever the
// order (the newer version of each silence and log entry wins): the replicas hold what changed since
// the last persist, the bucket what a cluster stopped entirely had. The start fails only when neither
// the replicas nor the bucket could be read, since starting empty would persist an empty state over
// the tenant's.
func (am *MultitenantAlertmanager) loadState(ctx context.Context, tenantID string, inst *instance) error {
	answered := am.fetchReplicaStates(ctx, tenantID, inst)
	blob, err := am.store.GetState(ctx, tenantID)
	switch {
	case errors.Is(err, alertstore.ErrNotFound):
		return nil
	case err != nil && answered == 0:
		return fmt.Errorf("%w: read state: %w", errStateUnavailable, err)
	case err != nil:
		am.logger.Warn("tenant state not read from the bucket, using the replicas'", "tenant", tenantID, "err", err)
		return nil
	}
	silences, nflog, err := decodeState(blob)
	if err == nil {
		if err = inst.mergeState(stateKeySilences, silences); err == nil {
			err = inst.mergeState(stateKeyNflog, nflog)
		}
	}
	if err != nil {
		am.logger.Error("tenant state in the bucket unreadable, not used", "tenant", tenantID, "err", err)
	}
	return nil
}

// fetchReplicaStates merges the full state of each other replica that answers into inst and returns
// how many answered.
func (am *MultitenantAlertmanager) fetchReplicaStates(ctx context.Context, tenantID string, inst *instance) int {
	set := inst.replicas.Load()
	if set == nil {
		return 0
	}
	others := set.others()
	ctx, cancel := context.WithTimeout(tenant.NewContext(ctx, tenantID), stateFetchTimeout)
	defer cancel()
	states := make([]*alertmanagerpb.FullState, len(others))
	errs := make([]error, len(others))
	var wg sync.WaitGroup
	for i, addr := range others {
		wg.Go(func() {
			client, err := am.Replication.Client(addr)
			if err == nil {
				states[i], err = client.ReadState(ctx, &alertmanagerpb.ReadStateRequest{})
			}
			errs[i] = err
		})
	}
	wg.Wait()
	answered := 0
	for i, state := range states {
		err := errs[i]
		for _, part := range state.GetParts() {
			if err == nil {
				err = inst.mergeState(part.GetKey(), part.GetData())
			}
		}
		if err != nil {
			am.metrics.stateFetches.WithLabelValues("failure").Inc()
			am.logger.Debug("tenant state not read from a replica", "tenant", tenantID, "replica", others[i], "err", err)
			continue
		}
		am.metrics.stateFetches.WithLabelValues("success").Inc()
		answered++
	}
	return answered
}

// stateSender sends the changes of one tenant's state to the tenant's other replicas. Silences and the
// notification log call their broadcast function with their lock held, so it only queues the change;
// a worker per replica, started when its queue has work and ended when it is empty, sends the changes
// in order. A change that cannot be sent, or finds the queue full, is counted and replaced by the full
// state, sent before the next change to that replica: merging it repairs whatever the replica missed.
type stateSender struct {
	tenant    string
	client    func(addr string) (alertmanagerpb.AlertmanagerClient, error)
	targets   func() []string                             // the other replicas now
	fullState func() ([]*alertmanagerpb.StatePart, error) // the state, marshalled when sent
	results   *prometheus.CounterVec
	logger    *slog.Logger

	ctx    context.Context // canceled by stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mtx    sync.Mutex // guards the fields below
	queues map[string]*replicaQueue
	closed bool
}

// replicaQueue is what waits to be sent to one replica.
type replicaQueue struct {
	parts   []*alertmanagerpb.StatePart
	resync  bool // send the full state first
	running bool // a worker sends from this queue
}

func newStateSender(tenantID string, client func(addr string) (alertmanagerpb.AlertmanagerClient, error), targets func() []string,
	fullState func() ([]*alertmanagerpb.StatePart, error), results *prometheus.CounterVec, logger *slog.Logger) *stateSender {
	ctx, cancel := context.WithCancel(tenant.NewContext(context.Background(), tenantID))
	return &stateSender{
		tenant:    tenantID,
		client:    client,
		targets:   targets,
		fullState: fullState,
		results:   results,
		logger:    logger,
		ctx:       ctx,
		cancel:    cancel,
		queues:    make(map[string]*replicaQueue),
	}
}

// enqueue queues part for every other replica. It never blocks.
func (s *stateSender) enqueue(part *alertmanagerpb.StatePart) {
	targets := s.targets()
	s.mtx.Lock()
	defer s.mtx.Unlock()
	if s.closed {
		return
	}
	for addr, q := range s.queues {
		if !q.running && !slices.Contains(targets, addr) {
			delete(s.queues, addr) // no longer a replica
		}
	}
	for _, addr := range targets {
		q := s.queues[addr]
		if q == nil {
			q = &replicaQueue{}
			s.queues[addr] = q
		}
		if len(q.parts) >= stateQueueSize {
			// The full state, sent instead, holds these changes and this one.
			s.results.WithLabelValues("dropped").Add(float64(len(q.parts) + 1))
			q.parts, q.resync = nil, true
		} else {
			q.parts = append(q.parts, part)
		}
		if !q.running {
			q.running = true
			s.wg.Go(func() { s.drain(addr, q) })
		}
	}
}

// drain sends q's parts to addr until q is empty, or until a send fails: the queue then waits for the
// next change to try again, with the full state.
func (s *stateSender) drain(addr string, q *replicaQueue) {
	for {
		s.mtx.Lock()
		if s.closed || (len(q.parts) == 0 && !q.resync) {
			q.running = false
			s.mtx.Unlock()
			return
		}
		var parts []*alertmanagerpb.StatePart
		resync := q.resync
		if resync {
			// The full state, marshalled now, holds every change queued so far.
			q.parts, q.resync = nil, false
		} else {
			parts = q.parts[:1]
			q.parts = q.parts[1:]
		}
		s.mtx.Unlock()

		if resync {
			var err error
			if parts, err = s.fullState(); err != nil {
				s.logger.Error("marshal tenant state", "tenant", s.tenant, "err", err)
				parts = nil
			}
		}
		if err := s.send(addr, parts); err != nil {
			if s.ctx.Err() != nil {
				return // stopping; stop waits for this worker with the lock free
			}
			s.results.WithLabelValues("failure").Inc()
			s.logger.Debug("tenant state change not sent to a replica", "tenant", s.tenant, "replica", addr, "err", err)
			s.mtx.Lock()
			// The full state sent next time holds the changes queued meanwhile.
			q.parts, q.resync, q.running = nil, true, false
			s.mtx.Unlock()
			return
		}
		s.results.WithLabelValues("success").Inc()
	}
}

func (s *stateSender) send(addr string, parts []*alertmanagerpb.StatePart) error {
	client, err := s.client(addr)
	if err != nil {
		return err
	}
	for _, part := range parts {
		ctx, cancel := context.WithTimeout(s.ctx, stateSendTimeout)
		_, err := client.UpdateState(ctx, part)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// stop drops what is queued, cancels the sends under way and waits for the workers.
func (s *stateSender) stop() {
	s.mtx.Lock()
	s.closed = true
	s.mtx.Unlock()
	s.cancel()
	s.wg.Wait()
}

// UpdateState implements alertmanagerpb.AlertmanagerServer: it merges a change of the tenant's state
// sent by another replica. A tenant with a configuration of its own whose Alertmanager does not run
// here yet is refused with Unavailable rather than started: the sync starts it when this instance is a
// replica, and its start reads the full state of the replicas after it can take changes, so nothing
// sent before is missed. A tenant on the fallback configuration, which no sync starts, is started
// here if this instance is one of its replicas: otherwise a silence created on one replica would live
// there only, and be lost with it.
func (am *MultitenantAlertmanager) UpdateState(ctx context.Context, part *alertmanagerpb.StatePart) (*alertmanagerpb.UpdateStateResponse, error) {
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	inst := am.instance(id)
	if inst == nil && am.fallback != nil {
		if started, err := am.instanceFor(ctx, id); err == nil {
			inst = started
		}
	}
	if inst == nil {
		am.metrics.stateUpdates.WithLabelValues("not_running").Inc()
		return nil, status.Errorf(codes.Unavailable, "the Alertmanager of tenant %s does not run here", id)
	}
	if err := inst.mergeState(part.GetKey(), part.GetData()); err != nil {
		am.metrics.stateUpdates.WithLabelValues("invalid").Inc()
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	am.metrics.stateUpdates.WithLabelValues("merged").Inc()
	return &alertmanagerpb.UpdateStateResponse{}, nil
}

// ReadState implements alertmanagerpb.AlertmanagerServer: the tenant's full state, for a replica that
// starts the tenant's Alertmanager. An instance still catching up answers Unavailable, so that two
// replicas starting together do not take each other's partial state for the tenant's.
func (am *MultitenantAlertmanager) ReadState(ctx context.Context, _ *alertmanagerpb.ReadStateRequest) (*alertmanagerpb.FullState, error) {
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	inst := am.instance(id)
	if inst == nil || !inst.isReady() {
		return nil, status.Errorf(codes.Unavailable, "the Alertmanager of tenant %s is not running here", id)
	}
	parts, err := inst.stateParts()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &alertmanagerpb.FullState{Parts: parts}, nil
}
