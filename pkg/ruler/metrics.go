package ruler

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/rules"
)

// metrics are the ruler's own, by tenant. Prometheus' rule metrics are by group (file and name), a
// label set per group of every tenant; these keep one per tenant (a few thousand tenants at most on
// one ruler, while the groups can be tens of thousands). Per-group detail is in /api/v1/rules.
type metrics struct {
	evaluations        *prometheus.CounterVec
	evaluationFailures *prometheus.CounterVec
	missedIterations   *prometheus.CounterVec
	groupDuration      *prometheus.HistogramVec
	groupsLoaded       *prometheus.GaugeVec
	syncs              *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		evaluations: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_ruler_evaluations_total",
			Help: "Rule evaluations, each rule of each group iteration counting once.",
		}, []string{"tenant"}),
		evaluationFailures: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_ruler_evaluation_failures_total",
			Help: "Rule evaluations that failed: the query failed or timed out, or its results could not be written.",
		}, []string{"tenant"}),
		missedIterations: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_ruler_group_iterations_missed_total",
			Help: "Group evaluations skipped because the previous evaluation of the group took longer than its interval.",
		}, []string{"tenant"}),
		groupDuration: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "strata_ruler_group_evaluation_duration_seconds",
			Help:                        "Time to evaluate every rule of a group once.",
			Buckets:                     []float64{.01, .1, 1, 10, 60},
			NativeHistogramBucketFactor: 1.1,
		}, []string{"tenant"}),
		groupsLoaded: promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_ruler_rule_groups_loaded",
			Help: "Rule groups being evaluated.",
		}, []string{"tenant"}),
		syncs: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_ruler_syncs_total",
			Help: "Reads of the rule store that started, changed and stopped rule groups, by result.",
		}, []string{"result"}),
	}
}

// deleteTenant drops the series of a tenant that no longer has groups here.
func (m *metrics) deleteTenant(tenantID string) {
	m.evaluations.DeleteLabelValues(tenantID)
	m.evaluationFailures.DeleteLabelValues(tenantID)
	m.missedIterations.DeleteLabelValues(tenantID)
	m.groupDuration.DeleteLabelValues(tenantID)
	m.groupsLoaded.DeleteLabelValues(tenantID)
}

// evalIteration returns the function each of the tenant's groups runs per interval: Prometheus' own,
// measured. Missed iterations are found as the group loop finds them, from the gap between the
// evaluation timestamps.
func (m *metrics) evalIteration(tenantID string) rules.GroupEvalIterationFunc {
	evaluations := m.evaluations.WithLabelValues(tenantID)
	failures := m.evaluationFailures.WithLabelValues(tenantID)
	missed := m.missedIterations.WithLabelValues(tenantID)
	duration := m.groupDuration.WithLabelValues(tenantID)
	return func(ctx context.Context, g *rules.Group, evalTimestamp time.Time) {
		if prev := g.GetLastEvalTimestamp(); !prev.IsZero() && g.Interval() > 0 {
			if n := evalTimestamp.Sub(prev)/g.Interval() - 1; n > 0 {
				missed.Add(float64(n))
			}
		}
		start := time.Now()
		rules.DefaultEvalIterationFunc(ctx, g, evalTimestamp)
		duration.Observe(time.Since(start).Seconds())
		// A group stopped mid-iteration leaves its remaining rules unevaluated: count only the rules
		// this iteration evaluated.
		for _, r := range g.Rules() {
			if r.GetEvaluationTimestamp().Before(start) {
				continue
			}
			evaluations.Inc()
			if r.Health() == rules.HealthBad {
				failures.Inc()
			}
		}
	}
}
