package querycheck

import (
	"fmt"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/strata-metrics/strata/pkg/validation"
)

// MaxExpressionComplexity bounds the binary operators and the bracket nesting of a PromQL expression.
// Prometheus' parser spends time quadratic in the depth of the expression tree (20,000 chained
// additions: 0.8 s; 40,000: 3.8 s, and parsing cannot be interrupted), and both grow that depth. No
// query written for a dashboard or a rule comes near it.
const MaxExpressionComplexity = 1000

// Range is where and how often a query is evaluated: Start == End and Step == 0 for an instant query.
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

// InvalidQueryError is a query the client must change: it does not parse, or Strata will not parse it.
type InvalidQueryError struct{ Err error }

func (e *InvalidQueryError) Error() string { return e.Err.Error() }
func (e *InvalidQueryError) Unwrap() error { return e.Err }

// Check refuses, before the engine parses it, a query that crosses the tenant's limits l: a
// *validation.LimitError for a limit, an *InvalidQueryError for a query that does not parse or is too
// complex to parse. defaultSubqueryStep is the step of subqueries that give none.
func Check(query string, l *validation.Limits, r Range, defaultSubqueryStep time.Duration) error {
	if l.MaxQueryExpressionSizeBytes > 0 && len(query) > l.MaxQueryExpressionSizeBytes {
		return validation.NewLimitError("max_query_expression_size_bytes",
			"the query expression is %d bytes, more than the limit of %d bytes", len(query), l.MaxQueryExpressionSizeBytes)
	}
	if l.MaxTotalQueryLength > 0 && r.End.Sub(r.Start) > time.Duration(l.MaxTotalQueryLength) {
		return validation.NewLimitError("max_total_query_length",
			"the query time range is %s, more than the limit of %s", r.End.Sub(r.Start), l.MaxTotalQueryLength)
	}
	if err := checkComplexity(query); err != nil {
		return &InvalidQueryError{Err: err}
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(query)
	if err != nil {
		return &InvalidQueryError{Err: err}
	}
	if l.MaxSubquerySteps > 0 {
		if steps, subquery := maxSubquerySteps(expr, r, defaultSubqueryStep); steps > int64(l.MaxSubquerySteps) {
			return validation.NewLimitError("max_subquery_steps",
				"the subquery %s is evaluated at %d steps, more than the limit of %d; use a larger subquery step or a shorter range",
				shortExpr(subquery), steps, l.MaxSubquerySteps)
		}
	}
	return nil
}

// checkComplexity lexes query (linear in its length) and refuses it when its binary operators or bracket
// nesting exceed MaxExpressionComplexity.
func checkComplexity(query string) error {
	lexer := parser.Lex(query)
	var item parser.Item
	operators, depth, maxDepth := 0, 0, 0
	for {
		lexer.NextItem(&item)
		switch {
		case item.Typ == parser.EOF, item.Typ == parser.ERROR:
			return nil // the parser reports lexing errors with their position
		case item.Typ.IsOperator():
			operators++
		case item.Typ == parser.LEFT_PAREN, item.Typ == parser.LEFT_BRACKET, item.Typ == parser.LEFT_BRACE:
			depth++
			maxDepth = max(maxDepth, depth)
		case item.Typ == parser.RIGHT_PAREN, item.Typ == parser.RIGHT_BRACKET, item.Typ == parser.RIGHT_BRACE:
			depth--
		}
		if operators > MaxExpressionComplexity {
			return fmt.Errorf("the query has more than %d operators, the most Strata parses; split it into several queries or recording rules", MaxExpressionComplexity)
		}
		if maxDepth > MaxExpressionComplexity {
			return fmt.Errorf("the query nests brackets more than %d deep, the most Strata parses", MaxExpressionComplexity)
		}
	}
}

// maxSubquerySteps returns the most steps at which a subquery of expr is evaluated, and that subquery. A
// subquery is evaluated once over the range of its enclosing expression extended by its own range, so
// nested subqueries each add their range to the ones inside them.
func maxSubquerySteps(expr parser.Expr, r Range, defaultStep time.Duration) (int64, *parser.SubqueryExpr) {
	var (
		most  int64
		worst *parser.SubqueryExpr
	)
	evalRange := r.End.Sub(r.Start)
	parser.Inspect(expr, func(node parser.Node, path []parser.Node) error {
		sq, ok := node.(*parser.SubqueryExpr)
		if !ok {
			return nil
		}
		span := evalRange
		for _, n := range path {
			if outer, ok := n.(*parser.SubqueryExpr); ok {
				span += outer.Range
				if outer.Timestamp != nil || outer.StartOrEnd != 0 {
					span = outer.Range // pinned by @: evaluated once, not over the query's range
				}
			}
		}
		if sq.Timestamp != nil || sq.StartOrEnd != 0 {
			span = 0
		}
		span += sq.Range
		step := sq.Step
		if step <= 0 {
			step = defaultStep
		}
		if steps := int64(span/step) + 1; steps > most {
			most, worst = steps, sq
		}
		return nil
	})
	return most, worst
}

// shortExpr renders e for an error message, cut so a huge query cannot make a huge message.
func shortExpr(e parser.Expr) string {
	s := e.String()
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
