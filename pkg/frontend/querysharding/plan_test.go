package querysharding

import (
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	shards "github.com/strata-metrics/strata/pkg/querysharding"
)

func TestPlanQuery_RewritesShardableSubtrees(t *testing.T) {
	for _, tc := range []struct {
		query string
		outer string
		// shard1 are the subtrees' queries for shard 1 of 2.
		shard1 []string
	}{
		{
			query:  `sum(rate(http_requests_total[5m]))`,
			outer:  `sum({__strata_sharded_subtree__="0"})`,
			shard1: []string{`sum(rate(http_requests_total{__query_shard__="1_of_2"}[5m]))`},
		},
		{
			query:  `count by (job) (up{job=~"a.*"})`,
			outer:  `sum by (job) ({__strata_sharded_subtree__="0"})`,
			shard1: []string{`count by (job) (up{__query_shard__="1_of_2",job=~"a.*"})`},
		},
		{
			query:  `max without (instance) (temperature)`,
			outer:  `max without (instance, __strata_shard__) ({__strata_sharded_subtree__="0"})`,
			shard1: []string{`max without (instance) (temperature{__query_shard__="1_of_2"})`},
		},
		{
			query: `avg by (job) (temperature)`,
			outer: `(sum by (job) ({__strata_sharded_subtree__="0"}) / sum by (job) ({__strata_sharded_subtree__="1"}))`,
			shard1: []string{
				`sum by (job) (temperature{__query_shard__="1_of_2"})`,
				`count by (job) (temperature{__query_shard__="1_of_2"})`,
			},
		},
		{
			query:  `topk by (job) (3, rate(x[5m]))`,
			outer:  `topk by (job) (3, {__strata_sharded_subtree__="0"})`,
			shard1: []string{`topk by (job) (3, rate(x{__query_shard__="1_of_2"}[5m]))`},
		},
		{
			query:  `histogram_quantile(0.9, sum by (le) (rate(latency_bucket[5m])))`,
			outer:  `histogram_quantile(0.9, sum by (le) ({__strata_sharded_subtree__="0"}))`,
			shard1: []string{`sum by (le) (rate(latency_bucket{__query_shard__="1_of_2"}[5m]))`},
		},
		{
			query: `sum(rate(errors_total[5m])) / sum(rate(requests_total[5m])) > 0.1`,
			outer: `sum({__strata_sharded_subtree__="0"}) / sum({__strata_sharded_subtree__="1"}) > 0.1`,
			shard1: []string{
				`sum(rate(errors_total{__query_shard__="1_of_2"}[5m]))`,
				`sum(rate(requests_total{__query_shard__="1_of_2"}[5m]))`,
			},
		},
		{
			// The inner aggregation is sharded; the outer one aggregates its merged answer.
			query:  `count(count by (version) (build_info))`,
			outer:  `count(sum by (version) ({__strata_sharded_subtree__="0"}))`,
			shard1: []string{`count by (version) (build_info{__query_shard__="1_of_2"})`},
		},
		{
			query:  `sum(max_over_time(rate(x[5m] offset 1m)[30m:1m] @ 1700000000)) * 2`,
			outer:  `sum({__strata_sharded_subtree__="0"}) * 2`,
			shard1: []string{`sum(max_over_time(rate(x{__query_shard__="1_of_2"}[5m] offset 1m)[30m:1m] @ 1700000000.000))`},
		},
		{
			query:  `quantile(0.5, sum by (instance) (-clamp_min(x, 0) * 2 > bool 1))`,
			outer:  `quantile(0.5, sum by (instance) ({__strata_sharded_subtree__="0"}))`,
			shard1: []string{`sum by (instance) (-clamp_min(x{__query_shard__="1_of_2"}, 0) * 2 > bool 1)`},
		},
	} {
		t.Run(tc.query, func(t *testing.T) {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(tc.query)
			require.NoError(t, err)
			p := planQuery(expr)
			require.NotNil(t, p)
			require.Equal(t, tc.outer, p.outer.String())
			var got []string
			for _, st := range p.subtrees {
				got = append(got, st.query(shards.Shard{Index: 1, Count: 2}))
			}
			require.Equal(t, tc.shard1, got)
			// The outer query parses back: the engine reads it as text.
			_, err = parser.NewParser(parser.Options{}).ParseExpr(p.outer.String())
			require.NoError(t, err)
		})
	}
}

func TestPlanQuery_LeavesUnshardableQueriesAlone(t *testing.T) {
	for _, query := range []string{
		`up`,
		`rate(x[5m])`,
		`quantile(0.9, x)`,
		`stddev(x)`,
		`stdvar by (job) (x)`,
		`count_values("version", build_info)`,
		`sum(a / b)`,
		`sum(a and b)`,
		`sum(histogram_quantile(0.9, rate(x_bucket[5m])))`,
		`sum(label_replace(x, "a", "$1", "b", "(.*)"))`,
		`sum(absent(x))`,
		`sum(x * scalar(y))`,
		`sum(sort(x))`,
		`sum(hour())`,
		`sum(vector(1))`,
		`topk(scalar(y), x)`,
		// What remains outside the sharded parts would read data itself.
		`sum(x) + y`,
		`sum(x) / on() group_left absent(y)`,
		`max_over_time(sum(x)[10m:1m])`,
		`sum(x) and on() count_over_time(y[5m]) > 1`,
	} {
		t.Run(query, func(t *testing.T) {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(query)
			require.NoError(t, err)
			require.Nil(t, planQuery(expr))
		})
	}
}
