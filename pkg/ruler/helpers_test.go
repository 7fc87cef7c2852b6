package ruler

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"

	"github.com/strata-metrics/strata/pkg/ruler/rulestore"
	"github.com/strata-metrics/strata/pkg/tenant"
)

// waitFor is how long a test waits for evaluations; they come every testInterval.
const (
	waitFor      = 10 * time.Second
	testInterval = 100 * time.Millisecond
)

// pushedSeries is one series a capturingPusher received, with the tenant it was pushed under.
type pushedSeries struct {
	tenant string
	series prompb.TimeSeries
}

// capturingPusher records every pushed series.
type capturingPusher struct {
	mtx    sync.Mutex
	series []pushedSeries
	pushes int
}

func (p *capturingPusher) Push(ctx context.Context, req *prompb.WriteRequest) error {
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return err
	}
	p.mtx.Lock()
	defer p.mtx.Unlock()
	p.pushes++
	for _, ts := range req.Timeseries {
		p.series = append(p.series, pushedSeries{tenant: id, series: ts})
	}
	return nil
}

// samplesOf returns the non-stale samples pushed for the series named name, under any tenant.
func (p *capturingPusher) samplesOf(name string) []pushedSeries {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	var out []pushedSeries
	for _, s := range p.series {
		if metricName(s.series) == name && len(s.series.Samples) == 1 && !value.IsStaleNaN(s.series.Samples[0].Value) {
			out = append(out, s)
		}
	}
	return out
}

// staleMarkersOf counts the staleness markers pushed for the series named name.
func (p *capturingPusher) staleMarkersOf(name string) int {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	n := 0
	for _, s := range p.series {
		if metricName(s.series) == name && len(s.series.Samples) == 1 && value.IsStaleNaN(s.series.Samples[0].Value) {
			n++
		}
	}
	return n
}

func metricName(ts prompb.TimeSeries) string {
	for _, l := range ts.Labels {
		if l.Name == model.MetricNameLabel {
			return l.Value
		}
	}
	return ""
}

func labelsOf(ts prompb.TimeSeries) map[string]string {
	m := make(map[string]string, len(ts.Labels))
	for _, l := range ts.Labels {
		m[l.Name] = l.Value
	}
	return m
}

// openTSDB returns a TSDB in a temporary directory holding the given float samples.
func openTSDB(t *testing.T, samples ...testSample) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	app := db.Appender(context.Background())
	for _, s := range samples {
		_, err := app.Append(0, s.labels, s.t.UnixMilli(), s.v)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	return db
}

type testSample struct {
	labels labels.Labels
	t      time.Time
	v      float64
}

// tenantCheckingQueryable fails the test when a query's context does not carry the tenant.
type tenantCheckingQueryable struct {
	storage.Queryable
	t      *testing.T
	tenant string
}

func (q tenantCheckingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	inner, err := q.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return tenantCheckingQuerier{Querier: inner, t: q.t, tenant: q.tenant}, nil
}

type tenantCheckingQuerier struct {
	storage.Querier
	t      *testing.T
	tenant string
}

func (q tenantCheckingQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	if id, err := tenant.FromContext(ctx); err != nil || id != q.tenant {
		q.t.Errorf("query of tenant %s ran with tenant %q in its context (err %v)", q.tenant, id, err)
	}
	return q.Querier.Select(ctx, sortSeries, hints, ms...)
}

// blockingQueryable stands for a query too heavy to finish: its Select waits for the context's end.
type blockingQueryable struct{}

func (blockingQueryable) Querier(int64, int64) (storage.Querier, error) {
	return blockingQuerier{}, nil
}

type blockingQuerier struct{ storage.Querier }

func (blockingQuerier) Select(ctx context.Context, _ bool, _ *storage.SelectHints, _ ...*labels.Matcher) storage.SeriesSet {
	<-ctx.Done()
	return storage.ErrSeriesSet(ctx.Err())
}

func (blockingQuerier) Close() error { return nil }

// notification is one call of the notify function.
type notification struct {
	tenant string
	alerts []rules.Alert
}

type capturingNotifier struct {
	mtx   sync.Mutex
	calls []notification
}

func (n *capturingNotifier) notify(_ context.Context, tenantID, _ string, alerts ...*rules.Alert) {
	n.mtx.Lock()
	defer n.mtx.Unlock()
	c := notification{tenant: tenantID}
	for _, a := range alerts {
		c.alerts = append(c.alerts, *a)
	}
	n.calls = append(n.calls, c)
}

func (n *capturingNotifier) received() []notification {
	n.mtx.Lock()
	defer n.mtx.Unlock()
	return append([]notification(nil), n.calls...)
}

type testRuler struct {
	*Ruler
	store  rulestore.Store
	pusher *capturingPusher
	reg    *prometheus.Registry
}

func testConfig(t *testing.T) Config {
	return Config{
		RulePath:                  t.TempDir(),
		PollInterval:              time.Hour, // tests sync explicitly
		EvaluationInterval:        testInterval,
		ForOutageTolerance:        time.Hour,
		ForGracePeriod:            10 * time.Minute,
		ResendDelay:               time.Minute,
		RingCheckPeriod:           time.Hour,
		NotificationQueueCapacity: 100,
		NotificationTimeout:       5 * time.Second,
	}
}

func testEngine() *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: 10 * time.Second, LookbackDelta: 5 * time.Minute})
}

// newTestRuler returns a started ruler whose tenants query the given queryables (each checked to
// carry its tenant) and whose results go to a capturing pusher.
func newTestRuler(t *testing.T, cfg Config, store rulestore.Store, queryables map[string]storage.Queryable, deps Dependencies) *testRuler {
	t.Helper()
	if store == nil {
		store = rulestore.NewBucketStore(objstore.NewInMemBucket(), "rules", slog.New(slog.DiscardHandler))
	}
	pusher := &capturingPusher{}
	deps.Engine = testEngine()
	deps.Queryable = func(id string) storage.Queryable {
		q, ok := queryables[id]
		if !ok {
			t.Errorf("no queryable for tenant %s", id)
			q = storage.QueryableFunc(func(int64, int64) (storage.Querier, error) { return storage.NoopQuerier(), nil })
		}
		if _, blocking := q.(blockingQueryable); blocking {
			return q
		}
		return tenantCheckingQueryable{Queryable: q, t: t, tenant: id}
	}
	deps.Appendable = PusherAppendable(pusher)
	if deps.EvaluationTimeout == nil {
		deps.EvaluationTimeout = func(string) time.Duration { return 5 * time.Second }
	}
	reg := prometheus.NewPedanticRegistry()
	r, err := New(cfg, store, deps, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(t, r.Stop(ctx))
	})
	return &testRuler{Ruler: r, store: store, pusher: pusher, reg: reg}
}

func (r *testRuler) setGroup(t *testing.T, tenantID, namespace string, g rulefmt.RuleGroup) {
	t.Helper()
	require.NoError(t, r.store.SetRuleGroup(context.Background(), tenantID, namespace, g))
}

func (r *testRuler) sync(t *testing.T) {
	t.Helper()
	require.NoError(t, r.SyncRules(context.Background()))
}

// groupNames returns the names of the tenant's groups being evaluated, as "namespace/group".
func (r *testRuler) groupNames(tenantID string) []string {
	var names []string
	for _, g := range sortedGroups(r.ruleGroups(tenantID)) {
		names = append(names, namespaceOfFile(g.File())+"/"+g.Name())
	}
	return names
}

// alerts returns the tenant's active alerts of the alerting rule name.
func (r *testRuler) alerts(tenantID, name string) []*rules.Alert {
	var out []*rules.Alert
	for _, g := range r.ruleGroups(tenantID) {
		for _, ar := range g.AlertingRules() {
			if ar.Name() == name {
				out = append(out, ar.ActiveAlerts()...)
			}
		}
	}
	return out
}

func recordingGroup(name string, interval time.Duration, records ...rulefmt.Rule) rulefmt.RuleGroup {
	return rulefmt.RuleGroup{Name: name, Interval: model.Duration(interval), Rules: records}
}

func recordRule(record, expr string) rulefmt.Rule {
	return rulefmt.Rule{Record: record, Expr: expr}
}
