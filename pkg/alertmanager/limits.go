package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/silence"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/strata-metrics/strata/pkg/validation"
)

// Limits are the per-tenant limits of the Alertmanager; *validation.Overrides has them. They are asked
// at every call (an upload, an alert, a silence, a new aggregation group), so a change of the runtime
// overrides applies at once. 0 is no limit.
type Limits interface {
	AlertmanagerMaxConfigSizeBytes(tenant string) int
	AlertmanagerMaxTemplatesCount(tenant string) int
	AlertmanagerMaxAlertsCount(tenant string) int
	AlertmanagerMaxAlertsSizeBytes(tenant string) int
	AlertmanagerMaxSilencesCount(tenant string) int
	AlertmanagerMaxSilenceSizeBytes(tenant string) int
	AlertmanagerMaxDispatcherAggregationGroups(tenant string) int
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

// dispatcherLimits are the tenant's limits as the dispatcher asks for them, at every new aggregation group.
type dispatcherLimits struct {
	limits Limits
	tenant string
}

func (d dispatcherLimits) MaxNumberOfAggregationGroups() int {
	return d.limits.AlertmanagerMaxDispatcherAggregationGroups(d.tenant)
}

// msgAggregationGroupLimit is what the dispatcher logs, at error level, for each alert that the
// aggregation groups limit keeps from being routed.
const msgAggregationGroupLimit = "Failed to create aggregation group"

// withoutAggregationGroupLimitLogs drops the dispatcher's log of each alert refused by the aggregation
// groups limit: a tenant at its limit would log an error for every alert its rules resend, every
// evaluation. The dispatcher's limit-reached metric, exported per tenant, counts them; everything else
// the dispatcher logs (notification failures among others) passes.
func withoutAggregationGroupLimitLogs(logger *slog.Logger) *slog.Logger {
	return slog.New(dropMessageHandler{Handler: logger.Handler(), msg: msgAggregationGroupLimit})
}

// dropMessageHandler passes on every record but those whose message is msg.
type dropMessageHandler struct {
	slog.Handler
	msg string
}

func (h dropMessageHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h dropMessageHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return dropMessageHandler{Handler: h.Handler.WithAttrs(attrs), msg: h.msg}
}

func (h dropMessageHandler) WithGroup(name string) slog.Handler {
	return dropMessageHandler{Handler: h.Handler.WithGroup(name), msg: h.msg}
}

// alertCounter is the store callback of a tenant's alert provider: it keeps the size of each alert
// held, refuses alerts beyond the tenant's count and size limits, and passes every call on to the
// silencer, which is the callback Alertmanager itself installs.
type alertCounter struct {
	next      *silence.Silencer
	tenant    string
	limits    Limits
	discarded *prometheus.CounterVec // the tenant's, by the limit's key

	mtx   sync.Mutex // the provider's garbage collection calls PostDelete outside its own lock
	sizes map[model.Fingerprint]int
	total int // the sum of sizes
}

func newAlertCounter(next *silence.Silencer, tenant string, limits Limits, discarded *prometheus.CounterVec) *alertCounter {
	return &alertCounter{next: next, tenant: tenant, limits: limits, discarded: discarded, sizes: make(map[model.Fingerprint]int)}
}

// alertSize is what an alert counts towards the size limit: the bytes of its labels, annotations and
// generator URL, which is what grows with what a tenant sends.
func alertSize(a *alert.Alert) int {
	n := len(a.GeneratorURL)
	for name, value := range a.Labels {
		n += len(name) + len(value)
	}
	for name, value := range a.Annotations {
		n += len(name) + len(value)
	}
	return n
}

// PreStore refuses an alert the provider does not hold yet when the tenant is at its count limit, and
// an alert, new or grown, that would take the tenant over its size limit. Other updates of held alerts
// always pass, and so does resolving an alert: a limit must not keep an alert firing.
func (c *alertCounter) PreStore(a *alert.Alert, existing bool) error {
	if err := c.check(a, existing); err != nil {
		return err
	}
	return c.next.PreStore(a, existing)
}

func (c *alertCounter) check(a *alert.Alert, existing bool) error {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	if !existing {
		if limit := c.limits.AlertmanagerMaxAlertsCount(c.tenant); limit > 0 && len(c.sizes) >= limit {
			return c.refuse("alertmanager_max_alerts_count", "the tenant has %d alerts, the limit", len(c.sizes))
		}
	}
	if a.Resolved() {
		return nil
	}
	size, held := alertSize(a), c.sizes[a.Fingerprint()]
	if limit := c.limits.AlertmanagerMaxAlertsSizeBytes(c.tenant); limit > 0 && size > held && c.total-held+size > limit {
		return c.refuse("alertmanager_max_alerts_size_bytes",
			"the tenant's alerts take %d bytes, and this one (%d bytes) would take them over the limit of %d", c.total, size, limit)
	}
	return nil
}

func (c *alertCounter) refuse(key, format string, args ...any) error {
	c.discarded.WithLabelValues(key).Inc()
	return errors.New(limitMessage(key, format, args...))
}

func (c *alertCounter) PostStore(a *alert.Alert, existing bool) {
	size, fp := alertSize(a), a.Fingerprint()
	c.mtx.Lock()
	c.total += size - c.sizes[fp]
	c.sizes[fp] = size
	c.mtx.Unlock()
	c.next.PostStore(a, existing)
}

func (c *alertCounter) PostDelete(a *alert.Alert) {
	fp := a.Fingerprint()
	c.mtx.Lock()
	c.total -= c.sizes[fp]
	delete(c.sizes, fp)
	c.mtx.Unlock()
	c.next.PostDelete(a)
}

func (c *alertCounter) PostGC(fps model.Fingerprints) { c.next.PostGC(fps) }

// count returns how many alerts the provider holds.
func (c *alertCounter) count() int64 {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	return int64(len(c.sizes))
}
