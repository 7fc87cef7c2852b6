package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/strata-metrics/strata/pkg/promjson"
	"github.com/strata-metrics/strata/pkg/querier"
	"github.com/strata-metrics/strata/pkg/querycheck"
	"github.com/strata-metrics/strata/pkg/tenant"
	"github.com/strata-metrics/strata/pkg/validation"
)

// ExemplarSource returns the exemplars of the tenant in ctx within [start, end] of the series matching
// any of matcherSets, series in label order and exemplars oldest first, within limits.
type ExemplarSource interface {
	QueryExemplars(ctx context.Context, start, end int64, matcherSets [][]*labels.Matcher, limits querier.ExemplarLimits) ([]exemplar.QueryResult, error)
}

// IngesterSource is what only ingesters answer: metric metadata and exemplars.
type IngesterSource interface {
	MetadataSource
	ExemplarSource
}

// queryExemplars answers /api/v1/query_exemplars as Prometheus does: the query's selectors pick the
// series, and their exemplars within [start, end] are answered, from the ingesters' buffers (the tenant's
// max_global_exemplars_per_user) and the blocks' exemplar files. The answer is bounded by the tenant's
// max_fetched_series_per_query and max_fetched_exemplars_per_query.
func (a *PrometheusAPI) queryExemplars(r *http.Request) (any, annotations.Annotations, *apiError) {
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		return nil, nil, badData("invalid parameter \"start\": %v", err)
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		return nil, nil, badData("invalid parameter \"end\": %v", err)
	}
	if end.Before(start) {
		return nil, nil, badData("invalid parameter \"end\": end timestamp must not be before start time")
	}
	// The query's size and nesting are checked as any query's; its range is not an evaluation's, so
	// max_total_query_length does not apply: the exemplar buffer bounds what is read.
	now := a.now()
	if apiErr := a.checkQuery(r.Context(), r.FormValue("query"), querycheck.Range{Start: now, End: now}); apiErr != nil {
		return nil, nil, apiErr
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.FormValue("query"))
	if err != nil {
		return nil, nil, badData("invalid parameter \"query\": %v", err)
	}
	// Prometheus omits the data of a query without selectors (1+1); an empty list is as true, and one
	// shape fewer for clients.
	selectors := uniqueSelectors(parser.ExtractSelectors(expr))
	if len(selectors) > querier.MaxExemplarSelectors {
		return nil, nil, badData("invalid parameter \"query\": the query has %d distinct selectors, more than the %d an exemplar query may have", len(selectors), querier.MaxExemplarSelectors)
	}
	tenantID, err := tenant.FromContext(r.Context())
	if err != nil || len(selectors) == 0 || a.exemplars == nil {
		return json.RawMessage(`[]`), nil, nil
	}
	ids := tenant.IDs(tenantID)
	for _, id := range ids {
		if l := time.Duration(a.limits.For(id).MaxQueryLookback); l > 0 && start.Before(now.Add(-l)) {
			start = now.Add(-l)
		}
	}
	if end.Before(start) {
		return json.RawMessage(`[]`), nil, nil
	}
	ctx, cancel, apiErr := a.queryContext(r)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	defer cancel()
	var results []exemplar.QueryResult
	if len(ids) == 1 {
		results, err = a.exemplars.QueryExemplars(ctx, timestamp(start), timestamp(end), selectors, exemplarLimits(a.limits.For(tenantID)))
	} else {
		results, err = a.federatedExemplars(ctx, ids, timestamp(start), timestamp(end), selectors)
	}
	if err != nil {
		return nil, nil, shutdownError(ctx, storageError(err))
	}
	return json.RawMessage(appendExemplars(nil, results)), nil, nil
}

func exemplarLimits(l *validation.Limits) querier.ExemplarLimits {
	return querier.ExemplarLimits{MaxSeries: l.MaxFetchedSeriesPerQuery, MaxExemplars: l.MaxFetchedExemplarsPerQuery}
}

// uniqueSelectors drops repeated selectors: "up or up" reads up's exemplars once.
func uniqueSelectors(selectors [][]*labels.Matcher) [][]*labels.Matcher {
	seen := make(map[string]struct{}, len(selectors))
	out := selectors[:0]
	for _, ms := range selectors {
		var key strings.Builder
		for _, m := range ms {
			key.WriteString(m.String())
			key.WriteByte(0)
		}
		if _, dup := seen[key.String()]; !dup {
			seen[key.String()] = struct{}{}
			out = append(out, ms)
		}
	}
	return out
}

// federatedExemplars reads each tenant of a federated read on its own, with its own limits, and labels
// each series with its tenant in __tenant_id__, as federated queries do; a selector's __tenant_id__
// matchers choose the tenants it reads.
func (a *PrometheusAPI) federatedExemplars(ctx context.Context, ids []string, start, end int64, selectors [][]*labels.Matcher) ([]exemplar.QueryResult, error) {
	var all []exemplar.QueryResult
	for _, id := range ids {
		var sets [][]*labels.Matcher
		for _, ms := range selectors {
			var rest []*labels.Matcher
			chosen := true
			for _, m := range ms {
				if m.Name != querier.TenantLabel {
					rest = append(rest, m)
				} else if !m.Matches(id) {
					chosen = false
				}
			}
			if !chosen {
				continue
			}
			if len(rest) == 0 {
				// Only __tenant_id__ matchers: every series of the tenant.
				rest = []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+")}
			}
			sets = append(sets, rest)
		}
		if len(sets) == 0 {
			continue
		}
		results, err := a.exemplars.QueryExemplars(tenant.NewContext(ctx, id), start, end, sets, exemplarLimits(a.limits.For(id)))
		if err != nil {
			return nil, err
		}
		for _, res := range results {
			b := labels.NewBuilder(res.SeriesLabels)
			b.Set(querier.TenantLabel, id)
			res.SeriesLabels = b.Labels()
			all = append(all, res)
		}
	}
	slices.SortFunc(all, func(a, b exemplar.QueryResult) int { return labels.Compare(a.SeriesLabels, b.SeriesLabels) })
	return all, nil
}

// appendExemplars writes results in the shape of Prometheus' API: series labels, and each exemplar's
// labels, value as a string and timestamp in seconds.
func appendExemplars(b []byte, results []exemplar.QueryResult) []byte {
	b = append(b, '[')
	for i, res := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"seriesLabels":`...)
		b = promjson.AppendLabels(b, res.SeriesLabels)
		b = append(b, `,"exemplars":[`...)
		for j, e := range res.Exemplars {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"labels":`...)
			b = promjson.AppendLabels(b, e.Labels)
			b = append(b, `,"value":`...)
			b = promjson.AppendFloat(b, e.Value)
			b = append(b, `,"timestamp":`...)
			b = promjson.AppendTimestamp(b, e.Ts)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	return append(b, ']')
}
