package querier

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

type fixedExemplars struct {
	IngesterReads
	res []exemplar.QueryResult
}

func (f fixedExemplars) QueryExemplars(context.Context, int64, int64, [][]*labels.Matcher, ExemplarLimits) ([]exemplar.QueryResult, error) {
	return f.res, nil
}

func TestTombstoneIngesterSource_LeavesOutExemplarsOfDeletedSamples(t *testing.T) {
	exemplars := func(ts ...int64) []exemplar.Exemplar {
		var out []exemplar.Exemplar
		for _, t := range ts {
			out = append(out, exemplar.Exemplar{Ts: t, Value: 1, HasTs: true})
		}
		return out
	}
	src := TombstoneIngesterSource{
		IngesterReads: fixedExemplars{res: []exemplar.QueryResult{
			{SeriesLabels: labels.FromStrings("__name__", "doomed", "job", "a"), Exemplars: exemplars(1000, 5000, 9000)},
			{SeriesLabels: labels.FromStrings("__name__", "gone", "job", "a"), Exemplars: exemplars(5000)},
			{SeriesLabels: labels.FromStrings("__name__", "kept", "job", "a"), Exemplars: exemplars(5000)},
		}},
		Tombstones: staticTombstones{mustTombstone(t, 4000, 6000, "doomed", "gone")},
	}
	got, err := src.QueryExemplars(tenant.NewContext(context.Background(), "t1"), 0, 10000, nil, ExemplarLimits{})
	require.NoError(t, err)
	require.Equal(t, []exemplar.QueryResult{
		{SeriesLabels: labels.FromStrings("__name__", "doomed", "job", "a"), Exemplars: exemplars(1000, 9000)},
		{SeriesLabels: labels.FromStrings("__name__", "kept", "job", "a"), Exemplars: exemplars(5000)},
	}, got)
}
