package ring

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-metrics/strata/pkg/ring/kv"
	"github.com/strata-metrics/strata/pkg/services"
)

// ReadRing is what the components that look keys up need from a ring (the distributor and querier on the
// ingester ring, store-gateways and queriers on the store-gateway ring, compactors on theirs); they depend
// on it so tests can use fakes.
type ReadRing interface {
	// Get returns the replication set of a token for op, reusing buf for its instances.
	Get(key uint32, op Operation, buf []InstanceDesc) (ReplicationSet, error)
	// GetReplicationSetForOperation returns every healthy instance, with how many may fail so that each
	// token still has a live replica.
	GetReplicationSetForOperation(op Operation) (ReplicationSet, error)
	// ReplicationFactor is the configured number of replicas per token.
	ReplicationFactor() int
	// InstancesCount is the number of instances in the ring, healthy or not.
	InstancesCount() int
	// HealthyInstancesCount is the number of instances that can serve op.
	HealthyInstancesCount(op Operation) int
}

// ErrEmptyRing is returned by lookups on a ring with no instances owning tokens.
var ErrEmptyRing = errors.New("ring: empty ring")

// TooFewReplicasError is returned by Get when fewer of a token's replicas are healthy than its quorum.
type TooFewReplicasError struct {
	Op     Operation
	Needed int // the quorum
	Found  int // healthy replicas
}

// Error implements error.
func (e *TooFewReplicasError) Error() string {
	return fmt.Sprintf("ring: too few healthy instances for %s: need %d, found %d", e.Op, e.Needed, e.Found)
}

// TooManyUnhealthyError is returned by GetReplicationSetForOperation when so many instances (or zones) are
// unhealthy that some token may have lost a quorum of its replicas.
type TooManyUnhealthyError struct {
	Op        Operation
	Unit      string // "instances" or "zones"
	Unhealthy int
	Tolerated int
	// Names are the unhealthy instances (ID and address) or zones, sorted, so an operator knows which.
	Names []string
}

// Error implements error.
func (e *TooManyUnhealthyError) Error() string {
	return fmt.Sprintf("ring: too many unhealthy %s for %s: %d unhealthy (%s), at most %d tolerated",
		e.Unit, e.Op, e.Unhealthy, strings.Join(e.Names, ", "), e.Tolerated)
}

// Ring is a read-only view of a ring descriptor in a KV store, kept up to date by a watch. Lookups read a
// sorted token table under a read lock and do not allocate beyond the returned set.
type Ring struct {
	cfg    Config
	name   string
	key    string
	kv     kv.Client
	logger *slog.Logger
	// now is the clock used for heartbeat ages; tests replace it.
	now func() time.Time

	mu        sync.RWMutex
	desc      *Desc
	instances []InstanceDesc // non-LEFT instances, sorted by ID
	tokens    []uint32       // every instance's tokens, sorted, deduplicated
	owners    []int32        // owners[i] indexes instances for tokens[i]
	ownership []float64      // share of the token space per instances index
	numZones  int

	cancel context.CancelFunc
	done   chan struct{}

	members     *prometheus.GaugeVec
	tokensTotal prometheus.Gauge
}

var (
	_ ReadRing         = (*Ring)(nil)
	_ services.Service = (*Ring)(nil)
)

// New returns a Ring named name (used in metrics and logs) reading the descriptor under key. It is empty
// until Start.
func New(cfg Config, name, key string, kvClient kv.Client, reg prometheus.Registerer, logger *slog.Logger) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if kvClient == nil {
		return nil, errors.New("ring: nil KV client")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	labels := prometheus.Labels{"name": name}
	r := &Ring{
		cfg:    cfg,
		name:   name,
		key:    key,
		kv:     kvClient,
		logger: logger.With("component", "ring", "ring", name),
		now:    time.Now,
		desc:   NewDesc(),
	}
	var err error
	if r.members, err = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name:        "strata_ring_members",
		Help:        "Number of instances in the ring by state; unhealthy ones (stale heartbeat) are counted as state=\"unhealthy\".",
		ConstLabels: labels,
	}, []string{"state"})); err != nil {
		return nil, err
	}
	if r.tokensTotal, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "strata_ring_tokens",
		Help:        "Number of tokens in the ring.",
		ConstLabels: labels,
	})); err != nil {
		return nil, err
	}
	return r, nil
}

// Start loads the current descriptor and starts watching the key for changes.
func (r *Ring) Start(ctx context.Context) error {
	v, err := r.kv.Get(ctx, r.key)
	if err != nil {
		return fmt.Errorf("ring %s: read descriptor: %w", r.name, err)
	}
	d, err := descFrom(v)
	if err != nil {
		return err
	}
	r.setDesc(d)

	watchCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		r.kv.WatchKey(watchCtx, r.key, func(v any) bool {
			d, err := descFrom(v)
			if err != nil {
				r.logger.Error("ignoring ring descriptor", "err", err)
				return true
			}
			r.setDesc(d)
			return true
		})
	}()
	return nil
}

// Stop ends the watch. The ring keeps answering from the last descriptor it saw.
func (r *Ring) Stop(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tokenOwner pairs a token with its owner while the table is built.
type tokenOwner struct {
	token uint32
	owner int32
}

// setDesc replaces the descriptor and rebuilds the token table. The table is built before taking the lock
// so lookups are blocked only for the swap.
func (r *Ring) setDesc(d *Desc) {
	instances := make([]InstanceDesc, 0, len(d.Instances))
	zones := map[string]struct{}{}
	numTokens := 0
	for _, inst := range d.Instances {
		if inst.State == LEFT {
			continue
		}
		instances = append(instances, inst)
		zones[inst.Zone] = struct{}{}
		numTokens += len(inst.Tokens)
	}
	slices.SortFunc(instances, func(a, b InstanceDesc) int { return cmp.Compare(a.ID, b.ID) })

	pairs := make([]tokenOwner, 0, numTokens)
	for i := range instances {
		for _, t := range instances[i].Tokens {
			pairs = append(pairs, tokenOwner{t, int32(i)})
		}
	}
	// Ties (two instances claiming a token) go to the lower ID, so every reader resolves them alike.
	slices.SortFunc(pairs, func(a, b tokenOwner) int {
		return cmp.Or(cmp.Compare(a.token, b.token), cmp.Compare(a.owner, b.owner))
	})
	pairs = slices.CompactFunc(pairs, func(a, b tokenOwner) bool { return a.token == b.token })

	tokens := make([]uint32, len(pairs))
	owners := make([]int32, len(pairs))
	ownership := make([]float64, len(instances))
	for i, p := range pairs {
		tokens[i], owners[i] = p.token, p.owner
		// A token owns the range after the previous token up to itself; uint32 arithmetic wraps the first
		// token's range around zero.
		span := float64(p.token - pairs[(i+len(pairs)-1)%len(pairs)].token)
		if len(pairs) == 1 {
			span = 1 << 32
		}
		ownership[p.owner] += span / (1 << 32)
	}

	r.mu.Lock()
	r.desc = d
	r.instances, r.tokens, r.owners, r.ownership = instances, tokens, owners, ownership
	r.numZones = len(zones)
	r.mu.Unlock()

	r.updateMetrics()
}

func (r *Ring) updateMetrics() {
	r.mu.RLock()
	defer r.mu.RUnlock()
	counts := map[string]int{"unhealthy": 0}
	for _, s := range stateNames[:LEFT] {
		counts[s] = 0
	}
	nowMs := r.now().UnixMilli()
	for i := range r.instances {
		if !r.alive(&r.instances[i], nowMs) {
			counts["unhealthy"]++
			continue
		}
		counts[r.instances[i].State.String()]++
	}
	for state, n := range counts {
		r.members.WithLabelValues(state).Set(float64(n))
	}
	r.tokensTotal.Set(float64(len(r.tokens)))
}

// alive reports whether the instance heartbeated within HeartbeatTimeout.
func (r *Ring) alive(inst *InstanceDesc, nowMs int64) bool {
	return nowMs-inst.Timestamp <= r.cfg.HeartbeatTimeout.Milliseconds()
}

func (r *Ring) healthy(inst *InstanceDesc, op Operation, nowMs int64) bool {
	return op.healthyState(inst.State) && r.alive(inst, nowMs)
}

// replicasLocked is the number of replicas per token: the replication factor, capped by the number of
// instances (zones with zone awareness) so that a cluster smaller than the factor still accepts writes.
func (r *Ring) replicasLocked() int {
	if r.cfg.ZoneAwarenessEnabled {
		return min(r.cfg.ReplicationFactor, r.numZones)
	}
	return min(r.cfg.ReplicationFactor, len(r.instances))
}

// quorum is the number of replicas that must acknowledge for an operation on n replicas to succeed.
func quorum(n int) int { return n/2 + 1 }

// Get walks the ring clockwise from key and returns its replication set for op: ReplicationFactor distinct
// instances (in distinct zones with zone awareness), going further past instances that op does not count
// (e.g. JOINING for writes), minus unhealthy ones. The set's instances are appended to buf[:0].
func (r *Ring) Get(key uint32, op Operation, buf []InstanceDesc) (ReplicationSet, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.tokens) == 0 {
		return ReplicationSet{}, ErrEmptyRing
	}
	want := r.replicasLocked()
	replicas := want
	out := buf[:0]
	nowMs := r.now().UnixMilli()
	start, _ := slices.BinarySearch(r.tokens, key)
	// Stop once the set is complete, or once every instance is in it (extensions can ask for more
	// instances than there are).
	for i := 0; i < len(r.tokens) && len(out) < want && len(out) < len(r.instances); i++ {
		inst := &r.instances[r.owners[(start+i)%len(r.tokens)]]
		if r.pickedLocked(out, inst, op) {
			continue
		}
		out = append(out, *inst)
		if op.extendsPast(inst.State) || (op == Owner && !r.alive(inst, nowMs)) {
			want++
		}
	}

	healthy := out[:0]
	for i := range out {
		if r.healthy(&out[i], op, nowMs) {
			healthy = append(healthy, out[i])
		}
	}
	q := quorum(replicas)
	if len(healthy) < q {
		return ReplicationSet{}, &TooFewReplicasError{Op: op, Needed: q, Found: len(healthy)}
	}
	return ReplicationSet{Instances: healthy, MaxErrors: len(healthy) - q}, nil
}

// pickedLocked reports whether inst must be skipped because it, or with zone awareness another replica in
// its zone, is already in the set. Instances the set extended past do not use up their zone: that zone
// still needs a replica.
func (r *Ring) pickedLocked(set []InstanceDesc, inst *InstanceDesc, op Operation) bool {
	for i := range set {
		if set[i].ID == inst.ID {
			return true
		}
		if r.cfg.ZoneAwarenessEnabled && set[i].Zone == inst.Zone && !op.extendsPast(set[i].State) {
			return true
		}
	}
	return false
}

// GetReplicationSetForOperation returns every healthy instance for op. Each token has
// replicas - quorum replicas to spare, and each unhealthy instance may be one of them, so MaxErrors is
// what is left of that budget. With zone awareness a whole zone may fail instead: zones with an unhealthy
// instance are left out and MaxUnavailableZones says how many more may fail. Instances op extends past
// (e.g. JOINING for reads) hold no replicas and are neither queried nor counted as failed.
func (r *Ring) GetReplicationSetForOperation(op Operation) (ReplicationSet, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.tokens) == 0 {
		return ReplicationSet{}, ErrEmptyRing
	}
	replicas := r.replicasLocked()
	tolerated := replicas - quorum(replicas)
	nowMs := r.now().UnixMilli()

	if !r.cfg.ZoneAwarenessEnabled {
		healthy := make([]InstanceDesc, 0, len(r.instances))
		var unhealthy []string
		for i := range r.instances {
			inst := &r.instances[i]
			switch {
			case op.extendsPast(inst.State):
			case r.healthy(inst, op, nowMs):
				healthy = append(healthy, *inst)
			default:
				unhealthy = append(unhealthy, inst.ID+" ("+inst.Addr+")")
			}
		}
		if len(unhealthy) > tolerated {
			slices.Sort(unhealthy)
			return ReplicationSet{}, &TooManyUnhealthyError{Op: op, Unit: "instances", Unhealthy: len(unhealthy), Tolerated: tolerated, Names: unhealthy}
		}
		slices.Sort(unhealthy)
		return ReplicationSet{Instances: healthy, MaxErrors: tolerated - len(unhealthy), Excluded: unhealthy}, nil
	}

	failedZones := map[string]struct{}{}
	for i := range r.instances {
		inst := &r.instances[i]
		if !op.extendsPast(inst.State) && !r.healthy(inst, op, nowMs) {
			failedZones[inst.Zone] = struct{}{}
		}
	}
	if len(failedZones) > tolerated {
		names := slices.Sorted(maps.Keys(failedZones))
		return ReplicationSet{}, &TooManyUnhealthyError{Op: op, Unit: "zones", Unhealthy: len(failedZones), Tolerated: tolerated, Names: names}
	}
	healthy := make([]InstanceDesc, 0, len(r.instances))
	for i := range r.instances {
		inst := &r.instances[i]
		if _, failed := failedZones[inst.Zone]; failed || op.extendsPast(inst.State) {
			continue
		}
		healthy = append(healthy, *inst)
	}
	return ReplicationSet{Instances: healthy, MaxUnavailableZones: tolerated - len(failedZones), Excluded: slices.Sorted(maps.Keys(failedZones))}, nil
}

// ReplicationFactor implements ReadRing.
func (r *Ring) ReplicationFactor() int { return r.cfg.ReplicationFactor }

// InstancesCount implements ReadRing; tombstones are not counted.
func (r *Ring) InstancesCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.instances)
}

// HealthyInstancesCount implements ReadRing.
func (r *Ring) HealthyInstancesCount(op Operation) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	nowMs := r.now().UnixMilli()
	n := 0
	for i := range r.instances {
		if r.healthy(&r.instances[i], op, nowMs) {
			n++
		}
	}
	return n
}

// Ownership returns each instance's share of the token space, from 0 to 1; the shares add up to 1.
func (r *Ring) Ownership() map[string]float64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]float64, len(r.instances))
	for i := range r.instances {
		out[r.instances[i].ID] = r.ownership[i]
	}
	return out
}

// Desc returns a copy of the descriptor the ring last saw, tombstones included.
func (r *Ring) Desc() *Desc {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.desc.Clone().(*Desc)
}
