package alertmanager

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/silence"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/strata-metrics/strata/pkg/validation"
)

// Limits are the per-tenant limits of the Alertmanager; *validation.Overrides has them. They are asked
// at every call (an upload, an alert, a silence), so a change of the runtime overrides applies at once.
// 0 is no limit.
type Limits interface {
	AlertmanagerMaxConfigSizeBytes(tenant string) int
	AlertmanagerMaxTemplatesCount(tenant string) int
	AlertmanagerMaxAlertsCount(tenant string) int
	AlertmanagerMaxSilencesCount(tenant string) int
	AlertmanagerMaxSilenceSizeBytes(tenant string) int
}

// defaultLimits are the limits of New without any: every tenant has the flags' defaults.
func defaultLimits() Limits { return validation.NewOverrides(validation.DefaultLimits(), nil) }

// limitMessage says what crossed the per-tenant limit of key and how to change it.
func limitMessage(key, format string, args ...any) string {
	return fmt.Sprintf("%s. To adjust the related per-tenant limit, configure -%s, or %s in the tenant's runtime overrides",
		fmt.Sprintf(format, args...), validation.FlagOf(key), key)
}

// silenceLimits are the tenant's limits as the silences ask for them, at every new silence.
func silenceLimits(limits Limits, tenant string) silence.Limits {
	return silence.Limits{
		MaxSilences:         func() int { return limits.AlertmanagerMaxSilencesCount(tenant) },
		MaxSilenceSizeBytes: func() int { return limits.AlertmanagerMaxSilenceSizeBytes(tenant) },
	}
}

// alertCounter is the store callback of a tenant's alert provider: it counts the alerts kept, refuses
// new ones beyond the tenant's limit, and passes every call on to the silencer, which is the callback
// Alertmanager itself installs.
type alertCounter struct {
	next      *silence.Silencer
	tenant    string
	limits    Limits
	count     atomic.Int64
	discarded prometheus.Counter
}

// PreStore refuses an alert the provider does not hold yet when the tenant is at its limit; updates of
// held alerts always pass, so alerts can still resolve.
func (c *alertCounter) PreStore(a *alert.Alert, existing bool) error {
	if !existing {
		if limit := c.limits.AlertmanagerMaxAlertsCount(c.tenant); limit > 0 && c.count.Load() >= int64(limit) {
			c.discarded.Inc()
			return errors.New(limitMessage("alertmanager_max_alerts_count", "the tenant has %d alerts, the limit", limit))
		}
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
