package alertmanager

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/silence"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
)

// alertCounter is the store callback of a tenant's alert provider: it counts the alerts kept, refuses
// new ones beyond the tenant's limit, and passes every call on to the silencer, which is the callback
// Alertmanager itself installs.
type alertCounter struct {
	next      *silence.Silencer
	max       int // 0: no limit
	count     atomic.Int64
	discarded prometheus.Counter
}

// PreStore refuses an alert the provider does not hold yet when the tenant is at its limit; updates of
// held alerts always pass, so alerts can still resolve.
func (c *alertCounter) PreStore(a *alert.Alert, existing bool) error {
	if !existing && c.max > 0 && c.count.Load() >= int64(c.max) {
		c.discarded.Inc()
		return fmt.Errorf("the tenant has %d alerts, the limit (-alertmanager.max-alerts-count)", c.max)
	}
	return c.next.PreStore(a, existing)
}

func (c *alertCounter) PostStore(a *alert.Alert, existing bool) {
	if !existing {
		c.count.Add(1)
	}
	c.next.PostStore(a, existing)
}

func (c *alertCounter) PostDelete(a *alert.Alert) {
	c.count.Add(-1)
	c.next.PostDelete(a)
}

func (c *alertCounter) PostGC(fps model.Fingerprints) { c.next.PostGC(fps) }
