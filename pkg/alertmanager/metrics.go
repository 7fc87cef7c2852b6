package alertmanager

import (
	"log/slog"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the multi-tenant Alertmanager's own. The metrics of Alertmanager's parts are registered
// per tenant into the tenant's own registry (see tenantCollector), so a tenant's stop drops them all
// and a restart registers them anew without clashing.
type metrics struct {
	syncs           *prometheus.CounterVec
	lastApplyOK     *prometheus.GaugeVec
	alertsDiscarded *prometheus.CounterVec
	persists        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec

	stateReplications *prometheus.CounterVec
	stateUpdates      *prometheus.CounterVec
	stateFetches      *prometheus.CounterVec
	distributed       *prometheus.CounterVec
	replicaRequests   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		syncs: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_alertmanager_config_syncs_total",
			Help: "Reads of the configuration store that started, changed and stopped tenants' Alertmanagers, by result; a failure means some tenant's configuration could not be read or applied.",
		}, []string{"result"}),
		lastApplyOK: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_alertmanager_config_last_apply_successful",
			Help: "Whether the tenant's latest configuration was applied (1) or refused (0, the previous one stays in effect).",
		}, []string{"tenant"}),
		alertsDiscarded: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_alertmanager_alerts_discarded_total",
			Help: "Alerts not kept because they would take the tenant over a limit, by the limit: alertmanager_max_alerts_count or alertmanager_max_alerts_size_bytes.",
		}, []string{"tenant", "limit"}),
		persists: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_alertmanager_state_persists_total",
			Help: "Writes of a tenant's silences and notification log to the store, by result.",
		}, []string{"result"}),
		requestDuration: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "strata_alertmanager_http_request_duration_seconds",
			Help:                        "Time to answer a request of a tenant's Alertmanager API, by API path.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}, []string{"handler", "method", "code"}),
		stateReplications: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_alertmanager_state_replication_total",
			Help: "Changes of tenants' silences and notification logs sent to another replica, by result: success, failure (the replica gets the full state with the next change), or dropped (the queue to the replica was full; the full state is sent instead).",
		}, []string{"result"}),
		stateUpdates: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_alertmanager_state_updates_received_total",
			Help: "Changes of tenants' silences and notification logs received from another replica, by result: merged, not_running (the tenant's Alertmanager does not run here) or invalid.",
		}, []string{"result"}),
		stateFetches: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_alertmanager_state_fetch_total",
			Help: "Reads of a tenant's full state from another replica when the tenant's Alertmanager starts here, by result; with none successful, the state comes from the bucket alone.",
		}, []string{"result"}),
		distributed: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_alertmanager_distributor_requests_total",
			Help: "Calls of tenants' Alertmanager APIs served through the tenants' replicas, by operation (alerts: sent to every replica; write, read: to one) and result (success, client_error, failure).",
		}, []string{"operation", "result"}),
		replicaRequests: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_alertmanager_distributor_replica_requests_total",
			Help: "Calls of tenants' Alertmanager APIs sent to one replica (this instance included), by result: success, or failure (unreachable or a server error; a read then goes to the next replica).",
		}, []string{"result"}),
	}
}

// deleteTenant drops the series of a tenant that no longer runs here.
func (m *metrics) deleteTenant(tenantID string) {
	m.lastApplyOK.DeleteLabelValues(tenantID)
	m.alertsDiscarded.DeletePartialMatch(prometheus.Labels{"tenant": tenantID})
}

// exportedFamily is a metric of Alertmanager's parts that is exposed per tenant, under a strata name,
// with the tenant label and the labels named here (others, like the API's constant version="v2", are
// dropped).
type exportedFamily struct {
	desc   *prometheus.Desc
	labels []string
	// byIntegration keeps only the series of integrations the tenant's configuration uses:
	// Alertmanager creates them for every kind of integration, a dozen and more per tenant.
	byIntegration bool
}

func newExportedFamily(name, help string, labels ...string) exportedFamily {
	return exportedFamily{
		desc:          prometheus.NewDesc(name, help, append([]string{"tenant"}, labels...), nil),
		labels:        labels,
		byIntegration: len(labels) > 0 && labels[0] == "integration",
	}
}

// exportedFamilies maps the names in the tenants' registries to what is exposed. The rest (GC and
// snapshot timings, query counts) is there for debugging one tenant, not worth series per tenant.
var exportedFamilies = map[string]exportedFamily{
	"alertmanager_alerts_received_total": newExportedFamily("strata_alertmanager_alerts_received_total",
		"Alerts received by the tenant's Alertmanager API, by status.", "status"),
	"alertmanager_alerts_invalid_total": newExportedFamily("strata_alertmanager_alerts_invalid_total",
		"Alerts refused by the tenant's Alertmanager API as invalid."),
	"alertmanager_alerts": newExportedFamily("strata_alertmanager_alerts",
		"Alerts held by the tenant's Alertmanager, by state.", "state"),
	"alertmanager_silences": newExportedFamily("strata_alertmanager_silences",
		"Silences of the tenant, by state.", "state"),
	"alertmanager_notifications_total": newExportedFamily("strata_alertmanager_notifications_total",
		"Notifications attempted, by integration.", "integration"),
	"alertmanager_notifications_failed_total": newExportedFamily("strata_alertmanager_notifications_failed_total",
		"Notifications that failed, by integration and reason.", "integration", "reason"),
	"alertmanager_dispatcher_aggregation_groups": newExportedFamily("strata_alertmanager_dispatcher_aggregation_groups",
		"Aggregation groups of the tenant's Alertmanager."),
	"alertmanager_dispatcher_aggregation_group_limit_reached_total": newExportedFamily("strata_alertmanager_dispatcher_aggregation_group_limit_reached_total",
		"Alerts not routed, and so not notified, because the tenant's Alertmanager had as many aggregation groups as its limit (alertmanager_max_dispatcher_aggregation_groups)."),
}

// tenantCollector exposes the exportedFamilies of every running tenant's registry with a tenant label,
// and how many tenants run here.
type tenantCollector struct {
	instances func() map[string]*instance
	tenants   *prometheus.Desc
	logger    *slog.Logger
}

func newTenantCollector(instances func() map[string]*instance, logger *slog.Logger) *tenantCollector {
	return &tenantCollector{
		instances: instances,
		tenants: prometheus.NewDesc("strata_alertmanager_tenants",
			"Tenants whose Alertmanager runs here, by the configuration it runs: the tenant's own or the fallback.", []string{"config"}, nil),
		logger: logger,
	}
}

func (c *tenantCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tenants
	for _, exp := range exportedFamilies {
		ch <- exp.desc
	}
}

func (c *tenantCollector) Collect(ch chan<- prometheus.Metric) {
	var own, fallback int
	for id, inst := range c.instances() {
		applied, _ := inst.appliedConfig()
		if applied.fallback {
			fallback++
		} else {
			own++
		}
		families, err := inst.reg.Gather()
		if err != nil {
			c.logger.Warn("gather tenant metrics", "tenant", id, "err", err)
		}
		integrations := inst.integrations.Load()
		for _, mf := range families {
			exp, ok := exportedFamilies[mf.GetName()]
			if !ok {
				continue
			}
			for _, m := range mf.GetMetric() {
				c.export(ch, id, exp, mf.GetType(), m, integrations)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.tenants, prometheus.GaugeValue, float64(own), "own")
	ch <- prometheus.MustNewConstMetric(c.tenants, prometheus.GaugeValue, float64(fallback), "fallback")
}

func (c *tenantCollector) export(ch chan<- prometheus.Metric, tenantID string, exp exportedFamily, typ dto.MetricType, m *dto.Metric, integrations *map[string]bool) {
	values := make([]string, 1+len(exp.labels))
	values[0] = tenantID
	for _, lp := range m.GetLabel() {
		if j := slices.Index(exp.labels, lp.GetName()); j >= 0 {
			values[1+j] = lp.GetValue()
		}
	}
	if exp.byIntegration && (integrations == nil || !(*integrations)[values[1]]) {
		return
	}
	var v float64
	var vt prometheus.ValueType
	switch typ {
	case dto.MetricType_COUNTER:
		v, vt = m.GetCounter().GetValue(), prometheus.CounterValue
	case dto.MetricType_GAUGE:
		v, vt = m.GetGauge().GetValue(), prometheus.GaugeValue
	default:
		return
	}
	metric, err := prometheus.NewConstMetric(exp.desc, vt, v, values...)
	if err != nil {
		c.logger.Warn("export tenant metric", "tenant", tenantID, "err", err)
		return
	}
	ch <- metric
}
