package ruler

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// realisticRules is a rule set as a team runs over its services: SLO recording rules, saturation and
// latency, and the alerts built on them.
const realisticRules = `groups:
- name: service
  rules:
  - record: job:http_requests:rate5m
    expr: sum by (job) (rate(http_requests_total[5m]))
  - record: job_code:http_requests:rate5m
    expr: sum by (job, code) (rate(http_requests_total[5m]))
  - record: job:http_errors:ratio_rate5m
    expr: sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m]))
  - record: job:http_request_duration_seconds:p99
    expr: histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))
  - record: instance:cpu_busy:ratio
    expr: 1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))
  - record: job:up:avg
    expr: avg by (job) (up)
  - alert: HighErrorRate
    expr: job:http_errors:ratio_rate5m > 0.05
    for: 5m
    labels: {severity: page}
    annotations: {summary: "{{ $labels.job }} fails {{ $value | humanizePercentage }} of requests"}
  - alert: SlowRequests
    expr: histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m]))) > 0.5
    for: 10m
    labels: {severity: ticket}
  - alert: InstanceDown
    expr: up == 0
    for: 5m
    labels: {severity: page}
    annotations: {summary: "{{ $labels.instance }} of {{ $labels.job }} is down"}
  - alert: CPUSaturated
    expr: 1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) > 0.9
    for: 15m
`

// openBenchTSDB holds 20 jobs × 10 instances of request counters (4 codes × 2 methods), latency
// histograms (8 buckets), CPU counters (4 modes) and up: 6,000 series, 15 minutes at 15s.
func openBenchTSDB(b *testing.B, now time.Time) *tsdb.DB {
	db, err := tsdb.Open(b.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, db.Close()) })
	rnd := rand.New(rand.NewPCG(1, 2))
	var series []labels.Labels
	for j := range 20 {
		job := fmt.Sprintf("service-%d", j)
		for i := range 10 {
			inst := fmt.Sprintf("10.0.%d.%d:8080", j, i)
			for _, code := range []string{"200", "404", "500", "503"} {
				for _, method := range []string{"GET", "POST"} {
					series = append(series, labels.FromStrings("__name__", "http_requests_total", "job", job, "instance", inst, "code", code, "method", method))
				}
			}
			for _, le := range []string{"0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"} {
				series = append(series, labels.FromStrings("__name__", "http_request_duration_seconds_bucket", "job", job, "instance", inst, "le", le))
			}
			for _, mode := range []string{"idle", "user", "system", "iowait"} {
				series = append(series, labels.FromStrings("__name__", "node_cpu_seconds_total", "job", job, "instance", inst, "mode", mode))
			}
			series = append(series, labels.FromStrings("__name__", "up", "job", job, "instance", inst))
		}
	}
	values := make([]float64, len(series))
	for ts := now.Add(-15 * time.Minute); !ts.After(now); ts = ts.Add(15 * time.Second) {
		app := db.Appender(context.Background())
		for i, l := range series {
			if l.Get("__name__") != "up" {
				values[i] += rnd.Float64() * 10
			} else {
				values[i] = float64(min(rnd.IntN(50), 1)) // one in fifty scrapes finds the instance down
			}
			_, err := app.Append(0, l, ts.UnixMilli(), values[i])
			require.NoError(b, err)
		}
		require.NoError(b, app.Commit())
	}
	return db
}

type discardingPusher struct{}

func (discardingPusher) Push(context.Context, *prompb.WriteRequest) error { return nil }

// BenchmarkRuleEvaluation evaluates the realistic rule set over 6,000 series as the ruler does
// (engine, tenant's queryable, results pushed), and reports rules evaluated per second.
func BenchmarkRuleEvaluation(b *testing.B) {
	now := time.Now()
	db := openBenchTSDB(b, now)
	file := filepath.Join(b.TempDir(), "rules.yaml")
	require.NoError(b, os.WriteFile(file, []byte(realisticRules), 0o644))
	ctx := tenant.NewContext(context.Background(), "bench")
	m := rules.NewManager(&rules.ManagerOptions{
		NameValidationScheme: nameScheme,
		ExternalURL:          &url.URL{},
		QueryFunc:            rules.EngineQueryFunc(testEngine(), db),
		NotifyFunc:           func(context.Context, string, ...*rules.Alert) {},
		Context:              ctx,
		Appendable:           PusherAppendable(discardingPusher{})("bench"),
		Queryable:            db,
		Logger:               slog.New(slog.DiscardHandler),
	})
	groups, errs := m.LoadGroups(time.Minute, labels.EmptyLabels(), "", nil, false, file)
	require.Empty(b, errs)
	require.Len(b, groups, 1)
	var g *rules.Group
	for _, group := range groups {
		g = group
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		g.Eval(ctx, now.Add(time.Duration(i%4)*time.Second))
	}
	b.ReportMetric(float64(b.N*len(g.Rules()))/time.Since(start).Seconds(), "rules/s")
	for _, r := range g.Rules() {
		require.Equal(b, rules.HealthGood, r.Health(), "%s: %v", r.Name(), r.LastError())
	}
}
