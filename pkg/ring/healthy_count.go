package ring

import (
	"sync/atomic"
	"time"
)

// HealthyCounter counts a ring's instances that can serve an operation.
type HealthyCounter interface {
	HealthyInstancesCount(op Operation) int
}

// HealthyCount is a ring's healthy instance count for op, counted again at most once a second: limits
// shared out over a ring read it on every request, and counting walks every instance under the ring's
// lock. A second is far below the heartbeat timeout that decides health anyway.
type HealthyCount struct {
	ring HealthyCounter
	op   Operation

	count     atomic.Int64
	countedAt atomic.Int64 // unix nanoseconds; 0: never
}

// NewHealthyCount counts r's healthy instances for op. r may be nil: the count is then 0.
func NewHealthyCount(r HealthyCounter, op Operation) *HealthyCount {
	return &HealthyCount{ring: r, op: op}
}

// Get returns the count as of at most a second before now.
func (c *HealthyCount) Get(now time.Time) int {
	if c.ring == nil {
		return 0
	}
	at := c.countedAt.Load()
	if at == 0 || now.UnixNano()-at >= int64(time.Second) {
		c.count.Store(int64(c.ring.HealthyInstancesCount(c.op)))
		c.countedAt.Store(now.UnixNano())
	}
	return int(c.count.Load())
}
