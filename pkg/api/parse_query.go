package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/strata-metrics/strata/pkg/querycheck"
)

// parseQuery answers /api/v1/parse_query with the query's syntax tree as JSON, in the shape of
// Prometheus' answer, which its UI draws as the query's explanation tree. Prometheus builds it in an
// unexported function of web/api/v1, so the shape is written down here: one struct per node type, its
// fields in the alphabetical order in which Prometheus' maps come out, so that answers match byte for
// byte.
func (a *PrometheusAPI) parseQuery(r *http.Request) (any, annotations.Annotations, *apiError) {
	now := a.now()
	if apiErr := a.checkQuery(r.Context(), r.FormValue("query"), querycheck.Range{Start: now, End: now}); apiErr != nil {
		return nil, nil, apiErr
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.FormValue("query"))
	if err != nil {
		return nil, nil, badData("invalid parameter \"query\": %v", err)
	}
	tree, err := syntaxTree(expr)
	if err != nil {
		return nil, nil, &apiError{typ: errorInternal, err: err}
	}
	return tree, nil, nil
}

type aggregationNode struct {
	Expr     any      `json:"expr"`
	Grouping []string `json:"grouping"`
	Op       string   `json:"op"`
	Param    any      `json:"param"`
	Type     string   `json:"type"`
	Without  bool     `json:"without"`
}

type binaryNode struct {
	Bool     bool          `json:"bool"`
	LHS      any           `json:"lhs"`
	Matching *matchingNode `json:"matching"`
	Op       string        `json:"op"`
	RHS      any           `json:"rhs"`
	Type     string        `json:"type"`
}

// matchingNode is a binary operation's vector matching (on, ignoring, group_left, group_right, fill).
type matchingNode struct {
	Card       string `json:"card"`
	FillValues struct {
		LHS *float64 `json:"lhs"`
		RHS *float64 `json:"rhs"`
	} `json:"fillValues"`
	Include []string `json:"include"`
	Labels  []string `json:"labels"`
	On      bool     `json:"on"`
}

type callNode struct {
	Args []any `json:"args"`
	Func struct {
		ArgTypes   []parser.ValueType `json:"argTypes"`
		Name       string             `json:"name"`
		ReturnType parser.ValueType   `json:"returnType"`
		Variadic   int                `json:"variadic"`
	} `json:"func"`
	Type string `json:"type"`
}

type matrixSelectorNode struct {
	Anchored   bool          `json:"anchored"`
	Matchers   []matcherNode `json:"matchers"`
	Name       string        `json:"name"`
	Offset     int64         `json:"offset"`
	OffsetExpr any           `json:"offsetExpr"`
	Range      int64         `json:"range"`
	RangeExpr  any           `json:"rangeExpr"`
	Smoothed   bool          `json:"smoothed"`
	StartOrEnd *string       `json:"startOrEnd"`
	Timestamp  *int64        `json:"timestamp"`
	Type       string        `json:"type"`
}

type vectorSelectorNode struct {
	Anchored   bool          `json:"anchored"`
	Matchers   []matcherNode `json:"matchers"`
	Name       string        `json:"name"`
	Offset     int64         `json:"offset"`
	OffsetExpr any           `json:"offsetExpr"`
	Smoothed   bool          `json:"smoothed"`
	StartOrEnd *string       `json:"startOrEnd"`
	Timestamp  *int64        `json:"timestamp"`
	Type       string        `json:"type"`
}

type matcherNode struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

type subqueryNode struct {
	Expr       any     `json:"expr"`
	Offset     int64   `json:"offset"`
	OffsetExpr any     `json:"offsetExpr"`
	Range      int64   `json:"range"`
	RangeExpr  any     `json:"rangeExpr"`
	StartOrEnd *string `json:"startOrEnd"`
	Step       int64   `json:"step"`
	StepExpr   any     `json:"stepExpr"`
	Timestamp  *int64  `json:"timestamp"`
	Type       string  `json:"type"`
}

// durationNode is a computed duration (5m+step(), -1h, …) where a range, offset or step goes.
type durationNode struct {
	LHS     any    `json:"lhs"`
	Op      string `json:"op"`
	RHS     any    `json:"rhs"`
	Type    string `json:"type"`
	Wrapped bool   `json:"wrapped"`
}

// durationNumberNode is a number within a duration, where it says whether it was written as one (5m).
type durationNumberNode struct {
	Duration bool   `json:"duration"`
	Type     string `json:"type"`
	Val      string `json:"val"`
}

// valueNode is a number or string literal.
type valueNode struct {
	Type string `json:"type"`
	Val  string `json:"val"`
}

// wrapperNode is a parenthesised or unary (-x) expression.
type wrapperNode struct {
	Expr any    `json:"expr"`
	Op   string `json:"op,omitempty"`
	Type string `json:"type"`
}

// syntaxTree converts a parsed expression; nil stays nil (an aggregation without a parameter).
func syntaxTree(e parser.Expr) (any, error) {
	if e == nil {
		return nil, nil
	}
	var err error
	// sub converts a child, keeping the first error.
	sub := func(child parser.Expr) any {
		node, childErr := syntaxTree(child)
		if err == nil {
			err = childErr
		}
		return node
	}
	var node any
	switch n := e.(type) {
	case *parser.AggregateExpr:
		node = aggregationNode{Type: "aggregation", Op: n.Op.String(), Expr: sub(n.Expr), Param: sub(n.Param),
			Grouping: nonNil(n.Grouping), Without: n.Without}
	case *parser.BinaryExpr:
		b := binaryNode{Type: "binaryExpr", Op: n.Op.String(), LHS: sub(n.LHS), RHS: sub(n.RHS), Bool: n.ReturnBool}
		if m := n.VectorMatching; m != nil {
			b.Matching = &matchingNode{Card: m.Card.String(), Labels: nonNil(m.MatchingLabels), On: m.On, Include: nonNil(m.Include)}
			b.Matching.FillValues.LHS, b.Matching.FillValues.RHS = m.FillValues.LHS, m.FillValues.RHS
		}
		node = b
	case *parser.Call:
		c := callNode{Type: "call", Args: make([]any, 0, len(n.Args))}
		for _, arg := range n.Args {
			c.Args = append(c.Args, sub(arg))
		}
		c.Func.Name, c.Func.ArgTypes, c.Func.Variadic, c.Func.ReturnType = n.Func.Name, n.Func.ArgTypes, n.Func.Variadic, n.Func.ReturnType
		node = c
	case *parser.MatrixSelector:
		vs, ok := n.VectorSelector.(*parser.VectorSelector)
		if !ok {
			return nil, fmt.Errorf("range selector over %T, not a vector selector", n.VectorSelector)
		}
		node = matrixSelectorNode{Type: "matrixSelector", Name: vs.Name, Matchers: matcherNodes(vs.LabelMatchers),
			Range: n.Range.Milliseconds(), RangeExpr: sub(durationExpr(n.RangeExpr)),
			Offset: vs.OriginalOffset.Milliseconds(), OffsetExpr: sub(durationExpr(vs.OriginalOffsetExpr)),
			Timestamp: vs.Timestamp, StartOrEnd: startOrEnd(vs.StartOrEnd), Anchored: vs.Anchored, Smoothed: vs.Smoothed}
	case *parser.VectorSelector:
		node = vectorSelectorNode{Type: "vectorSelector", Name: n.Name, Matchers: matcherNodes(n.LabelMatchers),
			Offset: n.OriginalOffset.Milliseconds(), OffsetExpr: sub(durationExpr(n.OriginalOffsetExpr)),
			Timestamp: n.Timestamp, StartOrEnd: startOrEnd(n.StartOrEnd), Anchored: n.Anchored, Smoothed: n.Smoothed}
	case *parser.SubqueryExpr:
		node = subqueryNode{Type: "subquery", Expr: sub(n.Expr),
			Range: n.Range.Milliseconds(), RangeExpr: sub(durationExpr(n.RangeExpr)),
			Offset: n.OriginalOffset.Milliseconds(), OffsetExpr: sub(durationExpr(n.OriginalOffsetExpr)),
			Step: n.Step.Milliseconds(), StepExpr: sub(durationExpr(n.StepExpr)),
			Timestamp: n.Timestamp, StartOrEnd: startOrEnd(n.StartOrEnd)}
	case *parser.DurationExpr:
		if n == nil {
			return nil, nil
		}
		d := durationNode{Type: "durationExpr", Op: n.Op.String(), Wrapped: n.Wrapped}
		d.LHS, d.RHS = sub(durationOperand(n.LHS)), sub(durationOperand(n.RHS))
		node = d
	case durationNumber:
		node = durationNumberNode{Type: "numberLiteral", Val: formatNumber(n.Val), Duration: n.Duration}
	case *parser.NumberLiteral:
		node = valueNode{Type: "numberLiteral", Val: formatNumber(n.Val)}
	case *parser.StringLiteral:
		node = valueNode{Type: "stringLiteral", Val: n.Val}
	case *parser.ParenExpr:
		node = wrapperNode{Type: "parenExpr", Expr: sub(n.Expr)}
	case *parser.UnaryExpr:
		node = wrapperNode{Type: "unaryExpr", Op: n.Op.String(), Expr: sub(n.Expr)}
	default:
		return nil, fmt.Errorf("cannot describe a %T in the syntax tree", e)
	}
	return node, err
}

// durationNumber marks a number literal within a duration expression, which Prometheus' tree describes
// with its duration flag.
type durationNumber struct{ *parser.NumberLiteral }

// durationExpr turns a missing duration expression into a nil parser.Expr, which the tree leaves null.
func durationExpr(d *parser.DurationExpr) parser.Expr {
	if d == nil {
		return nil
	}
	return d
}

func durationOperand(e parser.Expr) parser.Expr {
	if n, ok := e.(*parser.NumberLiteral); ok && n != nil {
		return durationNumber{n}
	}
	return e
}

func matcherNodes(ms []*labels.Matcher) []matcherNode {
	out := make([]matcherNode, 0, len(ms))
	for _, m := range ms {
		out = append(out, matcherNode{Name: m.Name, Type: m.Type.String(), Value: m.Value})
	}
	return out
}

// startOrEnd is the start() or end() of an @ modifier, or nil.
func startOrEnd(t parser.ItemType) *string {
	if t == 0 {
		return nil
	}
	s := t.String()
	return &s
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
