package validation

import (
	"github.com/prometheus/client_golang/prometheus"
)

// TenantLimits returns the limits of tenants that have overrides: nil for a tenant without.
type TenantLimits interface {
	ByTenant(tenant string) *Limits
	// AllByTenant returns every tenant's overrides, for the limits metrics and /runtime_config.
	AllByTenant() map[string]*Limits
}

// Overrides answers each tenant's effective limits: its overrides when it has some, the defaults
// otherwise. Overrides change live, so callers look the limits up for every request rather than keep them.
type Overrides struct {
	defaults *Limits
	tenants  TenantLimits
}

// NewOverrides returns the limits of every tenant. tenants may be nil: every tenant has the defaults.
func NewOverrides(defaults Limits, tenants TenantLimits) *Overrides {
	return &Overrides{defaults: &defaults, tenants: tenants}
}

// For returns the limits of tenant. The result is shared: callers must not modify it.
func (o *Overrides) For(tenant string) *Limits {
	if o.tenants != nil {
		if l := o.tenants.ByTenant(tenant); l != nil {
			return l
		}
	}
	return o.defaults
}

// AllByTenant returns the limits of every tenant with overrides.
func (o *Overrides) AllByTenant() map[string]*Limits {
	if o.tenants == nil {
		return nil
	}
	return o.tenants.AllByTenant()
}

// Defaults returns the limits of tenants without overrides.
func (o *Overrides) Defaults() *Limits { return o.defaults }

// NewLimitsCollector exports the numeric limits (durations in seconds) as strata_limits_defaults{limit_name}
// and, for each tenant with overrides, strata_limits_overrides{limit_name,user}, so dashboards can show a
// tenant's usage against its limit.
func NewLimitsCollector(o *Overrides) prometheus.Collector {
	return &limitsCollector{
		overrides: o,
		defaultsDesc: prometheus.NewDesc("strata_limits_defaults",
			"The default value of each numeric per-tenant limit (durations in seconds).", []string{"limit_name"}, nil),
		overridesDesc: prometheus.NewDesc("strata_limits_overrides",
			"The value of each numeric limit of each tenant that has runtime overrides (durations in seconds).", []string{"limit_name", "user"}, nil),
	}
}

type limitsCollector struct {
	overrides                   *Overrides
	defaultsDesc, overridesDesc *prometheus.Desc
}

func (c *limitsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.defaultsDesc
	ch <- c.overridesDesc
}

func (c *limitsCollector) Collect(ch chan<- prometheus.Metric) {
	keys := LimitKeys()
	emit := func(l *Limits, desc *prometheus.Desc, labels ...string) {
		for _, key := range keys {
			if v, ok := l.numericValue(key); ok {
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, append([]string{key}, labels...)...)
			}
		}
	}
	emit(c.overrides.defaults, c.defaultsDesc)
	for tenant, l := range c.overrides.AllByTenant() {
		emit(l, c.overridesDesc, tenant)
	}
}
