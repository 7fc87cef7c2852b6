package querycheck

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/validation"
	"github.com/strata-metrics/strata/pkg/validation/validationtest"
)

func defaultLimits(testing.TB) *validation.Limits {
	l := validation.DefaultLimits()
	return &l
}

func instantAt(ts time.Time) Range { return Range{Start: ts, End: ts} }

func TestCheck_SubquerySteps(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := defaultLimits(t)
	tests := map[string]struct {
		query string
		r     Range
		steps int64 // 0: accepted
	}{
		// Defect 1 of issue 12: the engine allocated ~69 GB for this one and the process died.
		"100 days at 1ms":              {query: "count_over_time(vector(1)[100d:1ms])", r: instantAt(now), steps: 8_640_000_001},
		"nested subqueries add ranges": {query: "max_over_time(max_over_time(max_over_time(vector(1)[1h:1ms])[1h:1ms])[1h:1ms])", r: instantAt(now), steps: 10_800_001},
		"a dashboard's subquery":       {query: "max_over_time(rate(m[5m])[1d:1m])", r: Range{Start: now.Add(-7 * 24 * time.Hour), End: now, Step: time.Hour}},
		"default step":                 {query: "max_over_time(m[2y:])", r: instantAt(now), steps: 1_051_201},
		"range query extends the span": {query: "max_over_time(m[1h:1s])", r: Range{Start: now.Add(-300 * time.Hour), End: now, Step: time.Hour}, steps: 1_083_601},
		"@ pins the subquery":          {query: "max_over_time(m[1h:1s] @ 1700000000)", r: Range{Start: now.Add(-300 * time.Hour), End: now, Step: time.Hour}},
		"no subquery":                  {query: "sum(rate(m[5m]))", r: instantAt(now)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := Check(tc.query, l, tc.r, time.Minute)
			if tc.steps == 0 {
				require.NoError(t, err)
				return
			}
			validationtest.RequireLimitError(t, err, "max_subquery_steps")
			require.Contains(t, err.Error(), "evaluated at "+strconv.FormatInt(tc.steps, 10)+" steps, more than the limit of 1000000")
		})
	}
	unlimited := *l
	unlimited.MaxSubquerySteps = 0
	require.NoError(t, Check("count_over_time(vector(1)[100d:1ms])", &unlimited, instantAt(now), time.Minute))
}

// Defect 4 of issue 12: 100k nested parentheses took 160 s to parse and a 1 MB chain of additions took
// more than 180 s and 4.5 GB; neither can be interrupted once the parser runs.
func TestCheck_RefusesWhatIsTooCostlyToParse(t *testing.T) {
	now := time.Now()
	l := defaultLimits(t)
	l.MaxQueryExpressionSizeBytes = 0 // the structural bound holds without a size limit

	for name, q := range map[string]string{
		"nested parentheses": strings.Repeat("(", 100_000) + "m" + strings.Repeat(")", 100_000),
		"chained additions":  "m" + strings.Repeat(" + m", 250_000),
		"nested functions":   strings.Repeat("abs(", 5000) + "m" + strings.Repeat(")", 5000),
	} {
		t.Run(name, func(t *testing.T) {
			err := Check(q, l, instantAt(now), time.Minute)
			var qerr *InvalidQueryError
			require.ErrorAs(t, err, &qerr)
			require.Contains(t, err.Error(), "1000")
		})
	}
	require.NoError(t, Check("m"+strings.Repeat(" + m", 999), l, instantAt(now), time.Minute))
	require.NoError(t, Check(`m{job=~"`+strings.Repeat("a|", 50_000)+`b"}`, l, instantAt(now), time.Minute),
		"a long regular expression is one token")
}

func TestCheck_ExpressionSizeAndTotalLength(t *testing.T) {
	now := time.Now()
	l := defaultLimits(t)
	l.MaxQueryExpressionSizeBytes = 10
	validationtest.RequireLimitError(t, Check("sum(rate(m[5m]))", l, instantAt(now), time.Minute), "max_query_expression_size_bytes")
	require.NoError(t, Check("up", l, instantAt(now), time.Minute))

	l = defaultLimits(t)
	l.MaxTotalQueryLength = model.Duration(24 * time.Hour)
	week := Range{Start: now.Add(-7 * 24 * time.Hour), End: now, Step: time.Minute}
	err := Check("up", l, week, time.Minute)
	validationtest.RequireLimitError(t, err, "max_total_query_length")
	require.Contains(t, err.Error(), "the query time range is 168h0m0s, more than the limit of 1d")
	require.NoError(t, Check("up", l, Range{Start: now.Add(-time.Hour), End: now, Step: time.Minute}, time.Minute))
}

func TestCheck_ParseErrorIsInvalidQuery(t *testing.T) {
	err := Check("sum(", defaultLimits(t), instantAt(time.Now()), time.Minute)
	var qerr *InvalidQueryError
	require.ErrorAs(t, err, &qerr)
	require.Contains(t, err.Error(), "parse error")
}
