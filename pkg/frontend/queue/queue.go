// Package queue is the query-frontend's per-tenant fair queue: queries wait in one FIFO per tenant, and
// queriers take them from the tenants in turn, each tenant only from its own subset of the queriers.
package queue

import (
	"cmp"
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ErrTooManyRequests refuses a request of a tenant that already has the most requests queued.
var ErrTooManyRequests = errors.New("too many outstanding requests")

// ErrStopped is returned to queriers waiting when the queue stops.
var ErrStopped = errors.New("the queue is stopped")

// Request is an item of the queue; the queue does not look inside it.
type Request any

// Queue holds the requests that wait for a querier. It is fair between tenants: each dequeue takes the
// oldest request of the next tenant in turn, so a tenant with a thousand queued requests delays another
// tenant's request by at most one request per querier connection.
type Queue struct {
	maxOutstanding int
	maxQueriers    func(tenant string) int

	mu      sync.Mutex
	tenants map[string]*tenantQueue
	// order holds the tenants with queued requests, in the order they take turns; next is whose turn it is.
	order []string
	next  int
	// queriers counts the worker connections of each connected querier.
	queriers map[string]int
	// changed is closed and replaced whenever a request arrives or the queriers change, waking the
	// queriers that wait.
	changed chan struct{}
	stopped bool

	length   *prometheus.GaugeVec
	discards *prometheus.CounterVec
	waited   prometheus.Histogram
}

type tenantQueue struct {
	items []*entry
	// queriers is the tenant's subset of the queriers, nil for all of them; computed on first use after the
	// queriers change.
	queriers     map[string]bool
	queriersDone bool
}

type entry struct {
	req      Request
	enqueued time.Time
}

// New returns a queue that holds at most maxOutstanding requests per tenant and gives a tenant at most
// maxQueriers(tenant) queriers (0: all).
func New(maxOutstanding int, maxQueriers func(tenant string) int, reg prometheus.Registerer) *Queue {
	return &Queue{
		maxOutstanding: maxOutstanding,
		maxQueriers:    maxQueriers,
		tenants:        map[string]*tenantQueue{},
		queriers:       map[string]int{},
		changed:        make(chan struct{}),
		length: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_query_frontend_queue_length",
			Help: "Requests waiting in the query-frontend's queue, by tenant.",
		}, []string{"user"}),
		discards: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_query_frontend_discarded_requests_total",
			Help: "Requests refused because their tenant already had -query-frontend.max-outstanding-requests-per-tenant requests queued.",
		}, []string{"user"}),
		waited: promauto.With(reg).NewHistogram(prometheus.HistogramOpts{
			Name:                        "strata_query_frontend_queue_duration_seconds",
			Help:                        "Time requests waited in the query-frontend's queue.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}),
	}
}

// Enqueue adds req to tenant's queue. It fails with ErrTooManyRequests when the tenant already has
// maxOutstanding requests queued.
func (q *Queue) Enqueue(tenant string, req Request) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return ErrStopped
	}
	tq := q.tenants[tenant]
	if tq == nil {
		tq = &tenantQueue{}
		q.tenants[tenant] = tq
		// A tenant that starts waiting takes the next turn: it has had none of the recent ones.
		q.order = slices.Insert(q.order, q.next, tenant)
	}
	if len(tq.items) >= q.maxOutstanding {
		q.discards.WithLabelValues(tenant).Inc()
		return ErrTooManyRequests
	}
	tq.items = append(tq.items, &entry{req: req, enqueued: time.Now()})
	q.length.WithLabelValues(tenant).Inc()
	q.broadcast()
	return nil
}

// Remove takes req out of tenant's queue if it is still there (its client went away while it waited),
// and reports whether it was.
func (q *Queue) Remove(tenant string, req Request) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	tq := q.tenants[tenant]
	if tq == nil {
		return false
	}
	i := slices.IndexFunc(tq.items, func(e *entry) bool { return e.req == req })
	if i < 0 {
		return false
	}
	tq.items = slices.Delete(tq.items, i, i+1)
	q.length.WithLabelValues(tenant).Dec()
	q.dropIfEmpty(tenant, tq)
	return true
}

// Dequeue waits for a request that querierID may run and returns it with its tenant. It fails when ctx
// is done or the queue stops.
func (q *Queue) Dequeue(ctx context.Context, querierID string) (Request, string, error) {
	for {
		q.mu.Lock()
		if q.stopped {
			q.mu.Unlock()
			return nil, "", ErrStopped
		}
		if req, tenant, ok := q.take(querierID); ok {
			q.mu.Unlock()
			return req, tenant, nil
		}
		changed := q.changed
		q.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
}

// take pops the oldest request of the next tenant in turn that querierID serves. q.mu is held.
func (q *Queue) take(querierID string) (Request, string, bool) {
	for i := range len(q.order) {
		idx := (q.next + i) % len(q.order)
		tenant := q.order[idx]
		tq := q.tenants[tenant]
		if !q.serves(tenant, tq, querierID) {
			continue
		}
		e := tq.items[0]
		tq.items[0] = nil
		tq.items = tq.items[1:]
		q.length.WithLabelValues(tenant).Dec()
		q.waited.Observe(time.Since(e.enqueued).Seconds())
		q.next = idx + 1
		q.dropIfEmpty(tenant, tq) // moves next back when it removes this slot
		if q.next >= len(q.order) {
			q.next = 0
		}
		return e.req, tenant, true
	}
	return nil, "", false
}

// dropIfEmpty forgets a tenant whose queue is empty, so the turns go round the tenants that wait.
func (q *Queue) dropIfEmpty(tenant string, tq *tenantQueue) {
	if len(tq.items) > 0 {
		return
	}
	delete(q.tenants, tenant)
	i := slices.Index(q.order, tenant)
	q.order = slices.Delete(q.order, i, i+1)
	if i < q.next {
		q.next--
	}
	q.length.DeleteLabelValues(tenant)
}

// serves reports whether querierID is in the tenant's subset of the connected queriers. q.mu is held.
func (q *Queue) serves(tenant string, tq *tenantQueue, querierID string) bool {
	if !tq.queriersDone {
		tq.queriers = q.shuffleShard(tenant)
		tq.queriersDone = true
	}
	return tq.queriers == nil || tq.queriers[querierID]
}

// shuffleShard picks the tenant's queriers: the maxQueriers connected queriers that rank highest for the
// tenant by a hash of both IDs. The choice is stable while the queriers stay the same, and a querier that
// joins or leaves moves only the tenants it ranks high for. nil means all queriers.
func (q *Queue) shuffleShard(tenant string) map[string]bool {
	n := q.maxQueriers(tenant)
	if n <= 0 || n >= len(q.queriers) {
		return nil
	}
	type ranked struct {
		id   string
		rank uint64
	}
	all := make([]ranked, 0, len(q.queriers))
	for id := range q.queriers {
		h := fnv.New64a()
		_, _ = h.Write([]byte(tenant))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(id))
		all = append(all, ranked{id: id, rank: h.Sum64()})
	}
	slices.SortFunc(all, func(a, b ranked) int {
		if c := cmp.Compare(b.rank, a.rank); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	chosen := make(map[string]bool, n)
	for _, r := range all[:n] {
		chosen[r.id] = true
	}
	return chosen
}

// QuerierConnected counts a worker connection of querierID; the querier takes part in the tenants'
// subsets from its first connection.
func (q *Queue) QuerierConnected(querierID string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queriers[querierID]++
	if q.queriers[querierID] == 1 {
		q.queriersChanged()
	}
}

// QuerierDisconnected forgets a worker connection of querierID; with its last one the querier leaves the
// tenants' subsets, and their requests go to the others.
func (q *Queue) QuerierDisconnected(querierID string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queriers[querierID]--
	if q.queriers[querierID] <= 0 {
		delete(q.queriers, querierID)
		q.queriersChanged()
	}
}

// Len returns how many requests of tenant wait.
func (q *Queue) Len(tenant string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if tq := q.tenants[tenant]; tq != nil {
		return len(tq.items)
	}
	return 0
}

// Queriers returns how many queriers are connected.
func (q *Queue) Queriers() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queriers)
}

func (q *Queue) queriersChanged() {
	for _, tq := range q.tenants {
		tq.queriersDone = false
	}
	q.broadcast()
}

func (q *Queue) broadcast() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// Stop wakes every waiting querier with ErrStopped and refuses new requests; queued requests stay for
// their senders to time out or remove.
func (q *Queue) Stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	q.broadcast()
}
