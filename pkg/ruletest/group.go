package ruletest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
)

// groupRun is the evaluation of one test group.
type groupRun struct {
	file     *testFile
	index    int
	tg       testGroup
	order    map[string]int // group_eval_order: rule group name → position
	opts     Options
	failures []*Failure
}

func (r *groupRun) fail(f Failure) {
	f.TestGroup, f.Index = r.tg.Name, r.index
	r.failures = append(r.failures, &f)
}

// run evaluates the rule files over the test group's input series, as promtool does: rule groups are
// evaluated at every evaluation_interval from the start to the last eval_time, alerts are compared at
// the last evaluation at or before each alert test's eval_time, and expressions are queried once all
// evaluations are done.
func (r *groupRun) run() {
	tg := &r.tg
	if tg.Interval == 0 {
		tg.Interval = r.file.EvaluationInterval
	}
	evalInterval := time.Duration(r.file.EvaluationInterval)

	loader, err := promqltest.NewLazyLoader(seriesLoadCommand(tg), promqltest.LazyLoaderOpts{
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		StartTime:            tg.StartTimestamp.Time,
	})
	if err != nil {
		r.fail(Failure{Kind: KindSetup, Err: fmt.Errorf("%s: %w", badSeries(tg.InputSeries), err)})
		return
	}
	defer func() {
		if err := loader.Close(); err != nil {
			r.fail(Failure{Kind: KindSetup, Err: fmt.Errorf("closing the test storage: %w", err)})
		}
	}()
	loader.SubqueryInterval = evalInterval

	manager := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:  rules.EngineQueryFunc(loader.QueryEngine(), loader.Storage()),
		Appendable: loader.Storage(),
		Context:    context.Background(),
		NotifyFunc: func(context.Context, string, ...*rules.Alert) {},
		Logger:     promslog.NewNopLogger(),
		Parser:     r.opts.Parser,
	})
	groupsByKey, errs := manager.LoadGroups(time.Duration(tg.Interval), tg.ExternalLabels, tg.ExternalURL, nil, r.opts.IgnoreUnknownFields, r.file.RuleFiles...)
	if len(errs) > 0 {
		for _, err := range errs {
			r.fail(Failure{Kind: KindSetup, Err: fmt.Errorf("loading rule_files: %w", err)})
		}
		return
	}
	groups := orderGroups(groupsByKey, r.order)

	for _, at := range tg.AlertRuleTests {
		if at.Alertname == "" {
			r.fail(Failure{Kind: KindSetup, EvalTime: time.Duration(at.EvalTime),
				Err: fmt.Errorf("an alert_rule_test at eval_time %s has no alertname", at.EvalTime)})
			return
		}
	}
	for _, g := range groups {
		for _, rule := range g.Rules() {
			if ar, ok := rule.(*rules.AlertingRule); ok {
				// Without this the rule would not write the ALERTS series, waiting for a restore of
				// its `for` state that never comes.
				ar.SetRestored(true)
			}
		}
	}

	if !r.evaluate(loader, groups, evalInterval) {
		return
	}
	for _, et := range tg.PromqlExprTests {
		r.checkExpr(loader, et)
	}
}

// evaluate runs the rule groups at each evaluation time and checks the alert tests on the way. It
// returns false when a rule failed to evaluate: promtool then stops the test group there.
func (r *groupRun) evaluate(loader *promqltest.LazyLoader, groups []*rules.Group, evalInterval time.Duration) bool {
	mint := r.start()
	maxt := mint.Add(r.tg.maxEvalTime())

	alertTests := slices.Clone(r.tg.AlertRuleTests)
	slices.SortStableFunc(alertTests, func(a, b alertTest) int { return cmp.Compare(a.EvalTime, b.EvalTime) })
	next := 0 // the first alert test not checked yet

	for ts := mint; !ts.After(maxt); ts = ts.Add(evalInterval) {
		var evalFailures []Failure
		loader.WithSamplesTill(ts, func(err error) {
			if err != nil {
				r.fail(Failure{Kind: KindSetup, EvalTime: ts.Sub(mint), Err: fmt.Errorf("appending input series: %w", err)})
				return
			}
			for _, g := range groups {
				g.Eval(loader.Context(), ts)
				for _, rule := range g.Rules() {
					if err := rule.LastError(); err != nil {
						evalFailures = append(evalFailures, Failure{Kind: KindRuleEval, Name: rule.Name(), EvalTime: ts.Sub(mint), Err: err})
					}
				}
			}
		})
		if len(evalFailures) > 0 {
			for _, f := range evalFailures {
				r.fail(f)
			}
			return false
		}
		// An alert test is checked against the last evaluation at or before its eval_time.
		for next < len(alertTests) && time.Duration(alertTests[next].EvalTime) < ts.Add(evalInterval).Sub(mint) {
			r.checkAlerts(groups, alertTests[next])
			next++
		}
	}
	return true
}

func (r *groupRun) checkAlerts(groups []*rules.Group, at alertTest) {
	// Rules of several groups may share the alertname: their alerts are all compared.
	var got []Alert
	for _, g := range groups {
		for _, rule := range g.Rules() {
			ar, ok := rule.(*rules.AlertingRule)
			if !ok || ar.Name() != at.Alertname {
				continue
			}
			for _, a := range ar.ActiveAlerts() {
				if a.State == rules.StateFiring {
					got = append(got, Alert{Labels: a.Labels.Copy(), Annotations: a.Annotations.Copy()})
				}
			}
		}
	}
	exp := make([]Alert, 0, len(at.ExpAlerts))
	for _, ea := range at.ExpAlerts {
		lbls := make(map[string]string, len(ea.ExpLabels)+1)
		for k, v := range ea.ExpLabels {
			lbls[k] = v
		}
		// The rule adds the alertname label; tests leave it out.
		lbls[labels.AlertName] = at.Alertname
		exp = append(exp, Alert{Labels: labels.FromMap(lbls), Annotations: labels.FromMap(ea.ExpAnnotations)})
	}
	if d := diffAlerts(exp, got); d != nil {
		r.fail(Failure{Kind: KindAlert, Name: at.Alertname, EvalTime: time.Duration(at.EvalTime), Alerts: d})
	}
}

func (r *groupRun) checkExpr(loader *promqltest.LazyLoader, et exprTest) {
	fail := func(err error) {
		r.fail(Failure{Kind: KindExpr, Name: et.Expr, EvalTime: time.Duration(et.EvalTime), Err: err})
	}
	exp := make([]Sample, 0, len(et.ExpSamples))
	for i, es := range et.ExpSamples {
		s, err := parseExpectedSample(r.opts.Parser, es)
		if err != nil {
			fail(fmt.Errorf("exp_samples[%d]: %w", i, err))
			return
		}
		exp = append(exp, s)
	}
	got, err := instantQuery(loader, et.Expr, r.start().Add(time.Duration(et.EvalTime)))
	if err != nil {
		fail(err)
		return
	}
	if d := diffSamples(exp, got, r.file.FuzzyCompare); d != nil {
		r.fail(Failure{Kind: KindExpr, Name: et.Expr, EvalTime: time.Duration(et.EvalTime), Samples: d})
	}
}

func parseExpectedSample(p parser.Parser, es expectedSample) (Sample, error) {
	lbls, err := p.ParseMetric(es.Labels)
	if err != nil {
		return Sample{}, fmt.Errorf("labels %q: %w", es.Labels, err)
	}
	s := Sample{Labels: lbls, Value: es.Value}
	if es.Histogram == "" {
		return s, nil
	}
	_, values, err := p.ParseSeriesDesc("{} " + es.Histogram)
	switch {
	case err != nil:
		return s, fmt.Errorf("histogram %q: %w", es.Histogram, err)
	case len(values) != 1 || values[0].Histogram == nil:
		return s, fmt.Errorf("histogram %q is not one native histogram ({{...}})", es.Histogram)
	}
	s.Histogram = histogramNotation(values[0].Histogram)
	return s, nil
}

// histogramNotation is how histograms are compared: their load notation, as promtool compares them.
func histogramNotation(h *histogram.FloatHistogram) string {
	return promqltest.HistogramTestExpression(h)
}

func instantQuery(loader *promqltest.LazyLoader, expr string, ts time.Time) ([]Sample, error) {
	ctx := loader.Context()
	q, err := loader.QueryEngine().NewInstantQuery(ctx, loader.Queryable(), nil, expr, ts)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		out := make([]Sample, 0, len(v))
		for _, s := range v {
			out = append(out, Sample{Labels: s.Metric.Copy(), Value: s.F, Histogram: histogramNotation(s.H)})
		}
		return out, nil
	case promql.Scalar:
		return []Sample{{Labels: labels.EmptyLabels(), Value: v.V}}, nil
	default:
		return nil, errors.New("the expression's result is a " + string(res.Value.Type()) + ", not a vector or scalar")
	}
}

// seriesParser parses input series as the load command does.
var seriesParser = parser.NewParser(promqltest.TestParserOpts)

// badSeries names the first input series that does not parse on its own, for an error of the load
// command: its line and column numbers are those of the command, not of the test file.
func badSeries(series []inputSeries) string {
	for i, s := range series {
		if _, _, err := seriesParser.ParseSeriesDesc(s.Series + " " + s.Values); err != nil {
			return fmt.Sprintf("input_series[%d] (series %q, values %q)", i, s.Series, s.Values)
		}
	}
	return "input_series"
}

// start is when the test group's time begins: its start_timestamp, or the Unix epoch.
func (r *groupRun) start() time.Time {
	if r.tg.StartTimestamp.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return r.tg.StartTimestamp.Time
}

// maxEvalTime is the last eval_time of the test group's alert and expression tests.
func (tg *testGroup) maxEvalTime() time.Duration {
	var maxd model.Duration
	for _, at := range tg.AlertRuleTests {
		maxd = max(maxd, at.EvalTime)
	}
	for _, et := range tg.PromqlExprTests {
		maxd = max(maxd, et.EvalTime)
	}
	return time.Duration(maxd)
}

// seriesLoadCommand writes the input series as a promqltest load command, which parses the expanding
// notation ("1+2x3", "_", "stale", native histograms).
func seriesLoadCommand(tg *testGroup) string {
	var b strings.Builder
	fmt.Fprintf(&b, "load %s\n", tg.Interval) // model.Duration prints no zero units ("1h", not "1h0m")
	for _, s := range tg.InputSeries {
		fmt.Fprintf(&b, "  %s %s\n", s.Series, s.Values)
	}
	return b.String()
}

// orderGroups sorts the rule groups by their position in group_eval_order. Groups it does not name rank
// with its first (position 0), as in promtool; ties go by file and name, where promtool's order is
// random.
func orderGroups(byKey map[string]*rules.Group, order map[string]int) []*rules.Group {
	groups := make([]*rules.Group, 0, len(byKey))
	for _, g := range byKey {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b *rules.Group) int {
		return cmp.Or(cmp.Compare(order[a.Name()], order[b.Name()]), cmp.Compare(a.File(), b.File()), cmp.Compare(a.Name(), b.Name()))
	})
	return groups
}
