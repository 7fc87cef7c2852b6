package querier

import (
	"context"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// tenantData is a queryable of a few series per tenant, read as the tenant in the context; it records the
// tenants that read it and the Queriers it made.
type tenantData struct {
	series   map[string][]labels.Labels
	reads    []string
	queriers int
}

func (d *tenantData) Querier(int64, int64) (storage.Querier, error) {
	d.queriers++
	return &tenantDataQuerier{d}, nil
}

type tenantDataQuerier struct{ d *tenantData }

func (q *tenantDataQuerier) Select(ctx context.Context, sortSeries bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	q.d.reads = append(q.d.reads, id)
	var out []storage.Series
	for _, lset := range q.d.series[id] {
		if matchesAll(lset, ms) {
			out = append(out, storage.NewListSeries(lset, nil))
		}
	}
	if sortSeries {
		slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	}
	return &seriesSlice{series: out, next: -1}
}

func (q *tenantDataQuerier) LabelValues(ctx context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	id, _ := tenant.FromContext(ctx)
	var out []string
	for _, lset := range q.d.series[id] {
		if v := lset.Get(name); v != "" && matchesAll(lset, ms) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil, nil
}

func (q *tenantDataQuerier) LabelNames(ctx context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	id, _ := tenant.FromContext(ctx)
	var out []string
	for _, lset := range q.d.series[id] {
		if matchesAll(lset, ms) {
			lset.Range(func(l labels.Label) { out = append(out, l.Name) })
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil, nil
}

func (q *tenantDataQuerier) Close() error { return nil }

func selectLabels(t *testing.T, q storage.Querier, ctx context.Context, ms ...*labels.Matcher) []string {
	t.Helper()
	set := q.Select(ctx, true, nil, ms...)
	var out []string
	for set.Next() {
		out = append(out, set.At().Labels().String())
	}
	require.NoError(t, set.Err())
	return out
}

func TestFederatedQueryable_LabelsEachTenantsSeriesAndKeepsTenantsApart(t *testing.T) {
	data := &tenantData{series: map[string][]labels.Labels{
		"a": {labels.FromStrings("__name__", "up", "job", "x"), labels.FromStrings("__name__", "up", "Zone", "1")},
		"b": {labels.FromStrings("__name__", "up", "job", "x")},
		"c": {labels.FromStrings("__name__", "up", "job", "secret")},
	}}
	q, err := FederatedQueryable{data}.Querier(0, 2000)
	require.NoError(t, err)
	defer q.Close()
	up := labels.MustNewMatcher(labels.MatchEqual, "__name__", "up")

	// A plain tenant reads its own series, unlabelled.
	require.Equal(t, []string{`{Zone="1", __name__="up"}`, `{__name__="up", job="x"}`}, selectLabels(t, q, tenant.NewContext(context.Background(), "a"), up))

	// a|b reads both, each series labelled, in label order; c is never read.
	ab := tenant.NewContext(context.Background(), "a|b")
	require.Equal(t, []string{
		`{Zone="1", __name__="up", __tenant_id__="a"}`,
		`{__name__="up", __tenant_id__="a", job="x"}`,
		`{__name__="up", __tenant_id__="b", job="x"}`,
	}, selectLabels(t, q, ab, up))
	require.NotContains(t, data.reads, "c")

	// __tenant_id__ matchers choose the tenants.
	data.reads = nil
	require.Equal(t, []string{`{__name__="up", __tenant_id__="b", job="x"}`},
		selectLabels(t, q, ab, up, labels.MustNewMatcher(labels.MatchEqual, TenantLabel, "b")))
	require.Equal(t, []string{"b"}, data.reads)
	require.Empty(t, selectLabels(t, q, ab, up, labels.MustNewMatcher(labels.MatchEqual, TenantLabel, "c")), "only the header's tenants")

	names, _, err := q.LabelNames(ab, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"Zone", "__name__", TenantLabel, "job"}, names)
	values, _, err := q.LabelValues(ab, TenantLabel, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, values)
	values, _, err = q.LabelValues(ab, "job", nil)
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, values)

	require.Equal(t, 2, data.queriers, "one Querier per tenant read, kept for the query's Selects")
}
