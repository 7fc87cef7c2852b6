package querymiddleware

import (
	"math"

	"github.com/prometheus/prometheus/promql/parser"
)

// preparedQuery is a range query's expression made safe to evaluate in parts, with what the results
// cache must know of the data it reads.
//
// A range query's value at each step depends only on the step's time, with two exceptions, both handled
// here:
//   - @ start() and @ end() mean the query's start and end, which each part would read as its own: they
//     are replaced by the query's times (@ <seconds>), which every part reads alike. The rewritten query
//     differs from one refresh to the next (its end moves), so such queries split but are cached only
//     while a dashboard's range stays put; the alternative, not splitting them, would make every long
//     @ end() query one evaluation again for the sake of a cache it hardly hits.
//   - a negative offset (offset -1h) or a fixed @ time reads data later than the step: the results
//     cache must hold back such steps until that later data is as old as max_cache_freshness.
type preparedQuery struct {
	// query is sent with each part: the client's own text when it needed no rewrite, so a querier
	// parses exactly what the client wrote.
	query string
	// readsAfterStep is how far past a step's time the expression reads data (its most negative offset
	// along any selector's path), 0 when it reads none.
	readsAfterStep int64
	// latestPinnedRead is the latest time a selector pinned by @ reads; math.MinInt64 when none is.
	latestPinnedRead int64
}

// prepareQuery parses query for a range query from start to end (milliseconds).
func prepareQuery(query string, start, end int64) (*preparedQuery, error) {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(query)
	if err != nil {
		return nil, err
	}
	p := &preparedQuery{query: query, latestPinnedRead: math.MinInt64}
	if pinStartAndEnd(expr, start, end) {
		p.query = expr.String()
	}
	p.inspectReads(expr, 0, nil)
	return p, nil
}

// pinStartAndEnd replaces @ start() and @ end() in expr by the query's times and reports whether there
// were any.
func pinStartAndEnd(expr parser.Expr, start, end int64) bool {
	pinned := false
	pin := func(startOrEnd *parser.ItemType, timestamp **int64) {
		var t int64
		switch *startOrEnd {
		case parser.START:
			t = start
		case parser.END:
			t = end
		default:
			return
		}
		*timestamp = &t
		*startOrEnd = 0
		pinned = true
	}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			pin(&n.StartOrEnd, &n.Timestamp)
		case *parser.SubqueryExpr:
			pin(&n.StartOrEnd, &n.Timestamp)
		}
		return nil
	})
	return pinned
}

// inspectReads records the latest data node reads when evaluated at time t+shift, or at *pinnedAt when
// an enclosing subquery is pinned by @.
func (p *preparedQuery) inspectReads(node parser.Node, shift int64, pinnedAt *int64) {
	switch n := node.(type) {
	case *parser.VectorSelector:
		p.recordRead(shift, pinnedAt, n.Timestamp, n.OriginalOffset.Milliseconds())
		return
	case *parser.MatrixSelector:
		p.inspectReads(n.VectorSelector, shift, pinnedAt) // a range selector reads back from there
		return
	case *parser.SubqueryExpr:
		// The inner expression is evaluated at steps up to the subquery's own time, less its offset.
		offset := n.OriginalOffset.Milliseconds()
		switch {
		case n.Timestamp != nil:
			at := *n.Timestamp - offset
			p.inspectReads(n.Expr, 0, &at)
		case pinnedAt != nil:
			at := *pinnedAt - offset
			p.inspectReads(n.Expr, 0, &at)
		default:
			p.inspectReads(n.Expr, shift-offset, nil)
		}
		return
	}
	for child := range parser.ChildrenIter(node) {
		p.inspectReads(child, shift, pinnedAt)
	}
}

func (p *preparedQuery) recordRead(shift int64, pinnedAt, timestamp *int64, offset int64) {
	switch {
	case timestamp != nil:
		p.latestPinnedRead = max(p.latestPinnedRead, *timestamp-offset)
	case pinnedAt != nil:
		p.latestPinnedRead = max(p.latestPinnedRead, *pinnedAt-offset)
	default:
		p.readsAfterStep = max(p.readsAfterStep, shift-offset)
	}
}

// cacheableUntil returns the last time (milliseconds) whose step the results cache may hold, given the
// freshness bound (now - max_cache_freshness): a step's answer is final only once all the data it reads
// is older than that bound. math.MinInt64 means none.
func (p *preparedQuery) cacheableUntil(freshUntil int64) int64 {
	if p.latestPinnedRead > freshUntil {
		return math.MinInt64
	}
	return freshUntil - p.readsAfterStep
}
