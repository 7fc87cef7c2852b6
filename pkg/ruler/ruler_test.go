package ruler

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

func TestRuler_RecordingRuleResultsArePushedUnderTheirTenantOnly(t *testing.T) {
	now := time.Now()
	dbA := openTSDB(t,
		testSample{labels.FromStrings("__name__", "requests", "job", "api", "instance", "1"), now.Add(-10 * time.Second), 3},
		testSample{labels.FromStrings("__name__", "requests", "job", "api", "instance", "2"), now.Add(-10 * time.Second), 4},
	)
	dbB := openTSDB(t,
		testSample{labels.FromStrings("__name__", "requests", "job", "api", "instance", "9"), now.Add(-10 * time.Second), 100},
	)
	r := newTestRuler(t, testConfig(t), nil, map[string]storage.Queryable{"tenant-a": dbA, "tenant-b": dbB}, Dependencies{})
	g := rulefmt.RuleGroup{
		Name:   "sums",
		Labels: map[string]string{"team": "core"},
		Rules: []rulefmt.Rule{{
			Record: "job:requests:sum",
			Expr:   "sum by (job) (requests)",
			Labels: map[string]string{"source": "rule"},
		}},
	}
	r.setGroup(t, "tenant-a", "ns", g)
	r.setGroup(t, "tenant-b", "ns", g)
	r.sync(t)

	byTenant := func() map[string]float64 {
		out := map[string]float64{}
		for _, s := range r.pusher.samplesOf("job:requests:sum") {
			require.Equal(t, map[string]string{"__name__": "job:requests:sum", "job": "api", "source": "rule", "team": "core"}, labelsOf(s.series))
			out[s.tenant] = s.series.Samples[0].Value
		}
		return out
	}
	require.Eventually(t, func() bool { return len(byTenant()) == 2 }, waitFor, 10*time.Millisecond)
	// Each tenant's rule saw only its own series: 3+4 for a, 100 for b.
	require.Equal(t, map[string]float64{"tenant-a": 7, "tenant-b": 100}, byTenant())
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(r.metrics.evaluations.WithLabelValues("tenant-a")) > 0
	}, waitFor, 10*time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(r.metrics.groupsLoaded.WithLabelValues("tenant-a")))
}

func TestRuler_AlertGoesPendingThenFiringAndIsSentWithItsTenant(t *testing.T) {
	db := openTSDB(t, testSample{labels.FromStrings("__name__", "queue_length", "queue", "q1"), time.Now().Add(-5 * time.Second), 50})
	notifier := &capturingNotifier{}
	r := newTestRuler(t, testConfig(t), nil, map[string]storage.Queryable{"tenant-a": db}, Dependencies{Notify: notifier.notify})
	r.setGroup(t, "tenant-a", "alerts", rulefmt.RuleGroup{Name: "queues", Rules: []rulefmt.Rule{{
		Alert:  "QueueTooLong",
		Expr:   "queue_length > 10",
		For:    model.Duration(time.Second),
		Labels: map[string]string{"severity": "page"},
	}}})
	r.sync(t)

	stateIs := func(want rules.AlertState) func() bool {
		return func() bool {
			alerts := r.alerts("tenant-a", "QueueTooLong")
			return len(alerts) == 1 && alerts[0].State == want
		}
	}
	require.Eventually(t, stateIs(rules.StatePending), waitFor, 5*time.Millisecond)
	require.Empty(t, notifier.received(), "pending alerts are not sent")
	require.Eventually(t, stateIs(rules.StateFiring), waitFor, 5*time.Millisecond)

	require.Eventually(t, func() bool { return len(notifier.received()) > 0 }, waitFor, 10*time.Millisecond)
	sent := notifier.received()[0]
	require.Equal(t, "tenant-a", sent.tenant)
	require.Len(t, sent.alerts, 1)
	require.Equal(t, rules.StateFiring, sent.alerts[0].State)
	require.Equal(t, labels.FromStrings("alertname", "QueueTooLong", "queue", "q1", "severity", "page"), sent.alerts[0].Labels)

	// ALERTS and ALERTS_FOR_STATE go to the tenant too.
	require.Eventually(t, func() bool { return len(r.pusher.samplesOf("ALERTS_FOR_STATE")) > 0 }, waitFor, 10*time.Millisecond)
	for _, s := range append(r.pusher.samplesOf("ALERTS"), r.pusher.samplesOf("ALERTS_FOR_STATE")...) {
		require.Equal(t, "tenant-a", s.tenant)
	}
}

func TestRuler_SyncStartsAddedAndStopsRemovedGroups(t *testing.T) {
	db := openTSDB(t, testSample{labels.FromStrings("__name__", "up", "job", "a"), time.Now().Add(-5 * time.Second), 1})
	r := newTestRuler(t, testConfig(t), nil, map[string]storage.Queryable{"tenant-a": db}, Dependencies{})
	ctx := context.Background()
	r.setGroup(t, "tenant-a", "ns1", recordingGroup("old", 0, recordRule("old_up", "up")))
	r.sync(t)
	require.Equal(t, []string{"ns1/old"}, r.groupNames("tenant-a"))
	require.Eventually(t, func() bool { return len(r.pusher.samplesOf("old_up")) > 0 }, waitFor, 10*time.Millisecond)

	require.NoError(t, r.store.DeleteRuleGroup(ctx, "tenant-a", "ns1", "old"))
	r.setGroup(t, "tenant-a", "ns/2", recordingGroup("new", 0, recordRule("new_up", "up")))
	r.sync(t)
	require.Equal(t, []string{"ns/2/new"}, r.groupNames("tenant-a"))
	require.Eventually(t, func() bool { return len(r.pusher.samplesOf("new_up")) > 0 }, waitFor, 10*time.Millisecond)
	// The removed group's series are marked stale once, and it is evaluated no more while the new one
	// goes on.
	require.Eventually(t, func() bool { return r.pusher.staleMarkersOf("old_up") > 0 }, waitFor, 10*time.Millisecond)
	oldEvaluations, newEvaluations := len(r.pusher.samplesOf("old_up")), len(r.pusher.samplesOf("new_up"))
	require.Eventually(t, func() bool { return len(r.pusher.samplesOf("new_up")) >= newEvaluations+3 }, waitFor, 10*time.Millisecond)
	require.Equal(t, oldEvaluations, len(r.pusher.samplesOf("old_up")))

	// Without groups, the tenant's manager, files and metrics go.
	require.NoError(t, r.store.DeleteNamespace(ctx, "tenant-a", "ns/2"))
	r.sync(t)
	require.Empty(t, r.groupNames("tenant-a"))
	require.NoDirExists(t, filepath.Join(r.cfg.RulePath, "tenant-a"))
	require.Zero(t, testutil.CollectAndCount(r.metrics.groupsLoaded))
	require.Zero(t, testutil.CollectAndCount(r.groupMetrics.GroupInterval), "Prometheus' group metrics of the tenant are dropped")
}

func TestRuler_SyncHonoursGroupIntervalOwnershipAndSkipsInvalidGroups(t *testing.T) {
	db := openTSDB(t)
	owns := func(_, _, group string) bool { return group != "elsewhere" }
	r := newTestRuler(t, testConfig(t), nil, map[string]storage.Queryable{"tenant-a": db}, Dependencies{Owns: owns})
	r.setGroup(t, "tenant-a", "ns", recordingGroup("slow", 7*time.Minute, recordRule("x", "vector(1)")))
	r.setGroup(t, "tenant-a", "ns", recordingGroup("default", 0, recordRule("y", "vector(1)")))
	r.setGroup(t, "tenant-a", "ns", recordingGroup("elsewhere", 0, recordRule("z", "vector(1)")))
	// The bucket store keeps what it is given; the config API would have refused this group.
	r.setGroup(t, "tenant-a", "ns", recordingGroup("broken", 0, recordRule("w", "sum(")))
	r.sync(t)

	intervals := map[string]time.Duration{}
	for _, g := range r.ruleGroups("tenant-a") {
		intervals[g.Name()] = g.Interval()
	}
	require.Equal(t, map[string]time.Duration{"slow": 7 * time.Minute, "default": testInterval}, intervals)
}

func TestRuler_LeftoverRuleFilesAreRemoved(t *testing.T) {
	cfg := testConfig(t)
	leftover := filepath.Join(cfg.RulePath, "gone-tenant")
	require.NoError(t, os.MkdirAll(leftover, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(leftover, "x"), []byte("groups: []"), 0o644))
	newTestRuler(t, cfg, nil, nil, Dependencies{}) // Start syncs once
	require.NoDirExists(t, leftover)
}

func TestRuler_StartPollsTheStore(t *testing.T) {
	cfg := testConfig(t)
	cfg.PollInterval = 50 * time.Millisecond
	db := openTSDB(t)
	r := newTestRuler(t, cfg, nil, map[string]storage.Queryable{"tenant-a": db}, Dependencies{})
	r.setGroup(t, "tenant-a", "ns", recordingGroup("g", 0, recordRule("one", "vector(1)")))
	require.Eventually(t, func() bool { return len(r.pusher.samplesOf("one")) > 0 }, waitFor, 10*time.Millisecond)
}

func TestRuler_RestartRestoresPendingAlertsActiveAt(t *testing.T) {
	now := time.Now()
	activeAt := now.Add(-10 * time.Minute)
	series := labels.FromStrings("__name__", "disk_full", "disk", "sda")
	forState := labels.FromStrings("__name__", "ALERTS_FOR_STATE", "alertname", "DiskFull", "disk", "sda", "severity", "page")
	// What a ruler wrote until it went down 5s ago: the alert pending since activeAt.
	var samples []testSample
	for ts := activeAt; ts.Before(now.Add(-5 * time.Second)); ts = ts.Add(30 * time.Second) {
		samples = append(samples, testSample{forState, ts, float64(activeAt.Unix())})
	}
	samples = append(samples,
		testSample{forState, now.Add(-5 * time.Second), float64(activeAt.Unix())},
		testSample{series, now.Add(-5 * time.Second), 1},
	)
	db := openTSDB(t, samples...)

	cfg := testConfig(t)
	cfg.ForGracePeriod = time.Second // 'for' must be at least this for its state to be restored
	store := newTestRuler(t, cfg, nil, map[string]storage.Queryable{"tenant-a": db}, Dependencies{}).store
	// A new ruler over the same store, as after a restart.
	r := newTestRuler(t, cfg, store, map[string]storage.Queryable{"tenant-a": db}, Dependencies{})
	r.setGroup(t, "tenant-a", "ns", rulefmt.RuleGroup{Name: "disks", Rules: []rulefmt.Rule{{
		Alert:  "DiskFull",
		Expr:   "disk_full > 0",
		For:    model.Duration(time.Hour),
		Labels: map[string]string{"severity": "page"},
	}}})
	r.sync(t)

	require.Eventually(t, func() bool {
		alerts := r.alerts("tenant-a", "DiskFull")
		// Restored, the alert has been pending for 10 minutes (plus the outage), not since now.
		return len(alerts) == 1 && alerts[0].ActiveAt.Before(now.Add(-9*time.Minute))
	}, waitFor, 10*time.Millisecond)
	alert := r.alerts("tenant-a", "DiskFull")[0]
	require.Equal(t, rules.StatePending, alert.State)
	require.WithinDuration(t, activeAt, alert.ActiveAt, 30*time.Second)
}

func TestRuler_SlowQueryTimesOutWithoutHoldingBackOtherTenants(t *testing.T) {
	cfg := testConfig(t)
	db := openTSDB(t, testSample{labels.FromStrings("__name__", "up", "job", "a"), time.Now().Add(-5 * time.Second), 1})
	// The slow tenant's limit is short; the fast one's would not matter.
	timeouts := func(tenantID string) time.Duration {
		return map[string]time.Duration{"slow": 300 * time.Millisecond}[tenantID]
	}
	r := newTestRuler(t, cfg, nil, map[string]storage.Queryable{"slow": blockingQueryable{}, "fast": db}, Dependencies{EvaluationTimeout: timeouts})
	r.setGroup(t, "slow", "ns", recordingGroup("heavy", 0, recordRule("heavy", "sum(up)")))
	r.setGroup(t, "fast", "ns", recordingGroup("light", 0, recordRule("light", "sum(up)")))
	r.sync(t)

	require.Eventually(t, func() bool {
		return testutil.ToFloat64(r.metrics.evaluationFailures.WithLabelValues("slow")) >= 1
	}, waitFor, 10*time.Millisecond)
	// While the slow tenant's query waits for its timeout, the fast tenant's rule is evaluated at
	// every interval.
	start := len(r.pusher.samplesOf("light"))
	require.Eventually(t, func() bool { return len(r.pusher.samplesOf("light")) >= start+3 }, waitFor, 10*time.Millisecond)
	require.Zero(t, testutil.ToFloat64(r.metrics.evaluationFailures.WithLabelValues("fast")))
	require.Empty(t, r.pusher.samplesOf("heavy"))

	rule := r.ruleGroups("slow")[0].Rules()[0]
	require.Equal(t, rules.HealthBad, rule.Health())
	var timeout promql.ErrQueryTimeout
	require.ErrorAs(t, rule.LastError(), &timeout)
	// Evaluations that take 300ms at a 100ms interval miss iterations.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(r.metrics.missedIterations.WithLabelValues("slow")) >= 1
	}, waitFor, 10*time.Millisecond)
}

func TestNew_RejectsMissingDependencies(t *testing.T) {
	cfg := testConfig(t)
	_, err := New(cfg, nil, Dependencies{}, nil, nil)
	require.ErrorContains(t, err, "no rule store")
	cfg.RulePath = ""
	_, err = New(cfg, nil, Dependencies{}, nil, nil)
	require.ErrorContains(t, err, "-ruler.rule-path")
}
