package querier

import (
	"context"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/strata-metrics/strata/pkg/tenant"
)

// TenantLabel names the tenant of each series of a federated read.
const TenantLabel = "__tenant_id__"

// FederatedQueryable reads, for a context whose tenant ID names several tenants ("a|b", see
// tenant.ParseFederatedID), each tenant's data on its own — with that tenant's own fetch limits, as the
// queryable below applies them — and answers their union, every series labelled with its tenant in
// __tenant_id__. Matchers on __tenant_id__ choose the tenants read. A single tenant's read passes through.
type FederatedQueryable struct {
	storage.Queryable
}

// Querier implements storage.Queryable.
func (q FederatedQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &federatedQuerier{queryable: q.Queryable, mint: mint, maxt: maxt, byTenant: map[string]storage.Querier{}}, nil
}

type federatedQuerier struct {
	queryable  storage.Queryable
	mint, maxt int64
	// byTenant holds a querier per tenant read, so each counts its own tenant's fetch limits across the
	// query's Selects, as the engine's single Querier does for a plain read.
	byTenant map[string]storage.Querier
}

// querierFor returns the querier of one tenant of the query. The engine calls a Querier's methods from
// one goroutine, so the map needs no lock.
func (q *federatedQuerier) querierFor(id string) (storage.Querier, error) {
	if inner, ok := q.byTenant[id]; ok {
		return inner, nil
	}
	inner, err := q.queryable.Querier(q.mint, q.maxt)
	if err != nil {
		return nil, err
	}
	q.byTenant[id] = inner
	return inner, nil
}

// tenantsOf returns the tenants that ctx's read spans and that ms's __tenant_id__ matchers accept, and
// ms without those matchers. single is true for a read of one tenant without such matchers.
func tenantsOf(ctx context.Context, ms []*labels.Matcher) (ids []string, rest []*labels.Matcher, single bool, err error) {
	id, err := tenant.FromContext(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	all := tenant.IDs(id)
	var tenantMatchers []*labels.Matcher
	for _, m := range ms {
		if m.Name == TenantLabel {
			tenantMatchers = append(tenantMatchers, m)
		} else {
			rest = append(rest, m)
		}
	}
	if len(all) == 1 && len(tenantMatchers) == 0 {
		return all, ms, true, nil
	}
	for _, id := range all {
		if !slices.ContainsFunc(tenantMatchers, func(m *labels.Matcher) bool { return !m.Matches(id) }) {
			ids = append(ids, id)
		}
	}
	return ids, rest, false, nil
}

// Select implements storage.Querier.
func (q *federatedQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	ids, rest, single, err := tenantsOf(ctx, matchers)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	if single {
		inner, err := q.querierFor(ids[0])
		if err != nil {
			return storage.ErrSeriesSet(err)
		}
		return inner.Select(ctx, sortSeries, hints, matchers...)
	}
	if len(rest) == 0 {
		// Only __tenant_id__ matchers: every series of the chosen tenants, as {__tenant_id__="a"} asks.
		rest = []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+")}
	}
	// Adding __tenant_id__ can change how a tenant's series sort among themselves, so the union is
	// gathered and sorted here; the engine holds every selected series anyway.
	var (
		all      []storage.Series
		warnings annotations.Annotations
	)
	for _, id := range ids {
		inner, err := q.querierFor(id)
		if err != nil {
			return storage.ErrSeriesSet(err)
		}
		set := inner.Select(tenant.NewContext(ctx, id), false, hints, rest...)
		for set.Next() {
			series := set.At()
			b := labels.NewBuilder(series.Labels())
			b.Set(TenantLabel, id)
			all = append(all, &labelledSeries{Series: series, lset: b.Labels()})
		}
		if err := set.Err(); err != nil {
			return storage.ErrSeriesSet(err)
		}
		warnings.Merge(set.Warnings())
	}
	if sortSeries {
		slices.SortFunc(all, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	}
	return &seriesSlice{series: all, warnings: warnings, next: -1}
}

// LabelValues implements storage.Querier: the union of the tenants' values.
func (q *federatedQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ids, rest, single, err := tenantsOf(ctx, matchers)
	if err != nil {
		return nil, nil, err
	}
	if name == TenantLabel {
		return ids, nil, nil
	}
	return q.union(ctx, ids, single, func(inner storage.Querier, ctx context.Context) ([]string, annotations.Annotations, error) {
		if single {
			return inner.LabelValues(ctx, name, hints, matchers...)
		}
		return inner.LabelValues(ctx, name, hints, rest...)
	})
}

// LabelNames implements storage.Querier: the union of the tenants' names, and __tenant_id__.
func (q *federatedQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ids, rest, single, err := tenantsOf(ctx, matchers)
	if err != nil {
		return nil, nil, err
	}
	names, annos, err := q.union(ctx, ids, single, func(inner storage.Querier, ctx context.Context) ([]string, annotations.Annotations, error) {
		if single {
			return inner.LabelNames(ctx, hints, matchers...)
		}
		return inner.LabelNames(ctx, hints, rest...)
	})
	if err != nil || single || len(ids) == 0 {
		return names, annos, err
	}
	i, found := slices.BinarySearch(names, TenantLabel)
	if !found {
		names = slices.Insert(names, i, TenantLabel)
	}
	return names, annos, nil
}

// union asks each tenant's querier and merges the sorted answers.
func (q *federatedQuerier) union(ctx context.Context, ids []string, single bool,
	ask func(storage.Querier, context.Context) ([]string, annotations.Annotations, error)) ([]string, annotations.Annotations, error) {
	var (
		out   []string
		annos annotations.Annotations
	)
	for _, id := range ids {
		inner, err := q.querierFor(id)
		if err != nil {
			return nil, nil, err
		}
		tctx := ctx
		if !single {
			tctx = tenant.NewContext(ctx, id)
		}
		values, a, err := ask(inner, tctx)
		if err != nil {
			return nil, nil, err
		}
		annos.Merge(a)
		out = append(out, values...)
	}
	slices.Sort(out)
	return slices.Compact(out), annos, nil
}

// Close implements storage.Querier.
func (q *federatedQuerier) Close() error {
	var firstErr error
	for _, inner := range q.byTenant {
		if err := inner.Close(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// seriesSlice is a SeriesSet over gathered series.
type seriesSlice struct {
	series   []storage.Series
	warnings annotations.Annotations
	next     int
}

func (s *seriesSlice) Next() bool {
	s.next++
	return s.next < len(s.series)
}

func (s *seriesSlice) At() storage.Series                { return s.series[s.next] }
func (s *seriesSlice) Err() error                        { return nil }
func (s *seriesSlice) Warnings() annotations.Annotations { return s.warnings }

// labelledSeries is a tenant's series with __tenant_id__ added.
type labelledSeries struct {
	storage.Series
	lset labels.Labels
}

func (s *labelledSeries) Labels() labels.Labels { return s.lset }
