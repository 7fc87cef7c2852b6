package api

import (
	"net/http"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/strata-metrics/strata/pkg/querycheck"
)

// queryExemplars answers /api/v1/query_exemplars. Ingesters keep exemplars (the tenant's
// max_global_exemplars_per_user) but cannot be asked for them yet, so the answer is the one Prometheus
// gives with its exemplar storage disabled: no exemplars. The parameters are still checked as Prometheus
// checks them, so a client learns about a bad query now rather than once exemplars are served.
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
	// The query's size and nesting are checked as any query's; its range is not an evaluation's, and
	// reads nothing yet, so max_total_query_length does not apply.
	now := a.now()
	if apiErr := a.checkQuery(r.Context(), r.FormValue("query"), querycheck.Range{Start: now, End: now}); apiErr != nil {
		return nil, nil, apiErr
	}
	if _, err := parser.NewParser(parser.Options{}).ParseExpr(r.FormValue("query")); err != nil {
		return nil, nil, badData("invalid parameter \"query\": %v", err)
	}
	// Prometheus omits the data of a query without selectors (1+1); an empty list is as true, and one
	// shape fewer for clients.
	return []struct{}{}, nil, nil
}
