package querysharding

import (
	"slices"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	shards "github.com/strata-metrics/strata/pkg/querysharding"
)

// Reserved label names of the frontend's own evaluation. They never reach a querier; a query that
// mentions either is not sharded, so that a user's label cannot be confused with them.
const (
	// subtreeLabel names, in a selector of the outer query, the subtree whose merged shard answers the
	// selector stands for.
	subtreeLabel = "__strata_sharded_subtree__"
	// partLabel tells apart the partial aggregates that the shards return for the same group, so that the
	// outer query sees them as distinct series and aggregates them again.
	partLabel = "__strata_shard__"
	// reservedPrefix is what both names start with.
	reservedPrefix = "__strata_"
)

// plan is how a query is answered from shards: every shard evaluates each subtree over its own series,
// and the frontend evaluates outer over the subtrees' merged answers.
type plan struct {
	outer    parser.Expr
	subtrees []*subtree
}

// subtree is a part of the query whose value, per group, can be computed from per-shard values: an
// aggregation over an expression that maps each series on its own.
type subtree struct {
	expr parser.Expr
	// selectors are expr's selectors, which get the shard matcher.
	selectors []*parser.VectorSelector
	// keepLabels is set when the shards' series are series of the answer (topk, bottomk: each series lives
	// in one shard) rather than partial aggregates of the same groups, which partLabel tells apart.
	keepLabels bool
}

// query returns the subtree's PromQL for shard s.
func (t *subtree) query(s shards.Shard) string {
	m := s.Matcher()
	for _, vs := range t.selectors {
		// The shard matcher was appended last by newSubtree; only its value changes between shards.
		vs.LabelMatchers[len(vs.LabelMatchers)-1] = m
	}
	return t.expr.String()
}

// newSubtree makes a subtree of expr, adding a placeholder shard matcher to each of its selectors (the
// query has none of its own: RoundTrip passes such a query through). Subtrees made of the same expression
// (avg's sum and count) share the selectors, and so the matcher.
func newSubtree(expr parser.Expr, keepLabels bool) *subtree {
	t := &subtree{expr: expr, keepLabels: keepLabels}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			vs.LabelMatchers = append(vs.LabelMatchers, shards.Shard{Index: 1, Count: 1}.Matcher())
			t.selectors = append(t.selectors, vs)
		}
		return nil
	})
	return t
}

// planQuery finds the shardable subtrees of expr, which it rewrites in place into the outer query. It
// returns nil when nothing can be sharded, or when what remains outside the subtrees reads data itself
// (a selector, a subquery): the frontend has only the subtrees' answers to evaluate it over.
func planQuery(expr parser.Expr) *plan {
	p := &plan{}
	p.outer = p.rewrite(expr)
	if len(p.subtrees) == 0 {
		return nil
	}
	readsData := false
	parser.Inspect(p.outer, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			readsData = readsData || !isSubtreeSelector(n)
		case *parser.MatrixSelector, *parser.SubqueryExpr:
			readsData = true
		case *parser.Call:
			// info() reads the target_info series that its argument's series join.
			readsData = readsData || n.Func.Name == "info"
		}
		return nil
	})
	if readsData {
		return nil
	}
	return p
}

// rewrite replaces the shardable subtrees of e, outermost first, by their outer evaluation.
func (p *plan) rewrite(e parser.Expr) parser.Expr {
	switch n := e.(type) {
	case *parser.AggregateExpr:
		if outer := p.shardAggregation(n); outer != nil {
			return outer
		}
		n.Expr = p.rewrite(n.Expr)
		if n.Param != nil {
			n.Param = p.rewrite(n.Param)
		}
	case *parser.BinaryExpr:
		n.LHS = p.rewrite(n.LHS)
		n.RHS = p.rewrite(n.RHS)
	case *parser.Call:
		for i := range n.Args {
			n.Args[i] = p.rewrite(n.Args[i])
		}
	case *parser.ParenExpr:
		n.Expr = p.rewrite(n.Expr)
	case *parser.UnaryExpr:
		n.Expr = p.rewrite(n.Expr)
	}
	// Selectors, subqueries and literals stay: planQuery refuses an outer query that still reads data. A
	// subquery is never looked into: its inner query is evaluated at the subquery's own steps, and the
	// shards answer at the query's steps only.
	return e
}

// shardAggregation returns the outer evaluation of agg when agg can be sharded, after adding its
// subtrees to p; nil otherwise.
func (p *plan) shardAggregation(agg *parser.AggregateExpr) parser.Expr {
	if !mapsEachSeries(agg.Expr) {
		return nil
	}
	switch agg.Op {
	case parser.SUM, parser.MIN, parser.MAX, parser.GROUP:
		// The aggregate of the shards' aggregates of each group.
		return p.reaggregate(agg, agg.Op, newSubtree(agg, false))
	case parser.COUNT:
		return p.reaggregate(agg, parser.SUM, newSubtree(agg, false))
	case parser.AVG:
		// The shards' sums added up, divided by their counts added up. Prometheus' avg computes an
		// incremental mean instead, so the two differ in the last bits of the float.
		sum := &parser.AggregateExpr{Op: parser.SUM, Expr: agg.Expr, Grouping: agg.Grouping, Without: agg.Without}
		count := &parser.AggregateExpr{Op: parser.COUNT, Expr: agg.Expr, Grouping: agg.Grouping, Without: agg.Without}
		sumTree := newSubtree(sum, false)
		countTree := &subtree{expr: count, selectors: sumTree.selectors}
		return &parser.ParenExpr{Expr: &parser.BinaryExpr{
			Op:             parser.DIV,
			LHS:            p.reaggregate(agg, parser.SUM, sumTree),
			RHS:            p.reaggregate(agg, parser.SUM, countTree),
			VectorMatching: &parser.VectorMatching{Card: parser.CardOneToOne},
		}}
	case parser.TOPK, parser.BOTTOMK:
		// Each series lives in one shard, so the top k of a group are among the top k of some shard: the
		// top k of the shards' top k are the top k. (Between series of equal value, which ones make the
		// cut depends on the order the engine meets them in, sharded or not.) k must be the same
		// everywhere: a literal.
		if !isConstant(agg.Param) {
			return nil
		}
		t := newSubtree(agg, true)
		p.subtrees = append(p.subtrees, t)
		return &parser.AggregateExpr{Op: agg.Op, Param: agg.Param, Expr: subtreeSelector(len(p.subtrees) - 1), Grouping: agg.Grouping, Without: agg.Without}
	}
	// quantile, stddev, stdvar, count_values, limitk, limit_ratio: no exact per-shard decomposition.
	return nil
}

// reaggregate adds t to p and returns op over its answers with agg's grouping; partLabel is dropped
// where agg keeps labels (without).
func (p *plan) reaggregate(agg *parser.AggregateExpr, op parser.ItemType, t *subtree) parser.Expr {
	p.subtrees = append(p.subtrees, t)
	grouping := agg.Grouping
	if agg.Without {
		grouping = append(slices.Clone(grouping), partLabel)
	}
	return &parser.AggregateExpr{Op: op, Expr: subtreeSelector(len(p.subtrees) - 1), Grouping: grouping, Without: agg.Without}
}

// subtreeSelector is the selector of the outer query that stands for subtree i's merged answers.
func subtreeSelector(i int) *parser.VectorSelector {
	return &parser.VectorSelector{LabelMatchers: []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, subtreeLabel, strconv.Itoa(i)),
	}}
}

func isSubtreeSelector(vs *parser.VectorSelector) bool {
	return len(vs.LabelMatchers) == 1 && vs.LabelMatchers[0].Name == subtreeLabel
}

// mapsEachSeries reports whether e computes each output series from one input series alone, so that
// evaluating e over a shard of the series gives exactly the output series of that shard. Functions that
// combine series (absent, scalar, histogram_quantile over classic buckets, label_replace, which may
// merge two series into one label set, sort) or binary operations between two vectors do not.
func mapsEachSeries(e parser.Expr) bool {
	switch n := e.(type) {
	case *parser.VectorSelector:
		return true
	case *parser.MatrixSelector:
		return mapsEachSeries(n.VectorSelector)
	case *parser.ParenExpr:
		return mapsEachSeries(n.Expr)
	case *parser.UnaryExpr:
		return mapsEachSeries(n.Expr)
	case *parser.SubqueryExpr:
		// Each shard evaluates the subquery itself, at the same absolute steps as the whole query would.
		return mapsEachSeries(n.Expr)
	case *parser.Call:
		if !seriesFunctions[n.Func.Name] {
			return false
		}
		readsSeries := false
		for _, arg := range n.Args {
			switch arg.Type() {
			case parser.ValueTypeVector, parser.ValueTypeMatrix:
				if !mapsEachSeries(arg) {
					return false
				}
				readsSeries = true
			default:
				if !isConstant(arg) {
					return false
				}
			}
		}
		// hour() and the like without an argument are vector(time()): one series per shard, not per series.
		return readsSeries
	case *parser.BinaryExpr:
		lhsVector, rhsVector := n.LHS.Type() == parser.ValueTypeVector, n.RHS.Type() == parser.ValueTypeVector
		switch {
		case lhsVector && !rhsVector:
			return mapsEachSeries(n.LHS) && isConstant(n.RHS)
		case rhsVector && !lhsVector:
			return mapsEachSeries(n.RHS) && isConstant(n.LHS)
		}
	}
	return false
}

// isConstant reports whether e is a number that reads no data: the same in every shard and at every step.
func isConstant(e parser.Expr) bool {
	switch n := e.(type) {
	case *parser.NumberLiteral:
		return true
	case *parser.ParenExpr:
		return isConstant(n.Expr)
	case *parser.UnaryExpr:
		return isConstant(n.Expr)
	case *parser.BinaryExpr:
		return isConstant(n.LHS) && isConstant(n.RHS)
	}
	return false
}

// seriesFunctions are the functions whose every output series comes from one input series, with the
// other arguments constant.
var seriesFunctions = func() map[string]bool {
	m := map[string]bool{}
	for _, name := range []string{
		"abs", "ceil", "floor", "round", "exp", "sqrt", "ln", "log2", "log10", "sgn",
		"clamp", "clamp_min", "clamp_max",
		"acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad",
		"rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "resets", "changes",
		"avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "last_over_time",
		"present_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time",
		"timestamp", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year",
		"histogram_count", "histogram_sum", "histogram_avg", "histogram_stddev", "histogram_stdvar",
	} {
		m[name] = true
	}
	return m
}()
